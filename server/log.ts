/**
 * One-line-per-event logging to stderr, filtered by level.
 *
 * @module
 */

import { LOG_LEVELS, type LogFormat, type LogLevel } from "./config.ts";

/** Writes log events at or above a level, as text or as one JSON object a line. */
export class Logger {
  readonly #threshold: number;
  readonly #format: LogFormat;

  /** Creates a logger that prints events at `level` and above. */
  constructor(level: LogLevel, format: LogFormat = "text") {
    this.#threshold = LOG_LEVELS.indexOf(level);
    this.#format = format;
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
    const time = new Date().toISOString();
    if (this.#format === "json") {
      console.error(JSON.stringify({ time, level, event, ...fields }));
      return;
    }
    const parts = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
    console.error(
      `${time} ${level} ${event}${parts.length ? " " : ""}${parts.join(" ")}`,
    );
  }
}
