/**
 * Rate-limited logging for events a remote party can cause at will
 * (refusals, sweeps): each event name has its own small token bucket, and
 * lines over it are counted, then reported as one "N more suppressed" line,
 * so a flood can never flood the log.
 *
 * @module
 */

import type { LogLevel } from "./config.ts";
import type { Logger } from "./log.ts";
import { TokenBucket } from "./token_bucket.ts";

/** Lines per second each event may write, and how many it may write at once. */
const LINES_PER_SECOND = 10;
const LINE_BURST = 20;

interface EventBudget {
  readonly bucket: TokenBucket;
  readonly level: Exclude<LogLevel, "silent">;
  suppressed: number;
}

/** A {@linkcode Logger} front with a budget per event name. */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #budgets = new Map<string, EventBudget>();

  /** Logs through `log`, at most 10 lines a second (bursts of 20) per event name. */
  constructor(log: Logger) {
    this.#log = log;
  }

  /** Whether events at `level` are printed at all. */
  enabled(level: Exclude<LogLevel, "silent">): boolean {
    return this.#log.enabled(level);
  }

  /** Logs one event unless its name is over budget; then counts it as suppressed. */
  log(
    level: Exclude<LogLevel, "silent">,
    event: string,
    fields: Record<string, unknown> = {},
    now: number = performance.now(),
  ): void {
    if (!this.#log.enabled(level)) return;
    let budget = this.#budgets.get(event);
    if (budget === undefined) {
      budget = { bucket: new TokenBucket(LINES_PER_SECOND, LINE_BURST, now), level, suppressed: 0 };
      this.#budgets.set(event, budget);
    }
    if (!budget.bucket.tryTake(now)) {
      budget.suppressed++;
      return;
    }
    this.#log.log(level, event, fields);
  }

  /**
   * Reports, once per event, how many lines were suppressed since the last
   * report, and forgets quiet events. The relay calls it from its sweep.
   */
  report(now: number = performance.now()): void {
    for (const [event, budget] of this.#budgets) {
      if (budget.suppressed > 0) {
        this.#log.log(budget.level, "log-suppressed", {
          event,
          suppressed: budget.suppressed,
          note: `${budget.suppressed} more ${event} lines suppressed`,
        });
        budget.suppressed = 0;
      } else if (budget.bucket.full(now)) {
        this.#budgets.delete(event); // a full bucket is what a fresh one would be
      }
    }
  }
}
