/**
 * Pure packet codec: packets to frames and back, over `Uint8Array`, no I/O.
 *
 * Frame: length u32 (body bytes) | type u8 | body. Big-endian throughout.
 * Encoders measure, then fill with a DataView; decoders check every length
 * against the limits before reading, return `null` when more bytes are
 * needed and throw {@linkcode ProtocolError} when the bytes are malformed.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import {
  DATA_HEADER_BYTES,
  FieldBytes,
  FRAME_HEADER_BYTES,
  FRAME_LENGTH_BYTES,
  isReason,
  MAX_DATA_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FRAME_BODY_BYTES,
  MAX_IDENTITY_BYTES,
  MAX_PORT,
  MAX_WINDOW_BYTES,
  MIN_IDENTITY_BYTES,
  MIN_WINDOW_BYTES,
  PacketType,
  Reason,
} from "./constants.ts";
import type { Packet } from "./packets.ts";

const { u8, u16, u32, ipv4, port, requestId, connectionId } = FieldBytes;

/** Body sizes of the packets whose body has a fixed size. */
const FIXED_BODY_BYTES: Readonly<Record<number, number>> = {
  [PacketType.VirtualIP]: ipv4,
  [PacketType.Ping]: u32,
  [PacketType.Pong]: u32,
  [PacketType.SocketStatusRequest]: requestId + ipv4 + ipv4 + port,
  [PacketType.SocketStatusResponse]: requestId + u8,
  [PacketType.SocketConnectionRequest]: requestId + connectionId + ipv4 + port + ipv4 + port + u32,
  [PacketType.SocketConnectionResponse]: requestId + connectionId + u8 + u32,
  [PacketType.RequestFailed]: requestId + u8,
  [PacketType.EchoRequest]: requestId + ipv4 + ipv4,
  [PacketType.EchoReply]: requestId,
  [PacketType.WindowUpdate]: connectionId + u32,
  [PacketType.SocketShutdown]: connectionId,
  [PacketType.SocketClosed]: connectionId + u8,
};

const HELLO_FIXED_BYTES = u16 + u16;
const ERROR_FIXED_BYTES = u8 + u16;

const utf8Encoder = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF in the message; the default would strip it, so
// decode(encode(p)) would lose it.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Why a packet's fields are out of range, or null when they are all valid.
 * The one rule book for both directions: encode throws RangeError on it,
 * decode throws ProtocolError.
 */
