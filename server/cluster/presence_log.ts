/**
 * The log of presence: NATS status changes as they are, and everything any
 * NATS publisher can cause (refused payloads, subscription errors) through a
 * rate-limited front, so a flood on a subject can never flood the log.
 *
 * @module
 */

import type { LogLevel } from "../config.ts";
import type { Logger } from "../log.ts";
import { RateLimitedLog } from "../log_limiter.ts";

/** How often suppressed counts are reported, at the earliest (presence has no sweep of its own). */
const SUPPRESSED_REPORT_MS = 10_000;
/** A subject can be long (a wildcard token is anyone's choice): logs keep its start. */
const MAX_LOGGED_SUBJECT_CHARS = 120;

/** A {@linkcode Logger} for presence, with a rate-limited side for what the wire causes. */
export class PresenceLog {
  readonly #log: Logger;
  readonly #limited: RateLimitedLog;
  #lastReport = performance.now();

  /** Logs through `log`. */
  constructor(log: Logger) {
    this.#log = log;
    this.#limited = new RateLimitedLog(log);
  }

  /** Logs a status change or an internal event, never rate-limited. */
  log(level: Exclude<LogLevel, "silent">, event: string, fields?: Record<string, unknown>): void {
    this.#log.log(level, event, fields);
  }

  /** Logs an event a NATS publisher can repeat at will: at most 10 a second per event name. */
  limited(
    level: Exclude<LogLevel, "silent">,
    event: string,
    fields: Record<string, unknown>,
  ): void {
    const now = performance.now();
    this.#limited.log(level, event, fields, now);
    // Reported on the next such event (or at close), since presence runs no timer of its own.
    if (now - this.#lastReport >= SUPPRESSED_REPORT_MS) {
      this.#lastReport = now;
      this.#limited.report(now);
    }
  }

  /** A payload that is not what its subject carries: logged (rate-limited) and dropped. */
  refused(what: string, subject: string): void {
    this.#dropped("presence-malformed", what, subject);
  }

  /**
   * A payload whose MAC is missing or wrong (forged, or from a relay with
   * another mesh key): logged (rate-limited) and dropped.
   */
  unauthenticated(what: string, subject: string): void {
    this.#dropped("presence-unauthenticated", what, subject);
  }

  /** A payload dropped unread: too many MACs are being checked at once (a flood). */
  overloaded(what: string, subject: string): void {
    this.#dropped("presence-overloaded", what, subject);
  }

  /** Logs a dropped payload (rate-limited), with its subject cut to a bound. */
  #dropped(event: string, what: string, subject: string): void {
    this.limited("warn", event, { what, subject: subject.slice(0, MAX_LOGGED_SUBJECT_CHARS) });
  }

  /** Reports what was suppressed so far (at close). */
  report(): void {
    this.#limited.report();
  }
}
