/**
 * Every value that appears on the AlphaNET wire, in one table.
 *
 * Protocol flow (see docs/PROTOCOL.md for the byte-level spec):
 *
 *   client                         relay                          owner of B
 *     | Hello(version, identity?) -> |                                |
 *     | <- VirtualIP(A)              |                                |
 *     | SocketStatusRequest(B:80) -> | SocketStatusRequest(A->B:80) -> |
 *     |                              | <- SocketStatusResponse(yes)    |
 *     | <- SocketStatusResponse(yes) |                                |
 *     | SocketConnectionRequest ---> | SocketConnectionRequest -----> |
 *     |                              | <- SocketConnectionResponse(ok) |
 *     | <- SocketConnectionResponse  |   (pair joins ActiveSockets)    |
 *     | ArbitraryData / WindowUpdate <-> relay <-> ArbitraryData / ... |
 *     | SocketClosed --------------> | SocketClosed ----------------> |
 *
 * The relay always stamps the sender's own virtual IP as the source; the
 * client must write its own address (or the relay treats it as spoofing).
 *
 * @module
 */

/**
 * The protocol version a Hello carries; the relay refuses any other.
 *
 * @example Say hello in the version this module speaks
 * ```ts
 * import { decode, encode, PacketType, PROTOCOL_VERSION } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const hello = encode({ type: PacketType.Hello, version: PROTOCOL_VERSION, identity: null });
 * const decoded = decode(hello);
 * assert.ok(decoded?.packet.type === PacketType.Hello);
 * assert.equal(decoded.packet.version, PROTOCOL_VERSION);
 * ```
 */
export const PROTOCOL_VERSION = 1;

/**
 * Size of the frame length field: u32, big-endian, counts body bytes only.
 *
 * @example Find the type byte after the length
 * ```ts
 * import { encode, FRAME_LENGTH_BYTES, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const frame = encode({ type: PacketType.Ping, nonce: 7 });
 * assert.equal(frame[FRAME_LENGTH_BYTES], PacketType.Ping);
 * ```
 */
export const FRAME_LENGTH_BYTES = 4;

/**
 * Size of the frame type field: u8.
 *
 * @example The header is the length, then the type
 * ```ts
 * import {
 *   FRAME_HEADER_BYTES,
 *   FRAME_LENGTH_BYTES,
 *   FRAME_TYPE_BYTES,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.equal(FRAME_HEADER_BYTES, FRAME_LENGTH_BYTES + FRAME_TYPE_BYTES);
 * ```
 */
export const FRAME_TYPE_BYTES = 1;

/**
 * Every frame starts with this header: length (u32) then type (u8).
 *
 * @example Split a frame into header and body
 * ```ts
 * import { encode, FRAME_HEADER_BYTES, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const frame = encode({ type: PacketType.Ping, nonce: 7 });
 * assert.deepEqual(frame.subarray(FRAME_HEADER_BYTES), new Uint8Array([0, 0, 0, 7]));
 * ```
 */
export const FRAME_HEADER_BYTES: number = FRAME_LENGTH_BYTES + FRAME_TYPE_BYTES;

/**
 * Wire sizes of the fields packets are built from.
 *
 * @example Add up the fields of a status request
 * ```ts
 * import { encode, FieldBytes, FRAME_HEADER_BYTES, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const { requestId, ipv4, port } = FieldBytes;
 * const frame = encode({
 *   type: PacketType.SocketStatusRequest,
 *   requestId: 1,
 *   source: 0x0a00_0001,
 *   destination: 0x0a00_0002,
 *   destinationPort: 80,
 * });
 * assert.equal(frame.length, FRAME_HEADER_BYTES + requestId + ipv4 + ipv4 + port);
 * ```
 */
export const FieldBytes = {
  u8: 1,
  u16: 2,
  u32: 4,
  ipv4: 4,
  port: 2,
  requestId: 4,
  connectionId: 4,
} as const;

/**
 * Largest payload of one ArbitraryData frame; larger writes are split.
 *
 * @example Split a large write into data frames
 * ```ts
 * import { encode, MAX_DATA_BYTES, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array(100_000);
 * const frames: Uint8Array[] = [];
 * for (let at = 0; at < data.length; at += MAX_DATA_BYTES) {
 *   const payload = data.subarray(at, at + MAX_DATA_BYTES);
 *   frames.push(encode({ type: PacketType.ArbitraryData, connectionId: 1, payload }));
 * }
 * assert.equal(frames.length, 2);
 * ```
 */
