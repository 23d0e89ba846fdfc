/**
 * Packets as a closed, discriminated union on their {@linkcode PacketType}.
 * Addresses are IPv4 as unsigned 32-bit integers; see `address.ts`.
 *
 * @module
 */

import type { PacketType } from "./packet_type.ts";
import type { Reason } from "./reason.ts";

/**
 * First frame of a client: the protocol version it speaks. A Hello of
 * another version decodes to its version alone (whatever its other bytes),
 * so the relay can answer `UnsupportedVersion`.
 *
 * @example Open a link
 * ```ts
 * import { decode, encode, type HelloPacket, PacketType, PROTOCOL_VERSION } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: HelloPacket = { type: PacketType.Hello, version: PROTOCOL_VERSION };
 * assert.deepEqual(encode(packet), new Uint8Array([0, 0, 0, 2, 0x01, 0, 2]));
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface HelloPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Hello;
  /** Protocol version the client speaks. */
  readonly version: number;
}

/**
 * The relay's answer to a Hello of its version: what the client's
 * {@linkcode ProofPacket} signs. The nonce is fresh on every link, so a
 * recorded Proof is worth nothing on another.
 *
 * @example Read a challenge
 * ```ts
 * import { type ChallengePacket, decode, encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: ChallengePacket = {
 *   type: PacketType.Challenge,
 *   relayId: new Uint8Array(32).fill(1),
 *   nonce: crypto.getRandomValues(new Uint8Array(32)),
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface ChallengePacket {
  /** The frame type. */
  readonly type: typeof PacketType.Challenge;
  /** The relay's id: 32 bytes, the same on every link to one relay (registry). */
  readonly relayId: Uint8Array;
  /** 32 random bytes, new for this link. */
  readonly nonce: Uint8Array;
}

/** A Proof's identity: an Ed25519 public key and its signature of the identity message. */
export interface ProofIdentity {
  /** Raw Ed25519 public key, 32 bytes: what the relay keys the address on. */
  readonly publicKey: Uint8Array;
  /** Ed25519 signature, 64 bytes, of `identityProofMessage(challenge, publicKey)`. */
  readonly signature: Uint8Array;
}

/** A Proof's join token: the token's id and a signature by the token's key. */
export interface ProofJoinToken {
  /** The token's id, 8 bytes (the first part of the token's text). */
  readonly id: Uint8Array;
  /** Ed25519 signature, 64 bytes, by the token's key, of `joinTokenProofMessage(...)`. */
  readonly signature: Uint8Array;
}

/** A Proof's claim of a version 1 secret-keyed address, made without sending the secret. */
export interface ProofLegacyClaim {
  /** SHA-256 of the 32-byte SHA-256 of the version 1 identity secret: finds the row. */
  readonly tag: Uint8Array;
  /** HMAC-SHA-256 keyed with SHA-256(secret) of `legacyClaimMessage(...)`. */
  readonly mac: Uint8Array;
}

/**
 * The client's answer to a Challenge: who it is (an Ed25519 public key and
 * its signature), and what admits it (a join token), each bound to this
 * relay and this link's nonce. Nothing in it is secret.
 *
 * @example A Proof without identity (keyed on the real IP) is one byte
 * ```ts
 * import { encode, PacketType, type ProofPacket } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: ProofPacket = {
 *   type: PacketType.Proof,
 *   identity: null,
 *   joinToken: null,
 *   legacyClaim: null,
 * };
 * assert.deepEqual(encode(packet), new Uint8Array([0, 0, 0, 1, 0x07, 0]));
 * ```
 */
export interface ProofPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Proof;
  /** The identity, or null to be keyed on the real IP. */
  readonly identity: ProofIdentity | null;
  /** A join token, or null. */
  readonly joinToken: ProofJoinToken | null;
  /** A claim of a version 1 address (needs `identity`), or null. */
  readonly legacyClaim: ProofLegacyClaim | null;
}

