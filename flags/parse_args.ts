/**
 * `node:util`'s `parseArgs` with its errors turned into one-line
 * {@linkcode UsageError}s: the one place both entrypoints parse flags.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./usage_error.ts";

/**
 * Runs `parseArgs(config)` (strict unless `config.strict` is false, as in `parseArgs`).
 *
 * @param config What `parseArgs` takes: `args`, `options`, `allowPositionals`.
 * @param context Put before the message, such as the command's name; none by default.
 * @returns What `parseArgs` returns.
 * @throws {UsageError} On an unknown flag, a missing value or an unexpected
 *   positional: the first sentence of Node's message (the rest is advice about `--`).
 *
 * @example Parse flags; an unknown one is a usage error
 * ```ts
 * import { parseFlags } from "./parse_args.ts";
 * import assert from "node:assert/strict";
 *
 * const options = { port: { type: "string" } } as const;
 * const { values } = parseFlags({ args: ["--port", "80"], options });
 * assert.equal(values.port, "80");
 * assert.throws(
 *   () => parseFlags({ args: ["--bogus"], options }, "listen"),
 *   /^UsageError: listen: Unknown option '--bogus'$/,
 * );
 * ```
 */
export function parseFlags<T extends ParseArgsConfig>(
  config: T,
  context?: string,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const first = message.split("\n")[0].split(". ")[0];
    throw new UsageError(context === undefined ? first : `${context}: ${first}`);
  }
}
