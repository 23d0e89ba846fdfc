/**
 * The two ways a command fails: a bad command line (exit 2) or a runtime
 * failure (exit 1). Either is printed as one line on stderr.
 *
 * @module
 */

/** A bad command line: printed on one line, exit code 2. */
export class UsageError extends Error {
  /** Creates a usage error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure while running (relay unreachable, host offline, ...): one line, exit code 1. */
export class RuntimeError extends Error {
  /** Creates a runtime error with a one-line message; pass `{ cause }` to wrap another error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
  }
}

/** The first line of an error's message, for one-line reports. */
export function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0];
}