/**
 * The relay's answer to Hello: the client's permanent virtual IPv4.
 *
 * @example Read the address the relay assigned
 * ```ts
 * import {
 *   decode,
 *   encode,
 *   formatIpv4,
 *   PacketType,
 *   type VirtualIpPacket,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: VirtualIpPacket = { type: PacketType.VirtualIP, address: 0x0a00_0007 };
 * const decoded = decode(encode(packet));
 * assert.ok(decoded?.packet.type === PacketType.VirtualIP);
 * assert.equal(formatIpv4(decoded.packet.address), "10.0.0.7");
 * ```
 */
export interface VirtualIpPacket {
  /** The frame type. */
  readonly type: typeof PacketType.VirtualIP;
  /** The client's permanent virtual IPv4 (u32). */
  readonly address: number;
}

/**
 * A fatal error; the sender closes the link after it.
 *
 * @example Report why the link closes
 * ```ts
 * import { decode, encode, type ErrorPacket, PacketType, Reason } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: ErrorPacket = {
 *   type: PacketType.Error,
 *   reason: Reason.Replaced,
 *   message: "Cannot keep link: a newer client took over",
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface ErrorPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Error;
  /** Why; see the Reason table. */
  readonly reason: Reason;
  /** Human-readable detail, at most 1024 UTF-8 bytes. */
  readonly message: string;
}

/**
 * Keepalive probe; answered with a Pong carrying the same nonce.
 *
 * @example Answer a Ping with a Pong
 * ```ts
 * import { PacketType, type PingPacket, type PongPacket } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * function answer(ping: PingPacket): PongPacket {
 *   return { type: PacketType.Pong, nonce: ping.nonce };
 * }
 * const pong = answer({ type: PacketType.Ping, nonce: 42 });
 * assert.deepEqual(pong, { type: PacketType.Pong, nonce: 42 });
 * ```
 */
export interface PingPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Ping;
  /** Echoed back unchanged in the Pong. */
  readonly nonce: number;
}

/**
 * Keepalive answer.
 *
 * @example Match a Pong to the Ping it answers
 * ```ts
 * import { PacketType, type PongPacket } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const sent = new Set([7, 8]);
 * const pong: PongPacket = { type: PacketType.Pong, nonce: 8 };
 * assert.ok(sent.delete(pong.nonce));
 * assert.deepEqual([...sent], [7]);
 * ```
 */
export interface PongPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Pong;
  /** The nonce of the Ping this answers. */
  readonly nonce: number;
}

/**
 * Is anything listening at `destination:destinationPort`? The first step of
 * opening a connection; the destination's owner answers.
 *
 * @example Ask whether anything listens on 10.0.0.2:80
 * ```ts
 * import {
 *   decode,
 *   encode,
 *   PacketType,
 *   type SocketStatusRequestPacket,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: SocketStatusRequestPacket = {
 *   type: PacketType.SocketStatusRequest,
 *   requestId: 1,
 *   source: 0x0a00_0001,
 *   destination: 0x0a00_0002,
 *   destinationPort: 80,
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface SocketStatusRequestPacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketStatusRequest;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** The requester's own virtual IP; the relay refuses any other. */
  readonly source: number;
  /** Virtual IPv4 of the destination (u32). */
  readonly destination: number;
  /** Virtual port at the destination, 1..65535. */
  readonly destinationPort: number;
}

/**
 * The destination owner's answer to a SocketStatusRequest.
 *
 * @example Answer that something listens
 * ```ts
 * import {
 *   decode,
 *   encode,
 *   PacketType,
 *   type SocketStatusResponsePacket,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: SocketStatusResponsePacket = {
 *   type: PacketType.SocketStatusResponse,
 *   requestId: 1,
 *   listening: true,
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface SocketStatusResponsePacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketStatusResponse;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** Whether something listens on the requested port. */
  readonly listening: boolean;
}

