/**
 * The live TCP <-> virtual connection pairs of `expose` and `forward`: each
 * pair is spliced (both directions, half-close propagated), and all of them
 * are closed when the command stops.
 *
 * @module
 */

import { stateOf } from "./errors.ts";
import { type Duplex, splice } from "./pipe.ts";

/** A set of running splices. */
export class Tunnels {
  readonly #command: string;
  readonly #live = new Map<Promise<void>, () => void>();
  #closing = false;

  /** `command` prefixes the one-line notices of failed pairs on stderr. */
  constructor(command: string) {
    this.#command = command;
  }

  /**
   * Splices `a` and `b` until both directions end, then closes both. A
   * failure closes both and prints one line naming `label`.
   */
  add(a: Duplex, b: Duplex, label: string): void {
    const close = (): void => {
      for (const end of [a, b]) {
        try {
          end.close();
        } catch {
          // Already closed.
        }
      }
    };
    const done = splice(a, b).then(
      () => {},
      (error) => {
        // Pairs cut by closeAll() fail by design: nothing to report.
        if (!this.#closing) console.error(`${this.#command}: ${label}: ${stateOf(error)}`);
      },
    ).finally(() => this.#live.delete(done));
    this.#live.set(done, close);
  }

  /** Closes every pair and waits for their splices to finish. */
  async closeAll(): Promise<void> {
    this.#closing = true;
    const running = [...this.#live];
    for (const [, close] of running) close();
    await Promise.all(running.map(([done]) => done));
  }
}
