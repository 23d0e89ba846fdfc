/**
 * The error of a bad command line, shared by the client's `cli.ts` and the
 * relay's `server.ts`: both print its message on one line and exit 2.
 *
 * @module
 */

/**
 * A bad command line (unknown flag, malformed value, wrong arguments). The
 * entrypoints print its message on one line and exit with code 2, where a
 * runtime failure exits 1.
 *
 * @example Tell a bad command line from a runtime failure
 * ```ts
 * import { UsageError } from "./usage_error.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new UsageError('bad --port "x": expected a port number in 0..65535');
 * assert.ok(error instanceof UsageError);
 * assert.equal(error.name, "UsageError");
 * ```
 */
export class UsageError extends Error {
  /**
   * Creates a usage error.
   *
   * @param message One line saying what is wrong, such as `bad --port "x": ...`.
   * @param options Standard error options; `{ cause }` keeps the parser's own error.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}