export function packetFieldError(packet: Packet): string | null {
  const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
  const isPort = (n: number) => Number.isInteger(n) && n >= 1 && n <= MAX_PORT;
  const isWindow = (n: number) =>
    Number.isInteger(n) && n >= MIN_WINDOW_BYTES && n <= MAX_WINDOW_BYTES;
  switch (packet.type) {
    case PacketType.Hello: {
      if (!Number.isInteger(packet.version) || packet.version < 0 || packet.version > 0xffff) {
        return `version ${packet.version} is not a u16`;
      }
      const length = packet.identity?.length ?? 0;
      if (packet.identity && (length < MIN_IDENTITY_BYTES || length > MAX_IDENTITY_BYTES)) {
        return `identity of ${length} bytes is outside ${MIN_IDENTITY_BYTES}..${MAX_IDENTITY_BYTES}`;
      }
      return null;
    }
    case PacketType.VirtualIP:
      return isU32(packet.address) ? null : `address ${packet.address} is not a u32`;
    case PacketType.Error:
      if (!isReason(packet.reason)) return `reason ${packet.reason} is unknown`;
      if (utf8Encoder.encode(packet.message).length > MAX_ERROR_MESSAGE_BYTES) {
        return `message exceeds ${MAX_ERROR_MESSAGE_BYTES} bytes`;
      }
      return null;
    case PacketType.Ping:
    case PacketType.Pong:
      return isU32(packet.nonce) ? null : `nonce ${packet.nonce} is not a u32`;
    case PacketType.SocketStatusRequest:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      if (!isU32(packet.source) || !isU32(packet.destination)) return "address is not a u32";
      return isPort(packet.destinationPort)
        ? null
        : `destination port ${packet.destinationPort} is outside 1..${MAX_PORT}`;
    case PacketType.SocketStatusResponse:
      return isU32(packet.requestId) ? null : `request id ${packet.requestId} is not a u32`;
    case PacketType.SocketConnectionRequest:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      if (!isU32(packet.source) || !isU32(packet.destination)) return "address is not a u32";
      if (!isPort(packet.sourcePort) || !isPort(packet.destinationPort)) {
        return `port is outside 1..${MAX_PORT}`;
      }
      return isWindow(packet.window)
        ? null
        : `window ${packet.window} is outside ${MIN_WINDOW_BYTES}..${MAX_WINDOW_BYTES}`;
    case PacketType.SocketConnectionResponse:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      if (packet.accepted) {
        return isWindow(packet.window)
          ? null
          : `window ${packet.window} is outside ${MIN_WINDOW_BYTES}..${MAX_WINDOW_BYTES}`;
      }
      return packet.window === 0 ? null : "a denied connection carries window 0";
    case PacketType.RequestFailed:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      return isReason(packet.reason) ? null : `reason ${packet.reason} is unknown`;
    case PacketType.EchoRequest:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      return isU32(packet.source) && isU32(packet.destination) ? null : "address is not a u32";
    case PacketType.EchoReply:
      return isU32(packet.requestId) ? null : `request id ${packet.requestId} is not a u32`;
    case PacketType.ArbitraryData:
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      return packet.payload.length >= 1 && packet.payload.length <= MAX_DATA_BYTES
        ? null
        : `payload of ${packet.payload.length} bytes is outside 1..${MAX_DATA_BYTES}`;
    case PacketType.WindowUpdate:
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      return Number.isInteger(packet.increment) && packet.increment >= 1 &&
          packet.increment <= MAX_WINDOW_BYTES
        ? null
        : `increment ${packet.increment} is outside 1..${MAX_WINDOW_BYTES}`;
    case PacketType.SocketShutdown:
      return isU32(packet.connectionId)
        ? null
        : `connection id ${packet.connectionId} is not a u32`;
    case PacketType.SocketClosed:
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      return isReason(packet.reason) ? null : `reason ${packet.reason} is unknown`;
    default: {
      const _never: never = packet;
      return `type ${(_never as Packet).type} is unknown`;
    }
  }
}

function bodyLength(packet: Packet): number {
  switch (packet.type) {
    case PacketType.Hello:
      return HELLO_FIXED_BYTES + (packet.identity?.length ?? 0);
    case PacketType.Error:
      return ERROR_FIXED_BYTES + utf8Encoder.encode(packet.message).length;
    case PacketType.ArbitraryData:
      return DATA_HEADER_BYTES + packet.payload.length;
    default:
      return FIXED_BODY_BYTES[packet.type];
  }
}

/**
 * Bytes the frame of `packet` takes on the wire, header included.
 *
 * @example
 * ```ts
 * import { encodedLength, PacketType } from "@alphanet/net";
 * console.log(encodedLength({ type: PacketType.Ping, nonce: 7 })); // 9
 * ```
 */
export function encodedLength(packet: Packet): number {
  return FRAME_HEADER_BYTES + bodyLength(packet);
}

/**
 * Writes the frame of `packet` into `target` at `offset` and returns the
 * bytes written. Throws RangeError if a field is out of range or `target`
 * is too small. This is the allocation-free path the relay uses.
 *
 * @example
 * ```ts
 * import { encodeInto, PacketType } from "@alphanet/net";
 * const buffer = new Uint8Array(64);
 * const used = encodeInto({ type: PacketType.Pong, nonce: 1 }, buffer, 0);
 * console.log(used); // 9
 * ```
 */
