/**
 * One-line-per-event logging to stderr, filtered by level.
 *
 * @module
 */

import { LOG_LEVELS, type LogLevel } from "./config.ts";

/** Writes log events at or above a level. */
export class Logger {
  readonly #threshold: number;

  /** Creates a logger that prints events at `level` and above. */
  constructor(level: LogLevel) {
    this.#threshold = LOG_LEVELS.indexOf(level);
  }

  /** Whether events at `level` are printed. */
  enabled(level: Exclude<LogLevel, "silent">): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#threshold;
  }

  /** Logs one event: a short name and its fields. */
  log(
    level: Exclude<LogLevel, "silent">,
    event: string,
    fields: Record<string, unknown> = {},
  ): void {
    if (!this.enabled(level)) return;
    const parts = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
    console.error(
      `${new Date().toISOString()} ${level} ${event}${parts.length ? " " : ""}${parts.join(" ")}`,
    );
  }
}