/**
 * Opens a virtual connection: the second step, once a SocketStatusRequest
 * was answered yes.
 *
 * @example Open a connection to 10.0.0.2:80 with the default window
 * ```ts
 * import {
 *   decode,
 *   DEFAULT_WINDOW_BYTES,
 *   encode,
 *   PacketType,
 *   type SocketConnectionRequestPacket,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: SocketConnectionRequestPacket = {
 *   type: PacketType.SocketConnectionRequest,
 *   requestId: 2,
 *   connectionId: 0,
 *   source: 0x0a00_0001,
 *   sourcePort: 49_152,
 *   destination: 0x0a00_0002,
 *   destinationPort: 80,
 *   window: DEFAULT_WINDOW_BYTES,
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface SocketConnectionRequestPacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketConnectionRequest;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** 0 from a client; the owner-side connection id when the relay forwards it. */
  readonly connectionId: number;
  /** The requester's virtual IPv4 (u32). */
  readonly source: number;
  /** The requester's virtual port, 1..65535. */
  readonly sourcePort: number;
  /** Virtual IPv4 of the destination (u32). */
  readonly destination: number;
  /** Virtual port at the destination, 1..65535. */
  readonly destinationPort: number;
  /** The requester's receive window for this connection, in bytes. */
  readonly window: number;
}

/**
 * The owner's accept or deny, forwarded by the relay to the requester.
 *
 * @example Accept a connection, then deny one
 * ```ts
 * import {
 *   decode,
 *   encode,
 *   PacketType,
 *   type SocketConnectionResponsePacket,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: SocketConnectionResponsePacket = {
 *   type: PacketType.SocketConnectionResponse,
 *   requestId: 2,
 *   connectionId: 17,
 *   accepted: true,
 *   window: 256 * 1024,
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * // A denial carries neither a connection id nor a window.
 * const denied: SocketConnectionResponsePacket = {
 *   type: PacketType.SocketConnectionResponse,
 *   requestId: 3,
 *   connectionId: 0,
 *   accepted: false,
 *   window: 0,
 * };
 * assert.deepEqual(decode(encode(denied))?.packet, denied);
 * ```
 */
export interface SocketConnectionResponsePacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketConnectionResponse;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** The receiver's own id for the new connection; 0 when denied. */
  readonly connectionId: number;
  /** Whether the owner accepted the connection. */
  readonly accepted: boolean;
  /** The accepting side's receive window; 0 when denied. */
  readonly window: number;
}

/**
 * The relay could not complete a request (destination offline, time-out, limits).
 *
 * @example Fail a request whose destination is offline
 * ```ts
 * import {
 *   decode,
 *   encode,
 *   PacketType,
 *   Reason,
 *   type RequestFailedPacket,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: RequestFailedPacket = {
 *   type: PacketType.RequestFailed,
 *   requestId: 1,
 *   reason: Reason.Offline,
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface RequestFailedPacket {
  /** The frame type. */
  readonly type: typeof PacketType.RequestFailed;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** Why; see the Reason table. */
  readonly reason: Reason;
}

/**
 * Asks another client to answer, through the relay: the round trip of `ping`.
 *
 * @example Ask 10.0.0.2 to answer
 * ```ts
 * import { decode, type EchoRequestPacket, encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: EchoRequestPacket = {
 *   type: PacketType.EchoRequest,
 *   requestId: 5,
 *   source: 0x0a00_0001,
 *   destination: 0x0a00_0002,
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface EchoRequestPacket {
  /** The frame type. */
  readonly type: typeof PacketType.EchoRequest;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** The requester's virtual IPv4 (u32); the relay refuses any other. */
  readonly source: number;
  /** Virtual IPv4 of the client asked (u32). */
  readonly destination: number;
}

/**
 * The asked client's answer to an EchoRequest, forwarded by the relay.
 *
 * @example Answer an echo request by its id
 * ```ts
 * import { decode, type EchoReplyPacket, encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: EchoReplyPacket = { type: PacketType.EchoReply, requestId: 5 };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface EchoReplyPacket {
  /** The frame type. */
  readonly type: typeof PacketType.EchoReply;
  /** The request id the receiver knows the request by. */
  readonly requestId: number;
}