export const MAX_DATA_BYTES = 65_535;

/**
 * Smallest identity secret a Hello may carry.
 *
 * @example A shorter identity is refused
 * ```ts
 * import {
 *   encode,
 *   MIN_IDENTITY_BYTES,
 *   PacketType,
 *   PROTOCOL_VERSION,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const hello = (identity: Uint8Array) =>
 *   encode({ type: PacketType.Hello, version: PROTOCOL_VERSION, identity });
 * assert.throws(() => hello(new Uint8Array(MIN_IDENTITY_BYTES - 1)), RangeError);
 * assert.ok(hello(new Uint8Array(MIN_IDENTITY_BYTES)).length > 0);
 * ```
 */
export const MIN_IDENTITY_BYTES = 16;

/**
 * Largest identity secret a Hello may carry.
 *
 * @example A longer identity is refused
 * ```ts
 * import {
 *   encode,
 *   MAX_IDENTITY_BYTES,
 *   PacketType,
 *   PROTOCOL_VERSION,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const hello = (identity: Uint8Array) =>
 *   encode({ type: PacketType.Hello, version: PROTOCOL_VERSION, identity });
 * assert.throws(() => hello(new Uint8Array(MAX_IDENTITY_BYTES + 1)), RangeError);
 * assert.ok(hello(new Uint8Array(MAX_IDENTITY_BYTES)).length > 0);
 * ```
 */
export const MAX_IDENTITY_BYTES = 256;

/**
 * Largest UTF-8 message an Error frame may carry.
 *
 * @example A longer message is refused
 * ```ts
 * import { encode, MAX_ERROR_MESSAGE_BYTES, PacketType, Reason } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const error = (message: string) =>
 *   encode({ type: PacketType.Error, reason: Reason.Normal, message });
 * assert.throws(() => error("x".repeat(MAX_ERROR_MESSAGE_BYTES + 1)), RangeError);
 * assert.ok(error("x".repeat(MAX_ERROR_MESSAGE_BYTES)).length > 0);
 * ```
 */
export const MAX_ERROR_MESSAGE_BYTES = 1024;

/**
 * Header of an ArbitraryData body: the connection id before the payload.
 *
 * @example Find the payload in a data frame
 * ```ts
 * import {
 *   DATA_HEADER_BYTES,
 *   encode,
 *   FRAME_HEADER_BYTES,
 *   PacketType,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const payload = new Uint8Array([1, 2, 3]);
 * const frame = encode({ type: PacketType.ArbitraryData, connectionId: 5, payload });
 * assert.deepEqual(frame.subarray(FRAME_HEADER_BYTES + DATA_HEADER_BYTES), payload);
 * ```
 */
export const DATA_HEADER_BYTES: number = FieldBytes.connectionId;

/**
 * Largest frame body of any packet: a full ArbitraryData frame.
 *
 * @example The body of the largest data frame
 * ```ts
 * import {
 *   encode,
 *   FRAME_HEADER_BYTES,
 *   MAX_DATA_BYTES,
 *   MAX_FRAME_BODY_BYTES,
 *   PacketType,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const payload = new Uint8Array(MAX_DATA_BYTES);
 * const frame = encode({ type: PacketType.ArbitraryData, connectionId: 1, payload });
 * assert.equal(frame.length - FRAME_HEADER_BYTES, MAX_FRAME_BODY_BYTES);
 * ```
 */
export const MAX_FRAME_BODY_BYTES: number = DATA_HEADER_BYTES + MAX_DATA_BYTES;

/**
 * Largest whole frame on the wire.
 *
 * @example A buffer that holds any frame
 * ```ts
 * import { encodeInto, MAX_DATA_BYTES, MAX_FRAME_BYTES, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const buffer = new Uint8Array(MAX_FRAME_BYTES);
 * const payload = new Uint8Array(MAX_DATA_BYTES);
 * const used = encodeInto({ type: PacketType.ArbitraryData, connectionId: 1, payload }, buffer, 0);
 * assert.equal(used, MAX_FRAME_BYTES);
 * ```
 */
export const MAX_FRAME_BYTES: number = FRAME_HEADER_BYTES + MAX_FRAME_BODY_BYTES;

