/**
 * `--progress`: bytes and rate of each direction on stderr, at most every
 * 500 ms, with percent and time left when the size to send is known, and a
 * final line that says "done" only for a transfer that succeeded.
 *
 * @module
 */

import type { EventLog } from "./log.ts";
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

/** A duration as `42 s`, `3 min 05 s` or `2 h 07 min`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} min`;
}

/**
 * What has been sent: "sent X MiB (R MiB/s)", or with a known `total`
 * "sent X of T MiB (P%, R MiB/s, ETA D)", the time left at the average rate
 * so far (steadier than the last interval's).
 */
export function sentText(
  sent: number,
  total: number | null,
  intervalRate: string,
  elapsedSeconds: number,
): string {
  if (total === null || total === 0) return `sent ${mib(sent)} (${intervalRate})`;
  const percent = Math.min(100, Math.floor((100 * sent) / total));
  const average = elapsedSeconds > 0 ? sent / elapsedSeconds : 0;
  const eta = sent >= total ? "0 s" : average > 0 ? formatDuration((total - sent) / average) : "?";
  return `sent ${(sent / MiB).toFixed(1)} of ${
    mib(total)
  } (${percent}%, ${intervalRate}, ETA ${eta})`;
}

/** A running progress report; `stop()` prints the final line. */
export interface Progress {
  /**
   * Stops the timer and prints the totals: "done in ..." if `succeeded`,
   * else "failed after ...". Idempotent.
   */
  stop(succeeded: boolean): void;
}

/**
 * Prints "sent X MiB (R MiB/s), received Y MiB (R MiB/s)" to stderr every
 * {@linkcode PROGRESS_INTERVAL_MS} (rates over the last interval; percent
 * and ETA of the sending side when `total`, the bytes stdin holds, is
 * known), and a final "done in S s: ..." or "failed after S s: ..." line
 * with the average rates, as events of `log` ("progress", "transfer-done",
 * "transfer-failed", with byte counts as fields).
 */
export function startProgress(
  sent: Counter,
  received: Counter,
  total: number | null,
  log: EventLog,
): Progress {
  const start = performance.now();
  let last = { at: start, sent: 0, received: 0 };
  const timer = setInterval(() => {
    const now = performance.now();
    const seconds = (now - last.at) / 1000;
    log.log(
      "info",
      "progress",
      `${
        sentText(sent.bytes, total, rate(sent.bytes - last.sent, seconds), (now - start) / 1000)
      }, ` +
        `received ${mib(received.bytes)} (${rate(received.bytes - last.received, seconds)})`,
      { sentBytes: sent.bytes, receivedBytes: received.bytes, totalBytes: total },
    );
    last = { at: now, sent: sent.bytes, received: received.bytes };
  }, PROGRESS_INTERVAL_MS);
  let stopped = false;
  return {
    stop(succeeded: boolean): void {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      const seconds = (performance.now() - start) / 1000;
      const head = succeeded
        ? `done in ${seconds.toFixed(2)} s`
        : `failed after ${seconds.toFixed(2)} s`;
      log.log(
        succeeded ? "info" : "error",
        succeeded ? "transfer-done" : "transfer-failed",
        `${head}: sent ${mib(sent.bytes)} (${rate(sent.bytes, seconds)}), ` +
          `received ${mib(received.bytes)} (${rate(received.bytes, seconds)})`,
        {
          seconds: Number(seconds.toFixed(3)),
          sentBytes: sent.bytes,
          receivedBytes: received.bytes,
        },
      );
    },
  };
}
