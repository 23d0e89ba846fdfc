/**
 * How both entrypoints print a failure: one line, after their own prefix.
 *
 * @module
 */

/**
 * An error as one line for a command line's stderr: the first line of its
 * message, its first letter lowercased unless the word is an acronym, so it
 * reads on after a prefix such as `alphanet: ` ("alphanet: cannot connect
 * to ...", never "alphanet: Cannot connect to ...").
 *
 * @param error Anything thrown.
 * @returns One line of text, without a trailing newline.
 *
 * @example Print an error after a prefix
 * ```ts
 * import { oneLine } from "./one_line.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(oneLine(new Error("Cannot connect: refused\nat ...")), "cannot connect: refused");
 * assert.equal(oneLine(new Error("TLS handshake failed")), "TLS handshake failed");
 * assert.equal(oneLine("plain text"), "plain text");
 * ```
 */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = message.split("\n")[0];
  return /^[A-Z][a-z]/.test(line) ? line[0].toLowerCase() + line.slice(1) : line;
}
