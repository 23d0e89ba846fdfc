/**
 * The AlphaNET wire protocol: constants, packets, the pure codec and the
 * streaming decoder. No I/O, no dependencies: for tools, tests and other
 * implementations of AlphaNET. `docs/PROTOCOL.md` specifies every frame
 * byte by byte.
 *
 * Every frame is a 5-byte header (body length u32, type u8) and a body,
 * big-endian throughout. {@linkcode encode} turns a {@linkcode Packet} into
 * a frame; {@linkcode decode} reads one frame from bytes, returning null
 * when they hold only part of one; {@linkcode FrameDecoder} reads a stream
 * at any chunk boundaries. Malformed bytes throw {@linkcode ProtocolError}.
 *
 * @example Round-trip a connection request
 * ```ts
 * import { decode, encode, formatIpv4, PacketType, parseIpv4 } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const frame = encode({
 *   type: PacketType.SocketConnectionRequest,
 *   requestId: 1,
 *   connectionId: 0,
 *   source: parseIpv4("10.0.0.1")!,
 *   sourcePort: 49_152,
 *   destination: parseIpv4("10.0.0.2")!,
 *   destinationPort: 80,
 *   window: 256 * 1024,
 * });
 * const decoded = decode(frame);
 * assert.ok(decoded?.packet.type === PacketType.SocketConnectionRequest);
 * assert.equal(formatIpv4(decoded.packet.destination), "10.0.0.2");
 * assert.equal(decoded.bytesUsed, frame.length);
 * ```
 *
 * @module
 */

export * from "./constants.ts";
export * from "./packet_type.ts";
export * from "./reason.ts";
export type * from "./packets.ts";
export { decode, type Decoded, encode, encodedLength, encodeInto } from "./codec.ts";
export {
  type BufferLender,
  decodeFrames,
  frameBytesNeeded,
  FrameDecoder,
} from "./frame_decoder.ts";
export { formatIpv4, type Ipv4Range, parseCidr, parseIpv4 } from "./address.ts";
export { ProtocolError } from "./errors.ts";
export {
  type ChallengeFields,
  identityProofMessage,
  joinTokenProofMessage,
  legacyClaimMessage,
} from "./handshake.ts";
