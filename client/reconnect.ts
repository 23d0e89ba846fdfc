/**
 * When and how an established client reconnects: which link errors are
 * fatal, the backoff between attempts, and the retry loop.
 *
 * @module
 */

import {
  AddressChanged,
  ConnectionReset,
  ProtocolError,
  RelayError,
  RelayIdMismatch,
} from "../errors.ts";
import { Reason } from "../protocol/reason.ts";
import { ProofFailed } from "./link.ts";
import type { ReconnectOptions } from "./options.ts";
import { refTimer } from "./ref_timer.ts";

/** The backoff settings of a reconnecting client. */
export type ReconnectPolicy = Readonly<Required<ReconnectOptions>>;

/**
 * Error reasons after which a client must not reconnect: a takeover (two
 * copies of one identity would take the address from each other in turn),
 * refusals that a retry cannot change (a refused identity or join token is
 * refused again), and protocol violations (a bug on one side: reconnecting
 * would loop).
 */
const FATAL_REASONS: ReadonlySet<number> = new Set([
  Reason.Replaced,
  Reason.UnsupportedVersion,
  Reason.PoolExhausted,
  Reason.InvalidIdentity,
  Reason.JoinTokenRequired,
  Reason.JoinTokenInvalid,
  Reason.JoinTokenUsedUp,
  Reason.JoinTokenExpired,
  Reason.Malformed,
  Reason.UnexpectedPacket,
  Reason.SpoofedAddress,
  Reason.FlowControl,
  Reason.UnknownId,
]);

/**
 * Whether `error`, which ended a link or failed a reconnect attempt, ends
 * the client for good: a fatal reason, a protocol violation, a changed
 * address, a relay id other than the pinned one, a Proof the keys would not
 * sign, a denied permission. Everything else (EOF, reset, refused TCP connect,
 * PeerTimeout, handshake time-out, and the relay's Shutdown, PeerTimeout,
 * SlowConsumer, HelloTimeout, Internal, RateLimited, ServerFull) is retried.
 */
export function isFatal(error: unknown): boolean {
  if (error instanceof RelayError) return FATAL_REASONS.has(error.reason);
  return error instanceof ProtocolError || error instanceof AddressChanged ||
    error instanceof RelayIdMismatch || error instanceof ProofFailed || isDenied(error);
}

/** Deno's error classes for a denied permission; none where there is no Deno (a browser). */
interface DenialClasses {
  PermissionDenied?: abstract new (...args: never[]) => Error;
  NotCapable?: abstract new (...args: never[]) => Error;
}

/** Whether `error` is Deno's denied permission; read only when called, false without Deno. */
function isDenied(error: unknown): boolean {
  const errors = (globalThis as { Deno?: { errors?: DenialClasses } }).Deno?.errors;
  if (errors === undefined) return false;
  return [errors.PermissionDenied, errors.NotCapable].some((cls) =>
    typeof cls === "function" && error instanceof cls
  );
}

/**
 * Delay before attempt `attempt` (from 0): full jitter, a uniformly random
 * time in `[0, min(maxDelayMs, initialDelayMs * 2^attempt)]`, so clients
 * that lost one relay together do not come back together.
 */
export function backoffDelay(
  attempt: number,
  policy: ReconnectPolicy,
  random: () => number = Math.random,
): number {
  const bound = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 1023));
  return random() * bound;
}

/** One attempt: opens a link and hands it to the client, or rejects. */
export type Attempt = (signal: AbortSignal) => Promise<void>;

/**
 * Runs reconnect attempts with backoff, one run at a time. A run ends when
 * an attempt succeeds, fails fatally, the attempts run out, or
 * {@linkcode Reconnector.cancel} is called.
 */
export class Reconnector {
  readonly #policy: ReconnectPolicy;
  readonly #attempt: Attempt;
  readonly #giveUp: (error: Error) => void;
  readonly #abort = new AbortController();
  #running: Promise<void> = Promise.resolve();
  #sleep: { timer: ReturnType<typeof setTimeout>; wake: () => void } | null = null;
  /** Whether the wait between attempts keeps the process alive. */
  #refd = true;

  /** `giveUp` runs when a run ends without a link (fatal error or no attempts left). */
  constructor(policy: ReconnectPolicy, attempt: Attempt, giveUp: (error: Error) => void) {
    this.#policy = policy;
    this.#attempt = attempt;
    this.#giveUp = giveUp;
  }

  /** Starts a run after the current one (if any) ends; `cause` is what ended the link. */
  start(cause: Error): void {
    this.#running = this.#running.then(() => this.#run(cause));
  }

  /** Whether the wait between attempts keeps the process alive (an attempt in flight always does). */
  setRef(keep: boolean): void {
    this.#refd = keep;
    if (this.#sleep) refTimer(this.#sleep.timer, keep);
  }

  /** Stops for good: aborts the attempt in flight, cancels the wait; resolves once the run ended. */
  cancel(): Promise<void> {
    this.#abort.abort();
    if (this.#sleep) {
      clearTimeout(this.#sleep.timer);
      this.#sleep.wake();
      this.#sleep = null;
    }
    return this.#running;
  }

  async #run(cause: Error): Promise<void> {
    const signal = this.#abort.signal;
    let last: unknown = cause;
    for (let attempt = 0; attempt < this.#policy.maxAttempts; attempt++) {
      await new Promise<void>((wake) => {
        if (signal.aborted) return wake();
        const timer = setTimeout(() => {
          this.#sleep = null;
          wake();
        }, backoffDelay(attempt, this.#policy));
        if (!this.#refd) refTimer(timer, false);
        this.#sleep = { timer, wake };
      });
      if (signal.aborted) return;
      try {
        await this.#attempt(signal);
        return;
      } catch (error) {
        if (signal.aborted) return;
        if (isFatal(error)) return this.#giveUp(error as Error);
        last = error;
      }
    }
    this.#giveUp(
      new ConnectionReset(
        `Cannot reconnect to the relay: ${this.#policy.maxAttempts} attempts failed ` +
          `(the link ended with: ${cause.message})`,
        { cause: last },
      ),
    );
  }
}