/**
 * Smallest receive window a peer may announce for a connection.
 *
 * @example A smaller window is refused
 * ```ts
 * import { encode, MIN_WINDOW_BYTES, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const request = (window: number) =>
 *   encode({
 *     type: PacketType.SocketConnectionRequest,
 *     requestId: 1,
 *     connectionId: 0,
 *     source: 0x0a00_0001,
 *     sourcePort: 50_000,
 *     destination: 0x0a00_0002,
 *     destinationPort: 80,
 *     window,
 *   });
 * assert.throws(() => request(MIN_WINDOW_BYTES - 1), RangeError);
 * assert.ok(request(MIN_WINDOW_BYTES).length > 0);
 * ```
 */
export const MIN_WINDOW_BYTES = 16 * 1024;

/**
 * Receive window announced by default.
 *
 * @example Announce the default window
 * ```ts
 * import { decode, DEFAULT_WINDOW_BYTES, encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const request = (window: number) =>
 *   encode({
 *     type: PacketType.SocketConnectionRequest,
 *     requestId: 1,
 *     connectionId: 0,
 *     source: 0x0a00_0001,
 *     sourcePort: 50_000,
 *     destination: 0x0a00_0002,
 *     destinationPort: 80,
 *     window,
 *   });
 * const decoded = decode(request(DEFAULT_WINDOW_BYTES));
 * assert.ok(decoded?.packet.type === PacketType.SocketConnectionRequest);
 * assert.equal(decoded.packet.window, DEFAULT_WINDOW_BYTES);
 * ```
 */
export const DEFAULT_WINDOW_BYTES = 256 * 1024;

/**
 * Largest receive window a peer may announce for a connection, and the
 * largest credit one WindowUpdate may grant.
 *
 * @example A larger grant is refused
 * ```ts
 * import { encode, MAX_WINDOW_BYTES, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const grant = (increment: number) =>
 *   encode({ type: PacketType.WindowUpdate, connectionId: 1, increment });
 * assert.throws(() => grant(MAX_WINDOW_BYTES + 1), RangeError);
 * assert.ok(grant(MAX_WINDOW_BYTES).length > 0);
 * ```
 */
export const MAX_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * Largest virtual port; port 0 is never valid on the wire.
 *
 * @example Ports run from 1 to MAX_PORT
 * ```ts
 * import { encode, MAX_PORT, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const status = (destinationPort: number) =>
 *   encode({
 *     type: PacketType.SocketStatusRequest,
 *     requestId: 1,
 *     source: 0x0a00_0001,
 *     destination: 0x0a00_0002,
 *     destinationPort,
 *   });
 * assert.ok(status(MAX_PORT).length > 0);
 * assert.throws(() => status(MAX_PORT + 1), RangeError);
 * assert.throws(() => status(0), RangeError);
 * ```
 */
export const MAX_PORT = 65_535;

/**
 * First port of the range clients pick local ports of outgoing connections from.
 *
 * @example Pick a local port for an outgoing connection
 * ```ts
 * import { EPHEMERAL_PORT_FIRST, MAX_PORT } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const span = MAX_PORT - EPHEMERAL_PORT_FIRST + 1;
 * const port = EPHEMERAL_PORT_FIRST + Math.floor(Math.random() * span);
 * assert.ok(port >= EPHEMERAL_PORT_FIRST && port <= MAX_PORT);
 * ```
 */
export const EPHEMERAL_PORT_FIRST = 49_152;

/**
 * The relay's TCP port when none is given.
 *
 * @example Fall back to the default port
 * ```ts
 * import { DEFAULT_RELAY_PORT } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * function relayPort(address: string): number {
 *   const colon = address.lastIndexOf(":");
 *   return colon < 0 ? DEFAULT_RELAY_PORT : Number(address.slice(colon + 1));
 * }
 * assert.equal(relayPort("relay.example"), DEFAULT_RELAY_PORT);
 * assert.equal(relayPort("relay.example:9000"), 9000);
 * ```
 */
export const DEFAULT_RELAY_PORT = 1337;

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
  /** C→S. version u16 | identityLength u16 | identity[identityLength] (0, or 16..256 bytes) */
  Hello: 0x01,
  /** S→C. address u32: the client's permanent virtual IPv4 */
  VirtualIP: 0x02,
  /** Both. reason u8 | messageLength u16 | message[messageLength] UTF-8; the sender then closes */
  Error: 0x03,
  /** Both. nonce u32; the receiver answers Pong with the same nonce */
  Ping: 0x04,
  /** Both. nonce u32 */
  Pong: 0x05,
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