/**
 * Bytes on an active virtual connection.
 *
 * @example Send bytes, and keep a copy of what arrives
 * ```ts
 * import { type ArbitraryDataPacket, decode, encode, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const sent: ArbitraryDataPacket = {
 *   type: PacketType.ArbitraryData,
 *   connectionId: 17,
 *   payload: new TextEncoder().encode("hello"),
 * };
 * const frame = encode(sent);
 * const decoded = decode(frame);
 * assert.ok(decoded?.packet.type === PacketType.ArbitraryData);
 * // The payload is a view into `frame`: copy it before the buffer is reused.
 * const kept = decoded.packet.payload.slice();
 * frame.fill(0);
 * assert.equal(new TextDecoder().decode(kept), "hello");
 * ```
 */
export interface ArbitraryDataPacket {
  /** The frame type. */
  readonly type: typeof PacketType.ArbitraryData;
  /** The receiver's own id of the connection end. */
  readonly connectionId: number;
  /** 1..MAX_DATA_BYTES bytes; a view into the decoded buffer, copy it to keep it. */
  readonly payload: Uint8Array;
}

/**
 * Grants the other end `increment` more bytes of send credit.
 *
 * @example Grant 64 KiB more credit after reading 64 KiB
 * ```ts
 * import { decode, encode, PacketType, type WindowUpdatePacket } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: WindowUpdatePacket = {
 *   type: PacketType.WindowUpdate,
 *   connectionId: 17,
 *   increment: 64 * 1024,
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface WindowUpdatePacket {
  /** The frame type. */
  readonly type: typeof PacketType.WindowUpdate;
  /** The receiver's own id of the connection end. */
  readonly connectionId: number;
  /** Bytes of credit granted, 1..MAX_WINDOW_BYTES. */
  readonly increment: number;
}

/**
 * The sender writes no more data on this connection (half-close).
 *
 * @example Half-close a connection
 * ```ts
 * import { decode, encode, PacketType, type SocketShutdownPacket } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: SocketShutdownPacket = { type: PacketType.SocketShutdown, connectionId: 17 };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface SocketShutdownPacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketShutdown;
  /** The receiver's own id of the connection end. */
  readonly connectionId: number;
}

/**
 * The connection is gone, both directions.
 *
 * @example Close a connection because the peer left
 * ```ts
 * import {
 *   decode,
 *   encode,
 *   PacketType,
 *   Reason,
 *   type SocketClosedPacket,
 * } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const packet: SocketClosedPacket = {
 *   type: PacketType.SocketClosed,
 *   connectionId: 17,
 *   reason: Reason.PeerDisconnected,
 * };
 * assert.deepEqual(decode(encode(packet))?.packet, packet);
 * ```
 */
export interface SocketClosedPacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketClosed;
  /** The receiver's own id of the connection end. */
  readonly connectionId: number;
  /** Why; see the Reason table. */
  readonly reason: Reason;
}

/**
 * Every AlphaNET packet: a union discriminated by `type`, so a `switch` on
 * it narrows each case to its packet's fields.
 *
 * @example Handle the packets a client cares about
 * ```ts
 * import { type Packet, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * function describe(packet: Packet): string {
 *   switch (packet.type) {
 *     case PacketType.VirtualIP:
 *       return `joined as ${packet.address}`;
 *     case PacketType.Ping:
 *       return `ping ${packet.nonce}`;
 *     default:
 *       return `frame type ${packet.type}`;
 *   }
 * }
 * assert.equal(describe({ type: PacketType.Ping, nonce: 3 }), "ping 3");
 * assert.equal(describe({ type: PacketType.EchoReply, requestId: 1 }), "frame type 22");
 * ```
 */
export type Packet =
  | HelloPacket
  | ChallengePacket
  | ProofPacket
  | VirtualIpPacket
  | ErrorPacket
  | PingPacket
  | PongPacket
  | SocketStatusRequestPacket
  | SocketStatusResponsePacket
  | SocketConnectionRequestPacket
  | SocketConnectionResponsePacket
  | RequestFailedPacket
  | EchoRequestPacket
  | EchoReplyPacket
  | ArbitraryDataPacket
  | WindowUpdatePacket
  | SocketShutdownPacket
  | SocketClosedPacket;