export function encodeInto(packet: Packet, target: Uint8Array, offset: number): number {
  const problem = packetFieldError(packet);
  if (problem !== null) throw new RangeError(`Cannot encode packet: ${problem}`);
  const body = bodyLength(packet);
  const total = FRAME_HEADER_BYTES + body;
  if (offset < 0 || offset + total > target.length) {
    throw new RangeError(
      `Cannot encode packet: needs ${total} bytes at offset ${offset}, buffer has ${target.length}`,
    );
  }
  const view = new DataView(target.buffer, target.byteOffset + offset, total);
  view.setUint32(0, body);
  view.setUint8(FRAME_LENGTH_BYTES, packet.type);
  let at = FRAME_HEADER_BYTES;
  const put8 = (n: number) => {
    view.setUint8(at, n);
    at += u8;
  };
  const put16 = (n: number) => {
    view.setUint16(at, n);
    at += u16;
  };
  const put32 = (n: number) => {
    view.setUint32(at, n);
    at += u32;
  };
  const putBytes = (bytes: Uint8Array) => {
    target.set(bytes, offset + at);
    at += bytes.length;
  };
  switch (packet.type) {
    case PacketType.Hello:
      put16(packet.version);
      put16(packet.identity?.length ?? 0);
      if (packet.identity) putBytes(packet.identity);
      break;
    case PacketType.VirtualIP:
      put32(packet.address);
      break;
    case PacketType.Error: {
      const message = utf8Encoder.encode(packet.message);
      put8(packet.reason);
      put16(message.length);
      putBytes(message);
      break;
    }
    case PacketType.Ping:
    case PacketType.Pong:
      put32(packet.nonce);
      break;
    case PacketType.SocketStatusRequest:
      put32(packet.requestId);
      put32(packet.source);
      put32(packet.destination);
      put16(packet.destinationPort);
      break;
    case PacketType.SocketStatusResponse:
      put32(packet.requestId);
      put8(packet.listening ? 1 : 0);
      break;
    case PacketType.SocketConnectionRequest:
      put32(packet.requestId);
      put32(packet.connectionId);
      put32(packet.source);
      put16(packet.sourcePort);
      put32(packet.destination);
      put16(packet.destinationPort);
      put32(packet.window);
      break;
    case PacketType.SocketConnectionResponse:
      put32(packet.requestId);
      put32(packet.connectionId);
      put8(packet.accepted ? 1 : 0);
      put32(packet.window);
      break;
    case PacketType.RequestFailed:
      put32(packet.requestId);
      put8(packet.reason);
      break;
    case PacketType.EchoRequest:
      put32(packet.requestId);
      put32(packet.source);
      put32(packet.destination);
      break;
    case PacketType.EchoReply:
      put32(packet.requestId);
      break;
    case PacketType.ArbitraryData:
      put32(packet.connectionId);
      putBytes(packet.payload);
      break;
    case PacketType.WindowUpdate:
      put32(packet.connectionId);
      put32(packet.increment);
      break;
    case PacketType.SocketShutdown:
      put32(packet.connectionId);
      break;
    case PacketType.SocketClosed:
      put32(packet.connectionId);
      put8(packet.reason);
      break;
    default: {
      const _never: never = packet;
      throw new RangeError(`Cannot encode packet: type ${(_never as Packet).type} is unknown`);
    }
  }
  return total;
}

/**
 * Encodes one packet as a complete frame.
 *
 * @example
 * ```ts
 * import { encode, PacketType } from "@alphanet/net";
 * const frame = encode({ type: PacketType.VirtualIP, address: 0x0a000001 });
 * console.log(frame.length); // 9
 * ```
 */
export function encode(packet: Packet): Uint8Array {
  const frame = new Uint8Array(encodedLength(packet));
  encodeInto(packet, frame, 0);
  return frame;
}

/** A decoded packet and how many bytes of the input its frame used. */
export interface Decoded {
  /** The packet; byte fields are views into the input, not copies. */
  readonly packet: Packet;
  /** Bytes of the input that the frame took, header included. */
  readonly bytesUsed: number;
}