/**
 * Reason codes carried by Error, RequestFailed and SocketClosed frames.
 * One table for all three so a code means the same thing everywhere.
 *
 * @example Close a connection with a reason
 * ```ts
 * import { decode, encode, PacketType, Reason } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const frame = encode({
 *   type: PacketType.SocketClosed,
 *   connectionId: 7,
 *   reason: Reason.PeerDisconnected,
 * });
 * const decoded = decode(frame);
 * assert.ok(decoded?.packet.type === PacketType.SocketClosed);
 * assert.equal(decoded.packet.reason, Reason.PeerDisconnected);
 * ```
 */
export const Reason = {
  /** The connection was closed by its peer. */
  Normal: 0,
  /** A frame could not be decoded. */
  Malformed: 1,
  /** The Hello's protocol version is not supported. */
  UnsupportedVersion: 2,
  /** A packet arrived that is not valid in this state or direction. */
  UnexpectedPacket: 3,
  /** A packet named a source address that is not the sender's own. */
  SpoofedAddress: 4,
  /** The identity secret is outside 16..256 bytes. */
  InvalidIdentity: 5,
  /** No virtual IPv4 address is left in the relay's pool. */
  PoolExhausted: 6,
  /** A newer client with the same real IP or identity took over. */
  Replaced: 7,
  /** The peer sent more data than its credit allowed, or granted credit it was never sent. */
  FlowControl: 8,
  /** A packet referred to a request or connection id that was never issued. */
  UnknownId: 9,
  /** The relay is shutting down. */
  Shutdown: 10,
  /** The client did not send Hello in time. */
  HelloTimeout: 11,
  /** The destination virtual IP has no client online. */
  Offline: 12,
  /** The destination did not answer in time. */
  Timeout: 13,
  /** The requester has too many requests in flight. */
  TooManyPending: 14,
  /** A per-client connection limit was reached. */
  TooManyConnections: 15,
  /** The other end's link to the relay dropped. */
  PeerDisconnected: 16,
  /** The client does not read what the relay sends it. */
  SlowConsumer: 17,
  /** The relay hit an unexpected internal error. */
  Internal: 18,
  /** The connection carried no data for the idle time-out. */
  Idle: 19,
  /** The peer sent nothing within the dead interval. */
  PeerTimeout: 20,
  /** The client exceeded its request rate. */
  RateLimited: 21,
  /** The relay has as many clients as it allows. */
  ServerFull: 22,
} as const;

/**
 * One of the {@linkcode Reason} values.
 *
 * @example Decide whether a failure is worth a retry
 * ```ts
 * import { Reason } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * function retryable(reason: Reason): boolean {
 *   return reason === Reason.Timeout || reason === Reason.RateLimited;
 * }
 * assert.ok(retryable(Reason.Timeout));
 * assert.ok(!retryable(Reason.Offline));
 * ```
 */
export type Reason = typeof Reason[keyof typeof Reason];

const REASON_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(Reason).map(([name, code]) => [code, name]),
);

/**
 * Whether `code` is a reason this protocol version defines.
 *
@param code A reason code, as read from anywhere.
 * @returns Whether `code` is one of the {@linkcode Reason} values.
 *
 * @example Check a code before using it as a Reason
 * ```ts
 * import { isReason, Reason } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isReason(Reason.Offline));
 * assert.ok(!isReason(99));
 * ```
 */
export function isReason(code: number): code is Reason {
  return REASON_NAMES.has(code);
}

/**
 * The name of a reason code, for logs and messages.
 *
@param code A reason code, known or not.
 * @returns The code's name in {@linkcode Reason}, e.g. `"Offline"`, or `"Reason(99)"` for
 * an unknown one.
 *
 * @example Name a reason in a log line
 * ```ts
 * import { Reason, reasonName } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.equal(reasonName(Reason.Offline), "Offline");
 * assert.equal(reasonName(99), "Reason(99)");
 * ```
 */
export function reasonName(code: number): string {
  return REASON_NAMES.get(code) ?? `Reason(${code})`;
}
