/**
 * The event lines commands print on stderr while they run (a relay retry, a
 * refused connection, progress), as text or, with `--log-format json`, one
 * JSON object a line in the relay's shape: `time`, `level`, `event`, then
 * the event's fields. An error that ends a command is not an event: it stays
 * one plain `alphanet: cannot ...` line either way.
 *
 * @module
 */

/** The values of `--log-format`. */
export const LOG_FORMATS = ["text", "json"] as const;

/** One of {@linkcode LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/** How much an event matters: news, a failure the command survives, one it reports. */
export type EventLevel = "info" | "warn" | "error";

/** Writes one line to stderr. */
function stderrLine(line: string): void {
  console.error(line);
}

/** A command's stderr events, in the format `--log-format` chose. */
export class EventLog {
  readonly #format: LogFormat;
  readonly #command: string;
  readonly #write: (line: string) => void;

  /**
   * `command` goes into every JSON object; `write` is stderr unless a test
   * gives another.
   */
  constructor(format: LogFormat, command: string, write: (line: string) => void = stderrLine) {
    this.#format = format;
    this.#command = command;
    this.#write = write;
  }

  /**
   * Logs `event`: as text, the line `text` as it is; as JSON,
   * `{ time, level, event, command, ...fields, message: text }`, so a
   * machine reads the fields and a person still has the sentence.
   */
  log(
    level: EventLevel,
    event: string,
    text: string,
    fields: Record<string, unknown> = {},
  ): void {
    if (this.#format === "text") return this.#write(text);
    const time = new Date().toISOString();
    this.#write(
      JSON.stringify({ time, level, event, command: this.#command, ...fields, message: text }),
    );
  }
}
