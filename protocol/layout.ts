/**
 * Body layouts shared by the encoder and the decoder: the sizes of
 * fixed-size bodies and of the fixed parts of variable ones.
 *
 * @module
 */

import { FieldBytes, HandshakeBytes, ProofFlags } from "./constants.ts";
import { PacketType } from "./packet_type.ts";
import type { ProofPacket } from "./packets.ts";

const { u8, u16, u32, ipv4, port, requestId, connectionId } = FieldBytes;
const { relayId, nonce, publicKey, signature, tokenId, legacyTag, legacyMac } = HandshakeBytes;

/** Body sizes of the packets whose body has a fixed size. */
export const FIXED_BODY_BYTES: Readonly<Record<number, number>> = {
  [PacketType.Challenge]: relayId + nonce,
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

/** Hello: version u16; later versions may add bytes after it. */
export const HELLO_FIXED_BYTES: number = u16;
/** Proof: flags u8, then the sections its flags name. */
export const PROOF_FLAGS_BYTES: number = u8;
/** A Proof's identity section: publicKey | signature. */
export const PROOF_IDENTITY_BYTES: number = publicKey + signature;
/** A Proof's join token section: tokenId | tokenSignature. */
export const PROOF_TOKEN_BYTES: number = tokenId + signature;
/** A Proof's legacy claim section: legacyTag | legacyMac. */
export const PROOF_LEGACY_BYTES: number = legacyTag + legacyMac;
/** The largest Proof body: every section present. */
export const MAX_PROOF_BYTES: number = PROOF_FLAGS_BYTES + PROOF_IDENTITY_BYTES +
  PROOF_TOKEN_BYTES + PROOF_LEGACY_BYTES;
/** Error before its message: reason u8 | messageLength u16. */
export const ERROR_FIXED_BYTES: number = u8 + u16;

/**
 * The flags byte of a Proof: a bit for each section it carries.
 *
 * @param packet The Proof.
 * @returns The {@linkcode ProofFlags} bits of its non-null sections.
 */
export function proofFlags(packet: ProofPacket): number {
  return (packet.identity ? ProofFlags.Identity : 0) |
    (packet.joinToken ? ProofFlags.JoinToken : 0) |
    (packet.legacyClaim ? ProofFlags.LegacyClaim : 0);
}

/**
 * The body length a Proof with `flags` must have.
 *
 * @param flags A Proof's flags byte (bits outside {@linkcode ProofFlags} are ignored here).
 * @returns The flags byte plus each flagged section's size.
 */
export function proofLengthOf(flags: number): number {
  return PROOF_FLAGS_BYTES +
    (flags & ProofFlags.Identity ? PROOF_IDENTITY_BYTES : 0) +
    (flags & ProofFlags.JoinToken ? PROOF_TOKEN_BYTES : 0) +
    (flags & ProofFlags.LegacyClaim ? PROOF_LEGACY_BYTES : 0);
}

/**
 * The body length of a Proof, from the sections it carries.
 *
 * @param packet The Proof.
 * @returns Its body's size in bytes.
 */
export function proofBodyLength(packet: ProofPacket): number {
  return proofLengthOf(proofFlags(packet));
}

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
