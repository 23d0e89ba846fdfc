/**
 * Pure packet codec: packets to frames and back, over `Uint8Array`, no I/O.
 *
 * Frame: length u32 (body bytes) | type u8 | body. Big-endian throughout.
 * Encoders measure, then fill with a DataView; the decoder (decode.ts)
 * checks every length before reading. Field rules live in fields.ts.
 *
 * @module
 */

import {
  DATA_HEADER_BYTES,
  FieldBytes,
  FRAME_HEADER_BYTES,
  FRAME_LENGTH_BYTES,
  MAX_DATA_BYTES,
} from "./constants.ts";
import { PacketType } from "./packet_type.ts";
import { packetFieldError } from "./fields.ts";
import {
  ERROR_FIXED_BYTES,
  FIXED_BODY_BYTES,
  HELLO_FIXED_BYTES,
  proofBodyLength,
  proofFlags,
  writeU32,
} from "./layout.ts";
import type { Packet } from "./packets.ts";

export { checkFrameHeader, decode, decodeBody, type Decoded } from "./decode.ts";
export { packetFieldError } from "./fields.ts";

const { u8, u16, u32 } = FieldBytes;

const utf8Encoder = new TextEncoder();

function bodyLength(packet: Packet): number {
  switch (packet.type) {
    case PacketType.Hello:
      return HELLO_FIXED_BYTES;
    case PacketType.Proof:
      return proofBodyLength(packet);
    case PacketType.Error:
      return ERROR_FIXED_BYTES + utf8Encoder.encode(packet.message).length;
    case PacketType.ArbitraryData:
      return DATA_HEADER_BYTES + packet.payload.length;
    default:
      return FIXED_BODY_BYTES[packet.type];
  }
}

/**
 * Bytes the frame of `packet` takes on the wire, header included: the size
 * of the buffer {@linkcode encodeInto} needs.
 *
 * @param packet The packet to measure; its fields are not checked.
 * @returns The frame's size in bytes.
 *
 * @example Size a buffer for two frames
 * ```ts
 * import { encodedLength, encodeInto, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const ping = { type: PacketType.Ping, nonce: 7 } as const;
 * const pong = { type: PacketType.Pong, nonce: 7 } as const;
 * const buffer = new Uint8Array(encodedLength(ping) + encodedLength(pong));
 * const used = encodeInto(ping, buffer, 0);
 * assert.equal(encodeInto(pong, buffer, used), encodedLength(pong));
 * assert.equal(encodedLength(ping), 9);
 * ```
 */
export function encodedLength(packet: Packet): number {
  return FRAME_HEADER_BYTES + bodyLength(packet);
}

/**
 * Writes the frame of `packet` into `target` at `offset`: the allocation-free
 * way to encode, for writers that batch frames into one buffer.
 *
 * @param packet The packet to encode.
 * @param target The buffer to write into; bytes outside the frame are left alone.
 * @param offset Where in `target` the frame starts.
 * @returns The bytes written, {@linkcode encodedLength} of `packet`.
 * @throws {RangeError} If a field is out of range or the frame does not fit in
 * `target` at `offset`; nothing is written then.
 *
 * @example Batch two frames into one buffer
 * ```ts
 * import { decode, encodeInto, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const buffer = new Uint8Array(64);
 * let used = encodeInto({ type: PacketType.Ping, nonce: 1 }, buffer, 0);
 * used += encodeInto({ type: PacketType.Pong, nonce: 2 }, buffer, used);
 * assert.equal(used, 18);
 * const first = decode(buffer.subarray(0, used));
 * assert.deepEqual(first?.packet, { type: PacketType.Ping, nonce: 1 });
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
      break;
    case PacketType.Challenge:
      putBytes(packet.relayId);
      putBytes(packet.nonce);
      break;
    case PacketType.Proof:
      put8(proofFlags(packet));
      if (packet.identity) {
        putBytes(packet.identity.publicKey);
        putBytes(packet.identity.signature);
      }
      if (packet.joinToken) {
        putBytes(packet.joinToken.id);
        putBytes(packet.joinToken.signature);
      }
      if (packet.legacyClaim) {
        putBytes(packet.legacyClaim.tag);
        putBytes(packet.legacyClaim.mac);
      }
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
 * Encodes one packet as a complete frame in a new buffer.
 *
 * @param packet The packet to encode.
 * @returns The frame: length u32, type u8, then the body, big-endian.
 * @throws {RangeError} If a field is out of range (a port of 0, a window below
 * `MIN_WINDOW_BYTES`, a payload over {@linkcode MAX_DATA_BYTES}, ...).
 *
 * @example Encode the relay's answer to a Hello
 * ```ts
 * import { encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const frame = encode({ type: PacketType.VirtualIP, address: 0x0a00_0001 });
 * // Body length 4, type VirtualIP, address 10.0.0.1.
 * assert.deepEqual(frame, new Uint8Array([0, 0, 0, 4, 0x02, 10, 0, 0, 1]));
 * ```
 */
export function encode(packet: Packet): Uint8Array {
  const frame = new Uint8Array(encodedLength(packet));
  encodeInto(packet, frame, 0);
  return frame;
}

/**
 * Writes the header of an ArbitraryData frame (frame header and connection
 * id) for a payload of `payloadLength` bytes; the caller copies the payload
 * right after it. The relay's forwarding path: the payload is copied once.
 *
 * @param target The buffer to write into.
 * @param offset Where in `target` the frame starts.
 * @param connectionId The receiver's id of the connection.
 * @param payloadLength Bytes of payload that will follow, 1..{@linkcode MAX_DATA_BYTES}.
 * @returns The header's size, {@linkcode DATA_FRAME_OVERHEAD_BYTES}.
 * @throws {RangeError} If `payloadLength` is out of range or the header does
 * not fit in `target` at `offset`.
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
  if (offset < 0 || offset + DATA_FRAME_OVERHEAD_BYTES > target.length) {
    throw new RangeError(
      `Cannot encode data: needs ${DATA_FRAME_OVERHEAD_BYTES} bytes at offset ${offset}, buffer has ${target.length}`,
    );
  }
  writeU32(target, offset, DATA_HEADER_BYTES + payloadLength);
  target[offset + FRAME_LENGTH_BYTES] = PacketType.ArbitraryData;
  writeU32(target, offset + FRAME_HEADER_BYTES, connectionId);
  return DATA_FRAME_OVERHEAD_BYTES;
}

/** Bytes an ArbitraryData frame adds around its payload. */
export const DATA_FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + DATA_HEADER_BYTES;
