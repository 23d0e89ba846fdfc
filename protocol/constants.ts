/**
 * The sizes, limits and defaults of the AlphaNET wire; the frame types are in
 * `packet_type.ts`, the reason codes in `reason.ts`.
 *
 * Protocol flow (see docs/PROTOCOL.md for the byte-level spec):
 *
 *   client                         relay                          owner of B
 *     | Hello(version 2) ----------> |                                |
 *     | <- Challenge(relayId, nonce) |                                |
 *     | Proof(key, signature, ...) > |                                |
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
 * const hello = encode({ type: PacketType.Hello, version: PROTOCOL_VERSION });
 * const decoded = decode(hello);
 * assert.ok(decoded?.packet.type === PacketType.Hello);
 * assert.equal(decoded.packet.version, PROTOCOL_VERSION);
 * ```
 */
export const PROTOCOL_VERSION = 2;

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
 * Largest Hello body any version may send. A version 2 Hello is 2 bytes; the
 * limit is version 1's largest Hello, so that an old client is told
 * `UnsupportedVersion` rather than `Malformed`.
 *
 * @example A Hello of an older version still decodes to its version
 * ```ts
 * import { decode, MAX_HELLO_BODY_BYTES, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * // Version 1's Hello: version 1, identityLength 0.
 * const v1 = new Uint8Array([0, 0, 0, 4, PacketType.Hello, 0, 1, 0, 0]);
 * assert.deepEqual(decode(v1)?.packet, { type: PacketType.Hello, version: 1 });
 * assert.equal(MAX_HELLO_BODY_BYTES, 260);
 * ```
 */
export const MAX_HELLO_BODY_BYTES = 260;

/**
 * Sizes of the handshake's fixed-size byte fields (Challenge and Proof):
 * Ed25519 public keys and signatures, the relay id and challenge nonce, join
 * token ids, and the legacy claim's tag and HMAC-SHA-256.
 *
 * @example Size a Proof that carries only an identity
 * ```ts
 * import { encodedLength, HandshakeBytes, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const { publicKey, signature } = HandshakeBytes;
 * const proof = {
 *   type: PacketType.Proof,
 *   identity: { publicKey: new Uint8Array(publicKey), signature: new Uint8Array(signature) },
 *   joinToken: null,
 *   legacyClaim: null,
 * } as const;
 * assert.equal(encodedLength(proof), 5 + 1 + publicKey + signature);
 * ```
 */
export const HandshakeBytes = {
  /** An Ed25519 public key, raw. */
  publicKey: 32,
  /** An Ed25519 signature. */
  signature: 64,
  /** The relay's id, in every Challenge of one relay. */
  relayId: 32,
  /** The random nonce of one Challenge. */
  nonce: 32,
  /** A join token's id (the token's public half). */
  tokenId: 8,
  /** The legacy claim's tag: SHA-256 of the version 1 identity hash. */
  legacyTag: 32,
  /** The legacy claim's HMAC-SHA-256. */
  legacyMac: 32,
} as const;

/**
 * The flag bits of a Proof's first byte: which sections follow, in this
 * order. Any other bit set is malformed; a legacy claim needs an identity.
 *
 * @example Read which sections a Proof carries
 * ```ts
 * import { ProofFlags } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const flags = ProofFlags.Identity | ProofFlags.JoinToken;
 * assert.ok((flags & ProofFlags.JoinToken) !== 0);
 * assert.equal(flags & ProofFlags.LegacyClaim, 0);
 * ```
 */
export const ProofFlags = {
  /** publicKey[32] | signature[64] follow. */
  Identity: 0x01,
  /** tokenId[8] | tokenSignature[64] follow. */
  JoinToken: 0x02,
  /** legacyTag[32] | legacyMac[32] follow (only with Identity). */
  LegacyClaim: 0x04,
} as const;

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
 * The WebSocket subprotocol an AlphaNET link is opened with (docs/PROTOCOL.md
 * §2.4): a client offers it, the relay picks it.
 *
 * @example The offer a browser makes
 * ```ts
 * import { WEBSOCKET_SUBPROTOCOL } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.equal(WEBSOCKET_SUBPROTOCOL, "alphanet");
 * ```
 */
export const WEBSOCKET_SUBPROTOCOL = "alphanet";

/**
 * The WebSocket close code of reason 0: a relay that ends a WebSocket link
 * with reason R closes it with this plus R (docs/PROTOCOL.md §2.4), after the
 * Error frame.
 *
 * @example The close code of ServerFull
 * ```ts
 * import { Reason, WEBSOCKET_REASON_CLOSE_BASE } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.equal(WEBSOCKET_REASON_CLOSE_BASE + Reason.ServerFull, 4022);
 * ```
 */
export const WEBSOCKET_REASON_CLOSE_BASE = 4000;
