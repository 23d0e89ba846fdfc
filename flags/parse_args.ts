/**
 * `node:util`'s `parseArgs` with its errors turned into one-line
 * {@linkcode UsageError}s in our own words: the one place both entrypoints
 * parse flags.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./usage_error.ts";

/** The option specs of a `parseArgs` config. */
type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

/**
 * Runs `parseArgs(config)` (strict unless `config.strict` is false, as in
 * `parseArgs`). Node's messages (`Option '--x <value>' argument missing`)
 * never reach the user: on a bad command line the arguments are read again
 * as tokens, and the first wrong one is described:
 * - `unknown flag "--bogus"`;
 * - `missing value of --identity-file` (also when the next argument starts
 *   with `-`: write `--flag=-value` to pass such a value);
 * - `--json takes no value`;
 * - `unexpected argument "extra"`.
 *
 * @param config What `parseArgs` takes: `args`, `options`, `allowPositionals`.
 * @param context Put before the message, such as the command's name; none by default.
 * @returns What `parseArgs` returns.
 * @throws {UsageError} On an unknown flag, a missing value or an unexpected
 *   positional, with one of the messages above.
 *
 * @example Parse flags; a bad one is a usage error in plain words
 * ```ts
 * import { parseFlags } from "./parse_args.ts";
 * import assert from "node:assert/strict";
 *
 * const options = { port: { type: "string" }, json: { type: "boolean" } } as const;
 * const { values } = parseFlags({ args: ["--port", "80"], options });
 * assert.equal(values.port, "80");
 * assert.throws(
 *   () => parseFlags({ args: ["--bogus"], options }, "clients"),
 *   /^UsageError: clients: unknown flag "--bogus"$/,
 * );
 * assert.throws(() => parseFlags({ args: ["--port"], options }), /^UsageError: missing value of --port$/);
 * assert.throws(() => parseFlags({ args: ["--json=1"], options }), /^UsageError: --json takes no value$/);
 * assert.throws(
 *   () => parseFlags({ args: ["extra"], options, allowPositionals: false }),
 *   /^UsageError: unexpected argument "extra"$/,
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
    // Node's text is not ours to show; the tokens say what is wrong.
    const problem = firstProblem(config) ??
      (error instanceof Error ? error.message : String(error)).split("\n")[0];
    throw new UsageError(context === undefined ? problem : `${context}: ${problem}`, {
      cause: error,
    });
  }
}

/** The first argument that strict parsing rejects, in our words; null if none is found. */
function firstProblem(config: ParseArgsConfig): string | null {
  const options: OptionSpecs = config.options ?? {};
  // Positionals allowed here, or this parse would throw Node's text for them too.
  const { tokens } = parseArgs({ ...config, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === "positional") {
      if (config.allowPositionals !== true) return `unexpected argument "${token.value}"`;
      continue;
    }
    if (token.kind !== "option") continue;
    const spec = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (spec === undefined) return `unknown flag "${token.rawName}"`;
    if (spec.type === "string") {
      // Strict parsing takes "--flag -x" for a forgotten value too (Node calls it ambiguous).
      const forgotten = token.value?.startsWith("-") === true && token.inlineValue === false;
      if (token.value === undefined || forgotten) return `missing value of ${token.rawName}`;
    } else if (token.value !== undefined) {
      return `${token.rawName} takes no value`;
    }
  }
  return null;
}
