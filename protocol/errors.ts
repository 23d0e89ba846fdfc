/**
 * The codec's one error: bytes that break the protocol. It lives here, not
 * in the package root, so the codec depends on nothing outside `protocol/`.
 *
 * @module
 */

import type { Reason } from "./reason.ts";

/**
 * Marks every AlphaNET error, so `instanceof AlphaNetError` holds for errors
 * that cannot extend it (this one, and those that extend Deno's own classes).
 * A registered symbol: a second copy of the module marks its errors alike.
 */
export const ALPHANET_ERROR: unique symbol = Symbol.for("@alphanet/net.error") as never;

/**
 * Bytes on the wire that break the protocol: a bad length, an unknown type,
 * a truncated body, or a field outside its range. `reason` is the code sent
 * to the peer in the Error frame that closes it.
 *
 * @example Tell malformed bytes from a partial frame
 * ```ts
 * import { decode, ProtocolError, Reason } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * // Type 0xff does not exist: malformed, not "more bytes needed".
 * assert.throws(
 *   () => decode(new Uint8Array([0, 0, 0, 0, 0xff])),
 *   (error) => error instanceof ProtocolError && error.reason === Reason.Malformed,
 * );
 * // Three bytes of a header: a partial frame.
 * assert.equal(decode(new Uint8Array([0, 0, 0])), null);
 * ```
 */
export class ProtocolError extends Error {
  /** The reason code sent to the peer in the Error frame. */
  readonly reason: Reason;
  /** Brands the error as an AlphaNET error (see `AlphaNetError`). */
  readonly [ALPHANET_ERROR] = true;

  /**
   * Creates a protocol error.
   *
   * @param message What broke the protocol, in std's style: `Cannot decode frame: ...`.
   * @param reason The reason code to report to the peer.
   * @param options Standard error options; pass `{ cause }` to wrap another error.
   */
  constructor(message: string, reason: Reason, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.reason = reason;
  }
}
