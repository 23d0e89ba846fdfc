/**
 * The reason codes of the AlphaNET wire: why a link, a request or a
 * connection ended. One table for Error, RequestFailed and SocketClosed.
 *
 * @module
 */

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
  /**
   * The client's identity was refused: its Proof's signature (or legacy claim)
   * does not verify, or the relay requires an identity and the Proof has none.
   */
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
  /** The relay admits new identities only with a join token, and the Proof carries none. */
  JoinTokenRequired: 23,
  /** The join token is unknown, revoked, or its signature does not verify. */
  JoinTokenInvalid: 24,
  /** The join token has been used as many times as it allows. */
  JoinTokenUsedUp: 25,
  /** The join token has expired. */
  JoinTokenExpired: 26,
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
 * @param code A reason code, known or not.
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