/**
 * Decodes the first frame in `bytes`. Returns null when `bytes` holds only
 * part of a frame; throws {@linkcode ProtocolError} when it is malformed.
 * Byte fields of the packet are views into `bytes`.
 *
 * @example
 * ```ts
 * import { decode, encode, PacketType } from "@alphanet/net";
 * const frame = encode({ type: PacketType.Ping, nonce: 42 });
 * console.log(decode(frame)?.packet); // { type: 4, nonce: 42 }
 * console.log(decode(frame.subarray(0, 3))); // null
 * ```
 */
export function decode(bytes: Uint8Array): Decoded | null {
  if (bytes.length < FRAME_HEADER_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const length = view.getUint32(0);
  const type = view.getUint8(FRAME_LENGTH_BYTES);
  checkFrameHeader(type, length);
  const total = FRAME_HEADER_BYTES + length;
  if (bytes.length < total) return null;
  const packet = decodeBody(type, bytes.subarray(FRAME_HEADER_BYTES, total));
  return { packet, bytesUsed: total };
}

/**
 * Throws unless a frame header announces a known type whose body length is
 * possible for it. Runs before any body byte is buffered or read.
 */
export function checkFrameHeader(type: number, length: number): void {
  const fixed = FIXED_BODY_BYTES[type];
  if (fixed !== undefined) {
    if (length !== fixed) {
      throw new ProtocolError(
        `Cannot decode frame: type 0x${hex(type)} needs a body of ${fixed} bytes, got ${length}`,
        Reason.Malformed,
      );
    }
    return;
  }
  let min: number;
  let max: number;
  switch (type) {
    case PacketType.Hello:
      min = HELLO_FIXED_BYTES;
      max = HELLO_FIXED_BYTES + MAX_IDENTITY_BYTES;
      break;
    case PacketType.Error:
      min = ERROR_FIXED_BYTES;
      max = ERROR_FIXED_BYTES + MAX_ERROR_MESSAGE_BYTES;
      break;
    case PacketType.ArbitraryData:
      min = DATA_HEADER_BYTES + 1;
      max = MAX_FRAME_BODY_BYTES;
      break;
    default:
      throw new ProtocolError(
        `Cannot decode frame: type 0x${hex(type)} is unknown`,
        Reason.Malformed,
      );
  }
  if (length < min || length > max) {
    throw new ProtocolError(
      `Cannot decode frame: type 0x${hex(type)} body of ${length} bytes is outside ${min}..${max}`,
      Reason.Malformed,
    );
  }
}

/**
 * Decodes a frame body whose header {@linkcode checkFrameHeader} accepted
 * (callers must check the header first). Byte fields are views into `body`.
 */
export function decodeBody(type: number, body: Uint8Array): Packet {
  const view = new DataView(body.buffer, body.byteOffset, body.length);
  if (type === PacketType.ArbitraryData) {
    // Hot path: the header check already bounded the payload to 1..MAX_DATA_BYTES.
    return { type, connectionId: view.getUint32(0), payload: body.subarray(DATA_HEADER_BYTES) };
  }
  let at = 0;
  const get8 = () => {
    const n = view.getUint8(at);
    at += u8;
    return n;
  };
  const get16 = () => {
    const n = view.getUint16(at);
    at += u16;
    return n;
  };
  const get32 = () => {
    const n = view.getUint32(at);
    at += u32;
    return n;
  };
  const getBool = (field: string) => {
    const n = get8();
    if (n > 1) {
      throw new ProtocolError(
        `Cannot decode frame: ${field} is ${n}, not 0 or 1`,
        Reason.Malformed,
      );
    }
    return n === 1;
  };
  let packet: Packet;
  switch (type) {
    case PacketType.Hello: {
      const version = get16();
      const length = get16();
      if (HELLO_FIXED_BYTES + length !== body.length) {
        throw new ProtocolError(
          `Cannot decode frame: Hello identity length ${length} does not match its body`,
          Reason.Malformed,
        );
      }
      packet = { type, version, identity: length === 0 ? null : body.subarray(at, at + length) };
      break;
    }
    case PacketType.VirtualIP:
      packet = { type, address: get32() };
      break;
    case PacketType.Error: {
      const reason = get8();
      const length = get16();
      if (ERROR_FIXED_BYTES + length !== body.length) {
        throw new ProtocolError(
          `Cannot decode frame: Error message length ${length} does not match its body`,
          Reason.Malformed,
        );
      }
      let message: string;
      try {
        message = utf8Decoder.decode(body.subarray(at, at + length));
      } catch (cause) {
        throw new ProtocolError(
          "Cannot decode frame: Error message is not UTF-8",
          Reason.Malformed,
          {
            cause,
          },
        );
      }
      packet = { type, reason: reason as Reason, message };
      break;
    }
    case PacketType.Ping:
    case PacketType.Pong:
      packet = { type, nonce: get32() };
      break;
    case PacketType.SocketStatusRequest:
      packet = {
        type,
        requestId: get32(),
        source: get32(),
        destination: get32(),
        destinationPort: get16(),
      };
      break;
    case PacketType.SocketStatusResponse:
      packet = { type, requestId: get32(), listening: getBool("listening") };
      break;
    case PacketType.SocketConnectionRequest:
      packet = {
        type,
        requestId: get32(),
        connectionId: get32(),
        source: get32(),
        sourcePort: get16(),
        destination: get32(),
        destinationPort: get16(),
        window: get32(),
      };
      break;
    case PacketType.SocketConnectionResponse:
      packet = {
        type,
        requestId: get32(),
        connectionId: get32(),
        accepted: getBool("accepted"),
        window: get32(),
      };
      break;
    case PacketType.RequestFailed:
      packet = { type, requestId: get32(), reason: get8() as Reason };
      break;
    case PacketType.EchoRequest:
      packet = { type, requestId: get32(), source: get32(), destination: get32() };
      break;
    case PacketType.EchoReply:
      packet = { type, requestId: get32() };
      break;
    case PacketType.ArbitraryData:
      packet = { type, connectionId: get32(), payload: body.subarray(DATA_HEADER_BYTES) };
      break;
    case PacketType.WindowUpdate:
      packet = { type, connectionId: get32(), increment: get32() };
      break;
    case PacketType.SocketShutdown:
      packet = { type, connectionId: get32() };
      break;
    case PacketType.SocketClosed:
      packet = { type, connectionId: get32(), reason: get8() as Reason };
      break;
    default:
      throw new ProtocolError(
        `Cannot decode frame: type 0x${hex(type)} is unknown`,
        Reason.Malformed,
      );
  }
  const problem = packetFieldError(packet);
  if (problem !== null) {
    throw new ProtocolError(`Cannot decode frame: ${problem}`, Reason.Malformed);
  }
  return packet;
}

/**
 * Writes the header of an ArbitraryData frame (frame header and connection
 * id) for a payload of `payloadLength` bytes; the caller copies the payload
 * right after it. Returns the header's size. The relay's forwarding path.
 */
export function encodeDataHeader(
  target: Uint8Array,
  offset: number,
  connectionId: number,
  payloadLength: number,
): number {
  if (payloadLength < 1 || payloadLength > MAX_DATA_BYTES) {
    throw new RangeError(
      `Cannot encode data: payload of ${payloadLength} bytes is outside 1..${MAX_DATA_BYTES}`,
    );
  }
  const view = new DataView(target.buffer, target.byteOffset + offset, DATA_FRAME_OVERHEAD_BYTES);
  view.setUint32(0, DATA_HEADER_BYTES + payloadLength);
  view.setUint8(FRAME_LENGTH_BYTES, PacketType.ArbitraryData);
  view.setUint32(FRAME_HEADER_BYTES, connectionId);
  return DATA_FRAME_OVERHEAD_BYTES;
}

/** Bytes an ArbitraryData frame adds around its payload. */
export const DATA_FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + DATA_HEADER_BYTES;

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}
