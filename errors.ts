/**
 * Every error AlphaNET throws, as typed classes. Branch on them with
 * `instanceof`, never on message text.
 *
 * In Deno, the socket errors are also Deno's own: a
 * {@linkcode ConnectionRefused} is a `Deno.errors.ConnectionRefused`, a
 * {@linkcode Closed} a `Deno.errors.BadResource`, so code written for
 * `Deno.connect` handles a virtual connection's failures unchanged. Where
 * `Deno` is absent (a browser), they extend `Error`.
 *
 * @module
 */

import { type Reason, Reason as Reasons, reasonName } from "./protocol/reason.ts";
import { ALPHANET_ERROR, ProtocolError } from "./protocol/errors.ts";

export { ProtocolError };

/** An error class constructor as `Deno.errors` holds them. */
type ErrorClass = new (message?: string, options?: ErrorOptions) => Error;

/** The names of the `Deno.errors` classes AlphaNET's socket errors extend. */
type DenoErrorName =
  | "ConnectionRefused"
  | "ConnectionReset"
  | "BrokenPipe"
  | "TimedOut"
  | "AddrInUse"
  | "BadResource";

/**
 * Deno's error class `name`, or `Error` where there is no `Deno` global: read,
 * never called, at import time, so the module loads in a browser.
 */
function denoError(name: DenoErrorName): ErrorClass {
  const deno = (globalThis as { Deno?: { errors?: Partial<Record<DenoErrorName, ErrorClass>> } })
    .Deno;
  return deno?.errors?.[name] ?? Error;
}

/**
 * Re-parents `cls` (declared `extends Error`) under Deno's class `name` where
 * `Deno` exists, so `instanceof Deno.errors.<name>` holds and `super()` runs
 * Deno's constructor. Done at run time because the published types may only
 * name public classes, and a browser has no `Deno.errors` to extend.
 */
function extendDenoError(cls: abstract new (...args: never[]) => Error, name: DenoErrorName): void {
  const parent = denoError(name);
  if (parent === Error) return;
  Object.setPrototypeOf(cls, parent);
  Object.setPrototypeOf(cls.prototype, parent.prototype);
}

/**
 * Base class of every AlphaNET error. `error instanceof AlphaNetError` holds
 * for every error this package throws, including those that extend Deno's
 * classes instead (checked by a brand, not the prototype chain).
 *
 * @example Catch any AlphaNET failure
 * ```ts
 * import { AlphaNetError, ConnectionRefused } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * assert.ok(new AlphaNetError("Cannot do that: demo") instanceof AlphaNetError);
 * assert.ok(new ConnectionRefused("Cannot connect: refused") instanceof AlphaNetError);
 * assert.ok(!(new Error("other") instanceof AlphaNetError));
 * ```
 */
export class AlphaNetError extends Error {
  /** Brands the error as an AlphaNET error. */
  readonly [ALPHANET_ERROR] = true;

  /**
   * Creates an error.
   *
   * @param message What failed, in std's style: `Cannot <action>: <state>`.
   * @param options Standard error options; pass `{ cause }` to wrap another error.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AlphaNetError";
  }

  /**
   * Whether `value` is an AlphaNET error: by brand for `AlphaNetError`
   * itself, by prototype chain for its subclasses.
   *
   * @param value Anything.
   * @returns Whether `value instanceof this` holds.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== AlphaNetError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null &&
      (value as { [ALPHANET_ERROR]?: unknown })[ALPHANET_ERROR] === true;
  }
}

/**
 * The relay said no: it closed this client's link with an Error frame
 * (version mismatch, takeover, pool exhausted, shutdown, a protocol
 * violation, ...), or it refused one request itself (`RateLimited`,
 * `TooManyPending`, `TooManyConnections`, ...) while the link stays up.
 * `reason` tells which; the message names what failed.
 *
 * @example Tell a refused request from a closed link
 * ```ts
 * import { Reason, RelayError } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error: unknown = new RelayError(
 *   "Cannot ping 83.12.4.200: the relay refused the request: RateLimited",
 *   Reason.RateLimited,
 * );
 * assert.ok(error instanceof RelayError);
 * assert.equal(error.reason, Reason.RateLimited);
 * assert.equal(error.reasonName, "RateLimited");
 * ```
 */
export class RelayError extends AlphaNetError {
  /** The reason code from the Error or RequestFailed frame. */
  readonly reason: Reason;

