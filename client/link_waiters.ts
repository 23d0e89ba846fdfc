/**
 * Calls waiting for the client's link to come back while it reconnects, each
 * with a time-out. The client decides when they are let through or failed.
 *
 * @module
 */

import { TimedOut } from "../errors.ts";
import type { Link } from "./link.ts";

/** A `connect()` or `status()` call waiting for the link to come back. */
interface LinkWaiter {
  readonly resolve: (link: Link) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** The waiting calls; owned by the client's public methods and its link events. */
export class LinkWaiters {
  readonly #waiters = new Set<LinkWaiter>();

  /** Waits up to `ms` for {@linkcode LinkWaiters.resolveAll}, then rejects with TimedOut. */
  wait(action: string, ms: number): Promise<Link> {
    return new Promise<Link>((resolve, reject) => {
      const waiter: LinkWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(
            new TimedOut(`Cannot ${action}: the link to the relay did not come back in ${ms} ms`),
          );
        }, ms),
      };
      this.#waiters.add(waiter);
    });
  }

  /** A link joined: every waiting call goes on with it. */
  resolveAll(link: Link): void {
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(link);
    }
    this.#waiters.clear();
  }

  /** The client ended: every waiting call fails with `error`. */
  rejectAll(error: Error): void {
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.#waiters.clear();
  }
}
