/**
 * `--progress`: bytes and rate of each direction on stderr, at most every
 * 500 ms, and a final line with the totals and average rates.
 *
 * @module
 */

import type { Counter } from "./pipe.ts";

/** How often a progress line is printed while bytes flow. */
export const PROGRESS_INTERVAL_MS = 500;

const MiB = 1024 * 1024;

/** A byte count in MiB. */
function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** A rate in MiB/s. */
function rate(bytes: number, seconds: number): string {
  return `${(seconds > 0 ? bytes / MiB / seconds : 0).toFixed(1)} MiB/s`;
}

/** A running progress report; `stop()` prints the final line. */
export interface Progress {
  /** Stops the timer and prints the totals. Idempotent. */
  stop(): void;
}

/**
 * Prints "sent X MiB (R MiB/s), received Y MiB (R MiB/s)" to stderr every
 * {@linkcode PROGRESS_INTERVAL_MS} (rates over the last interval), and a
 * final "done: ..." line with the average rates.
 */
export function startProgress(sent: Counter, received: Counter): Progress {
  const start = performance.now();
  let last = { at: start, sent: 0, received: 0 };
  const line = (text: string): void => {
    Deno.stderr.writeSync(new TextEncoder().encode(text + "\n"));
  };
  const timer = setInterval(() => {
    const now = performance.now();
    const seconds = (now - last.at) / 1000;
    line(
      `sent ${mib(sent.bytes)} (${rate(sent.bytes - last.sent, seconds)}), ` +
        `received ${mib(received.bytes)} (${rate(received.bytes - last.received, seconds)})`,
    );
    last = { at: now, sent: sent.bytes, received: received.bytes };
  }, PROGRESS_INTERVAL_MS);
  let stopped = false;
  return {
    stop(): void {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      const seconds = (performance.now() - start) / 1000;
      line(
        `done in ${seconds.toFixed(2)} s: sent ${mib(sent.bytes)} (${
          rate(sent.bytes, seconds)
        }), ` +
          `received ${mib(received.bytes)} (${rate(received.bytes, seconds)})`,
      );
    },
  };
}