  /**
   * Creates the error. The arguments come in the order of `Error`'s and
   * {@linkcode ProtocolError}'s: the message first.
   *
   * @param message What failed, in std's style; for a closed link, the relay's own message is part of it.
   * @param reason The frame's reason code.
   * @param options Standard error options.
   */
  constructor(message: string, reason: Reason, options?: ErrorOptions) {
    super(message, options);
    this.name = "RelayError";
    this.reason = reason;
  }

  /**
   * The reason's name, such as `"Replaced"`.
   *
   * @returns The name of {@linkcode RelayError.reason}.
   */
  get reasonName(): string {
    return reasonName(this.reason);
  }
}

/**
 * The relay closed this client because a newer link with the same identity
 * (or, without one, the same real IP) took over its virtual IP. A replaced
 * client never reconnects: two copies of one identity must not take the
 * address from each other in turn. A {@linkcode RelayError} with reason
 * `Replaced`, so code that checks `RelayError` keeps working.
 *
 * @example Tell a takeover from other ends
 * ```ts
 * import { RelayError, Replaced } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const ended: Error = new Replaced(
 *   "Cannot keep the link to the relay: the relay closed the link with Replaced: a newer client took over",
 * );
 * assert.ok(ended instanceof Replaced);
 * assert.ok(ended instanceof RelayError);
 * ```
 */
export class Replaced extends RelayError {
  /**
   * Creates the error.
   *
   * @param message What ended the client, with the Error frame's message.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, Reasons.Replaced, options);
    this.name = "Replaced";
  }
}

/** The reasons a relay refuses a join token with (docs/PROTOCOL.md §5.5). */
const JOIN_TOKEN_REASONS: ReadonlySet<number> = new Set([
  Reasons.JoinTokenRequired,
  Reasons.JoinTokenInvalid,
  Reasons.JoinTokenUsedUp,
  Reasons.JoinTokenExpired,
]);

/**
 * Whether `reason` is one a relay refuses a join token with.
 *
 * @param reason A reason code.
 * @returns Whether it is JoinTokenRequired, JoinTokenInvalid, JoinTokenUsedUp or JoinTokenExpired.
 */
export function isJoinTokenReason(reason: number): boolean {
  return JOIN_TOKEN_REASONS.has(reason);
}

/**
 * What a user does about each join token refusal, as the end of a
 * {@linkcode JoinTokenError}'s message. Library words: the command line says
 * `--join-token` instead of `joinToken`.
 */
export const JOIN_TOKEN_ADVICE: Readonly<Record<number, string>> = Object.freeze({
  [Reasons.JoinTokenRequired]:
    "this relay registers a new identity only with a join token: ask its operator for one " +
    "and pass it as joinToken (an identity it already knows needs none)",
  [Reasons.JoinTokenInvalid]:
    "the relay does not know this join token, or it was revoked: check that it was copied " +
    "whole, or ask the relay's operator for a new one",
  [Reasons.JoinTokenUsedUp]:
    "this join token has been used as many times as it allows: ask the relay's operator for a new one",
  [Reasons.JoinTokenExpired]: "this join token has expired: ask the relay's operator for a new one",
});

/**
 * The relay refused to register this client's identity over its join token
 * (docs/PROTOCOL.md §5.5): a relay run with `--join token` registers a new
 * identity only with a valid token. `reason` is `JoinTokenRequired` (none
 * given), `JoinTokenInvalid` (unknown, revoked or mistyped), `JoinTokenUsedUp`
 * or `JoinTokenExpired`; the message ends with what to do. Fatal: the client
 * does not retry, since the same token would be refused again. A
 * {@linkcode RelayError}, so code that checks `RelayError` keeps working.
 *
 * @example Ask for a token when the relay wants one
 * ```ts
 * import { JoinTokenError, Reason, RelayError } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error: unknown = new JoinTokenError(
 *   "Cannot join relay: the relay closed the link with JoinTokenRequired: a join token is required",
 *   Reason.JoinTokenRequired,
 * );
 * assert.ok(error instanceof JoinTokenError);
 * assert.ok(error instanceof RelayError);
 * assert.equal(error.reasonName, "JoinTokenRequired");
 * assert.throws(() => new JoinTokenError("Cannot join relay: demo", Reason.Replaced), RangeError);
 * ```
 */
export class JoinTokenError extends RelayError {
  /**
   * Creates the error.
   *
   * @param message What failed, with the Error frame's message and what to do.
   * @param reason `JoinTokenRequired`, `JoinTokenInvalid`, `JoinTokenUsedUp` or `JoinTokenExpired`.
   * @param options Standard error options.
   * @throws {RangeError} If `reason` is not one of those four.
   */
  constructor(message: string, reason: Reason, options?: ErrorOptions) {
    if (!isJoinTokenReason(reason)) {
      throw new RangeError(
        `Cannot create JoinTokenError: ${reasonName(reason)} is not a join token reason`,
      );
    }
    super(message, reason, options);
    this.name = "JoinTokenError";
  }
}

/**
 * After reconnecting, the relay assigned this client a different virtual IP
 * than before (for example, the relay lost its registry). Fatal: the client
 * closes rather than carry on under another address.
 *
 * @example Read both addresses
 * ```ts
 * import { AddressChanged } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error = new AddressChanged("83.12.4.200", "45.33.2.10");
 * assert.equal(error.expected, "83.12.4.200");
 * assert.equal(error.actual, "45.33.2.10");
 * ```
 */
export class AddressChanged extends AlphaNetError {
  /** The virtual IP this client had. */
  readonly expected: string;
  /** The virtual IP the relay assigned on reconnect. */
  readonly actual: string;

