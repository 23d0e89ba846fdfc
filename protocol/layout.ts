/**
 * Body layouts shared by the encoder and the decoder: the sizes of
 * fixed-size bodies and of the fixed parts of variable ones.
 *
 * @module
 */

import { FieldBytes } from "./constants.ts";
import { PacketType } from "./packet_type.ts";

const { u8, u16, u32, ipv4, port, requestId, connectionId } = FieldBytes;

/** Body sizes of the packets whose body has a fixed size. */
export const FIXED_BODY_BYTES: Readonly<Record<number, number>> = {
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

/** Hello before its identity: version u16 | identityLength u16. */
export const HELLO_FIXED_BYTES: number = u16 + u16;
/** Error before its message: reason u8 | messageLength u16. */
export const ERROR_FIXED_BYTES: number = u8 + u16;

/**
 * A frame type as two hex digits, for messages.
 *
 * @param n A byte.
 * @returns `n` in lowercase hex, at least two digits.
 */
export function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/**
 * Reads a big-endian u32 at `offset`. The per-frame paths use this and
 * {@linkcode writeU32} instead of a DataView, which would be one more
 * allocation for every data frame.
 *
 * @param bytes The buffer; the caller has checked that 4 bytes are there.
 * @param offset Where the u32 starts.
 * @returns The unsigned value.
 */
export function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

/**
 * Writes `value` as a big-endian u32 at `offset`.
 *
 * @param bytes The buffer; the caller has checked that 4 bytes fit.
 * @param offset Where the u32 starts.
 * @param value An unsigned 32-bit integer.
 */
export function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}
