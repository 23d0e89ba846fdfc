/**
 * The frame types of the AlphaNET wire, each with its body layout.
 *
 * @module
 */

/**
 * Frame types. Each comment is the body layout, big-endian, after the
 * 5-byte frame header.
 *
 * @example Dispatch on a decoded frame's type
 * ```ts
 * import { decode, encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const decoded = decode(encode({ type: PacketType.Ping, nonce: 9 }));
 * assert.ok(decoded !== null);
 * const packet = decoded.packet;
 * switch (packet.type) {
 *   case PacketType.Ping:
 *     assert.equal(packet.nonce, 9);
 *     break;
 *   default:
 *     assert.fail(`unexpected frame type ${packet.type}`);
 * }
 * ```
 */
export const PacketType = {
  /** C→S. version u16 (2); nothing more in version 2 */
  Hello: 0x01,
  /** S→C. address u32: the client's permanent virtual IPv4 */
  VirtualIP: 0x02,
  /** Both. reason u8 | messageLength u16 | message[messageLength] UTF-8; the sender then closes */
  Error: 0x03,
  /** Both. nonce u32; the receiver answers Pong with the same nonce */
  Ping: 0x04,
  /** Both. nonce u32 */
  Pong: 0x05,
  /** S→C. relayId[32] | nonce[32]: what the client's Proof must sign */
  Challenge: 0x06,
  /**
   * C→S. flags u8 | publicKey[32] signature[64] (flag 1) | tokenId[8]
   * tokenSignature[64] (flag 2) | legacyTag[32] legacyMac[32] (flag 4)
   */
  Proof: 0x07,
  /** Both. requestId u32 | source u32 | destination u32 | destinationPort u16 */
  SocketStatusRequest: 0x10,
  /** Both. requestId u32 | listening u8 (0 or 1) */
  SocketStatusResponse: 0x11,
  /**
   * Both. requestId u32 | connectionId u32 | source u32 | sourcePort u16 |
   * destination u32 | destinationPort u16 | window u32
   */
  SocketConnectionRequest: 0x12,
  /** Both. requestId u32 | connectionId u32 | accepted u8 (0 or 1) | window u32 */
  SocketConnectionResponse: 0x13,
  /** S→C. requestId u32 | reason u8 */
  RequestFailed: 0x14,
  /** Both. requestId u32 | source u32 | destination u32: "are you there?" to another client */
  EchoRequest: 0x15,
  /** Both. requestId u32: the destination's answer to an EchoRequest */
  EchoReply: 0x16,
  /** Both. connectionId u32 | payload[1..65535] */
  ArbitraryData: 0x20,
  /** Both. connectionId u32 | increment u32 (1..MAX_WINDOW_BYTES) */
  WindowUpdate: 0x21,
  /** Both. connectionId u32; the sender writes no more data on it (half-close) */
  SocketShutdown: 0x22,
  /** Both. connectionId u32 | reason u8 */
  SocketClosed: 0x23,
} as const;

/**
 * One of the {@linkcode PacketType} values.
 *
 * @example Keep a set of frame types
 * ```ts
 * import { PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const control: ReadonlySet<PacketType> = new Set([PacketType.Ping, PacketType.Pong]);
 * assert.ok(control.has(PacketType.Ping));
 * assert.ok(!control.has(PacketType.ArbitraryData));
 * ```
 */
export type PacketType = typeof PacketType[keyof typeof PacketType];