  /**
   * Creates the error from the old and the new virtual IP.
   *
   * @param expected The virtual IP this client had.
   * @param actual The virtual IP the relay assigned instead.
   * @param options Standard error options.
   */
  constructor(expected: string, actual: string, options?: ErrorOptions) {
    super(
      `Cannot reconnect: the relay assigned virtual IP ${actual} instead of ${expected}`,
      options,
    );
    this.name = "AddressChanged";
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The relay's Challenge carried another relay id than the one this client is
 * pinned to: the `relayId` option, or the id of the relay the client first
 * joined (every later link must show the same). A relay that forwards another
 * relay's Challenge would otherwise get a signature that takes this client's
 * address there, so the client ends the link before it signs anything.
 * Fatal: the client does not retry.
 *
 * @example Read both ids
 * ```ts
 * import { AlphaNetError, RelayIdMismatch } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error = new RelayIdMismatch("ab".repeat(32), "cd".repeat(32));
 * assert.ok(error instanceof AlphaNetError);
 * assert.equal(error.expected, "ab".repeat(32));
 * assert.equal(error.actual, "cd".repeat(32));
 * assert.match(error.message, /^Cannot join relay: its relay id is cdcd.*, not the pinned abab/);
 * ```
 */
export class RelayIdMismatch extends AlphaNetError {
  /** The pinned relay id, 64 lowercase hex digits. */
  readonly expected: string;
  /** The relay id the Challenge carried, 64 lowercase hex digits. */
  readonly actual: string;

  /**
   * Creates the error from the pinned and the received relay id.
   *
   * @param expected The pinned relay id (hex).
   * @param actual The relay id in the Challenge (hex).
   * @param options Standard error options.
   */
  constructor(expected: string, actual: string, options?: ErrorOptions) {
    super(
      `Cannot join relay: its relay id is ${actual}, not the pinned ${expected}: ` +
        "another relay may be relaying its challenge; check --server / relayId",
      options,
    );
    this.name = "RelayIdMismatch";
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The destination virtual IP has no client online.
 *
 * @example Tell an offline host from a refusal
 * ```ts
 * import { ConnectionRefused, HostUnreachable } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error: Error = new HostUnreachable("Cannot ping 1.2.3.4: host is offline");
 * assert.ok(error instanceof HostUnreachable);
 * assert.ok(!(error instanceof ConnectionRefused));
 * ```
 */
export class HostUnreachable extends AlphaNetError {
  /**
   * Creates the error.
   *
   * @param message What could not be reached.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HostUnreachable";
  }
}

/**
 * Nothing listens on the destination port, or its owner denied the request.
 * In Deno, also a `Deno.errors.ConnectionRefused`.
 *
 * @example Caught by Deno's own check
 * ```ts
 * import { AlphaNetError, ConnectionRefused } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error = new ConnectionRefused("Cannot connect to 1.2.3.4:80: nothing listens there");
 * assert.ok(error instanceof Deno.errors.ConnectionRefused);
 * assert.ok(error instanceof AlphaNetError);
 * ```
 */
export class ConnectionRefused extends Error {
  /** Brands the error as an AlphaNET error. */
  readonly [ALPHANET_ERROR] = true;

  /**
   * Creates the error.
   *
   * @param message What was refused.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionRefused";
  }
}
extendDenoError(ConnectionRefused, "ConnectionRefused");

/**
 * The virtual port is already bound by a listener or connection of this
 * client. In Deno, also a `Deno.errors.AddrInUse`.
 *
 * @example Caught by Deno's own check
 * ```ts
 * import { AddrInUse } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * assert.ok(new AddrInUse("Cannot listen on port 80: in use") instanceof Deno.errors.AddrInUse);
 * ```
 */
export class AddrInUse extends Error {
  /** Brands the error as an AlphaNET error. */
  readonly [ALPHANET_ERROR] = true;

  /**
   * Creates the error.
   *
   * @param message Which port is in use.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AddrInUse";
  }
}
extendDenoError(AddrInUse, "AddrInUse");

/**
 * A virtual connection ended abnormally: the link to the relay dropped, or
 * the peer vanished. In Deno, also a `Deno.errors.ConnectionReset`.
 *
 * @example Caught by Deno's own check
 * ```ts
 * import { ConnectionReset } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error = new ConnectionReset("Cannot write: link lost");
 * assert.ok(error instanceof Deno.errors.ConnectionReset);
 * ```
 */
export class ConnectionReset extends Error {
  /** Brands the error as an AlphaNET error. */
  readonly [ALPHANET_ERROR] = true;

  /**
   * Creates the error.
   *
   * @param message What was cut off.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionReset";
  }
}
extendDenoError(ConnectionReset, "ConnectionReset");

/**
 * A write on a virtual connection whose peer has closed it, or whose write
 * side this end has shut down. In Deno, also a `Deno.errors.BrokenPipe`.
 *
 * @example Caught by Deno's own check
 * ```ts
 * import { BrokenPipe } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * assert.ok(new BrokenPipe("Cannot write: peer closed") instanceof Deno.errors.BrokenPipe);
 * ```
 */
export class BrokenPipe extends Error {
  /** Brands the error as an AlphaNET error. */
  readonly [ALPHANET_ERROR] = true;

  /**
   * Creates the error.
   *
   * @param message What could not be written.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokenPipe";
  }
}
extendDenoError(BrokenPipe, "BrokenPipe");

/**
 * A request to the relay or a peer did not finish in time. In Deno, also a
 * `Deno.errors.TimedOut`.
 *
 * @example Caught by Deno's own check
 * ```ts
 * import { TimedOut } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error = new TimedOut("Cannot connect: no answer in 10000 ms");
 * assert.ok(error instanceof Deno.errors.TimedOut);
 * ```
 */
export class TimedOut extends Error {
  /** Brands the error as an AlphaNET error. */
  readonly [ALPHANET_ERROR] = true;

  /**
   * Creates the error.
   *
   * @param message What took too long.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TimedOut";
  }
}
extendDenoError(TimedOut, "TimedOut");

/**
 * The relay sent nothing (not even a Pong to this client's Pings) for
 * `peerTimeoutMs`: the link is treated as dead, like a TCP connection that
 * dropped. A {@linkcode TimedOut}.
 *
 * @example A silent relay is a time-out
 * ```ts
 * import { PeerTimeout, TimedOut } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error = new PeerTimeout(
 *   "Cannot keep the link to the relay: nothing received for 45000 ms",
 * );
 * assert.ok(error instanceof TimedOut);
 * ```
 */
export class PeerTimeout extends TimedOut {
  /**
   * Creates the error.
   *
   * @param message How long the relay was silent.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerTimeout";
  }
}

/**
 * The client, listener or connection was closed locally before the
 * operation finished: a write after the connection's `close()`, an
 * `accept()` on a closed listener, a request on a closed client. In Deno,
 * also a `Deno.errors.BadResource`, what Deno throws for the same calls on a
 * closed `Deno.Conn` or `Deno.Listener`.
 *
 * One difference from Deno: a `read()` on a closed virtual connection
 * resolves null (end of stream), whether it was pending when `close()` ran
 * or started after it; Deno's `read()` throws `BadResource` for the latter.
 *
 * @example Caught by Deno's own check, and told from a failure
 * ```ts
 * import { AlphaNetError, Closed, ConnectionReset } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const error: Error = new Closed("Cannot accept: the listener is closed");
 * assert.ok(error instanceof Deno.errors.BadResource);
 * assert.ok(error instanceof Closed);
 * assert.ok(error instanceof AlphaNetError);
 * assert.ok(!(error instanceof ConnectionReset));
 * ```
 */
export class Closed extends Error {
  /** Brands the error as an AlphaNET error. */
  readonly [ALPHANET_ERROR] = true;

  /**
   * Creates the error.
   *
   * @param message What was cut short, in std's style: `Cannot <action>: <state>`.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Closed";
  }
}
extendDenoError(Closed, "BadResource");
