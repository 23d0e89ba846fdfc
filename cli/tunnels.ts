/**
 * The live TCP <-> virtual connection pairs of `expose` and `forward`: each
 * pair is spliced (both directions, half-close propagated), and all of them
 * are closed when the command stops.
 *
 * @module
 */

import { stateOf } from "./errors.ts";
import type { EventLog } from "./log.ts";
import { type Duplex, splice } from "./pipe.ts";

/** A set of running splices. */
export class Tunnels {
  readonly #command: string;
  readonly #log: EventLog;
  readonly #live = new Map<Promise<void>, () => void>();
  #closing = false;

  /** `command` prefixes the one-line notices of failed pairs, which go to `log`. */
  constructor(command: string, log: EventLog) {
    this.#command = command;
    this.#log = log;
  }

  /**
   * Splices `a` and `b` until both directions end, then closes both. A
   * failure closes both and logs one line: "<command>: connection from
   * <from>: cannot exchange data with <to>: <why>".
   */
  add(a: Duplex, b: Duplex, from: string, to: string): void {
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
        if (this.#closing) return;
        const line = `cannot exchange data with ${to}: ${stateOf(error)}`;
        this.#log.log(
          "warn",
          "connection-failed",
          `${this.#command}: connection from ${from}: ${line}`,
          { from, to, error: line },
        );
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
