/**
 * Pure frame decoding: bytes to packets, no I/O. Every length is checked
 * against the limits before anything is read; `null` means "more bytes
 * needed", {@linkcode ProtocolError} means "malformed".
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import {
  DATA_HEADER_BYTES,
  FieldBytes,
  FRAME_HEADER_BYTES,
  FRAME_LENGTH_BYTES,
  HandshakeBytes,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FRAME_BODY_BYTES,
  MAX_HELLO_BODY_BYTES,
  ProofFlags,
  PROTOCOL_VERSION,
} from "./constants.ts";
import { PacketType } from "./packet_type.ts";
import { Reason } from "./reason.ts";
import { packetFieldError } from "./fields.ts";
import {
  ERROR_FIXED_BYTES,
  FIXED_BODY_BYTES,
  HELLO_FIXED_BYTES,
  hex,
  MAX_PROOF_BYTES,
  PROOF_FLAGS_BYTES,
  proofLengthOf,
  readU32,
} from "./layout.ts";
import type { Packet } from "./packets.ts";

const { u8, u16, u32 } = FieldBytes;

// ignoreBOM: keep a leading U+FEFF in the message; the default would strip it, so
// decode(encode(p)) would lose it.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A decoded packet and how many bytes of the input its frame used.
 *
 * @example Walk through frames back to back
 * ```ts
 * import { decode, type Decoded, encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * function decodeAll(input: Uint8Array): Decoded[] {
 *   const all: Decoded[] = [];
 *   for (let offset = 0; offset < input.length;) {
 *     const decoded = decode(input.subarray(offset));
 *     if (decoded === null) break; // A partial frame: wait for more bytes.
 *     all.push(decoded);
 *     offset += decoded.bytesUsed;
 *   }
 *   return all;
 * }
 *
 * const ping = encode({ type: PacketType.Ping, nonce: 1 });
 * const pong = encode({ type: PacketType.Pong, nonce: 1 });
 * const all = decodeAll(new Uint8Array([...ping, ...pong]));
 * assert.deepEqual(all.map((decoded) => decoded.packet.type), [PacketType.Ping, PacketType.Pong]);
 * assert.deepEqual(all.map((decoded) => decoded.bytesUsed), [ping.length, pong.length]);
 * ```
 */
export interface Decoded {
  /** The packet; byte fields are views into the input, not copies. */
  readonly packet: Packet;
  /** Bytes of the input that the frame took, header included. */
  readonly bytesUsed: number;
}

/**
 * Decodes the first frame in `bytes`. Every length is checked against the
 * limits before anything is read, so no input makes it read out of bounds
 * or allocate.
 *
 * @param bytes The input; it may hold part of a frame, one frame, or more.
 * @returns The first packet and the bytes its frame used, or null when `bytes`
 * holds only part of a frame. Byte fields of the packet are views into `bytes`.
 * @throws {ProtocolError} With reason `Malformed` when the bytes break the
 * protocol (unknown type, impossible length, field out of range).
 *
 * @example Tell a partial frame from a whole one
 * ```ts
 * import { decode, encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const frame = encode({ type: PacketType.Ping, nonce: 42 });
 * assert.deepEqual(decode(frame), {
 *   packet: { type: PacketType.Ping, nonce: 42 },
 *   bytesUsed: frame.length,
 * });
 * assert.equal(decode(frame.subarray(0, 3)), null);
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
 *
 * @param type The header's type byte.
 * @param length The header's body length.
 * @throws {ProtocolError} With reason `Malformed` for an unknown type or an
 * impossible length.
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
      max = MAX_HELLO_BODY_BYTES;
      break;
    case PacketType.Proof:
      min = PROOF_FLAGS_BYTES;
      max = MAX_PROOF_BYTES;
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
 * (callers must check the header first).
 *
 * @param type The header's type byte.
 * @param body Exactly the body's bytes.
 * @returns The packet; byte fields are views into `body`.
 * @throws {ProtocolError} With reason `Malformed` when a field is out of range.
 */
export function decodeBody(type: number, body: Uint8Array): Packet {
  if (type === PacketType.ArbitraryData) {
    // Hot path: the header check already bounded the payload to 1..MAX_DATA_BYTES.
    return { type, connectionId: readU32(body, 0), payload: body.subarray(DATA_HEADER_BYTES) };
  }
  const view = new DataView(body.buffer, body.byteOffset, body.length);
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
      // Another version's Hello is its version and bytes of its own: the relay says UnsupportedVersion.
      if (version === PROTOCOL_VERSION && body.length !== HELLO_FIXED_BYTES) {
        throw new ProtocolError(
          `Cannot decode frame: a version ${PROTOCOL_VERSION} Hello has ${HELLO_FIXED_BYTES} bytes, got ${body.length}`,
          Reason.Malformed,
        );
      }
      packet = { type, version };
      break;
    }
    case PacketType.Challenge:
      packet = {
        type,
        relayId: body.subarray(0, HandshakeBytes.relayId),
        nonce: body.subarray(HandshakeBytes.relayId),
      };
      break;
    case PacketType.Proof:
      packet = decodeProof(body);
      break;
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

const KNOWN_PROOF_FLAGS = ProofFlags.Identity | ProofFlags.JoinToken | ProofFlags.LegacyClaim;

/** Reads a Proof body: its flags byte, then exactly the sections the flags name. */
function decodeProof(body: Uint8Array): Packet {
  const flags = body[0];
  if ((flags & ~KNOWN_PROOF_FLAGS) !== 0) {
    throw new ProtocolError(
      `Cannot decode frame: Proof flags 0x${hex(flags)} set unknown bits`,
      Reason.Malformed,
    );
  }
  const length = proofLengthOf(flags);
  if (length !== body.length) {
    throw new ProtocolError(
      `Cannot decode frame: Proof flags 0x${
        hex(flags)
      } need a body of ${length} bytes, got ${body.length}`,
      Reason.Malformed,
    );
  }
  let at = PROOF_FLAGS_BYTES;
  const take = (bytes: number) => body.subarray(at, at += bytes);
  const { publicKey, signature, tokenId, legacyTag, legacyMac } = HandshakeBytes;
  const identity = flags & ProofFlags.Identity
    ? { publicKey: take(publicKey), signature: take(signature) }
    : null;
  const joinToken = flags & ProofFlags.JoinToken
    ? { id: take(tokenId), signature: take(signature) }
    : null;
  const legacyClaim = flags & ProofFlags.LegacyClaim
    ? { tag: take(legacyTag), mac: take(legacyMac) }
    : null;
  return { type: PacketType.Proof, identity, joinToken, legacyClaim };
}
