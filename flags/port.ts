/**
 * The one parser of TCP and virtual port numbers on the command line.
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";

/** Largest port number, TCP's and AlphaNET's alike. */
const MAX_PORT = 65_535;

/** Options of {@linkcode parsePort}. */
export interface ParsePortOptions {
  /** Smallest port accepted: 0 where 0 means "pick a free port". @default {1} */
  readonly min?: 0 | 1;
}

/**
 * Parses a port number written in decimal digits only (no sign, no
 * exponent, no spaces).
 *
 * @param text The text from the command line.
 * @param what What the port is, for the message: `--port`, `target port`, ...
 * @param options The smallest port accepted.
 * @returns The port number.
 * @throws {UsageError} If `text` is not a port in `min..65535`.
 *
 * @example Parse a port, or fail with a one-line usage error
 * ```ts
 * import { parsePort } from "./port.ts";
 * import { UsageError } from "./usage_error.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parsePort("8080", "--port"), 8080);
 * assert.equal(parsePort("0", "--port", { min: 0 }), 0);
 * assert.throws(() => parsePort("0", "target port"), UsageError);
 * assert.throws(() => parsePort("1e3", "--port"), /bad --port "1e3": expected a port number in 1\.\.65535/);
 * ```
 */
export function parsePort(text: string, what: string, options: ParsePortOptions = {}): number {
  const min = options.min ?? 1;
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < min || Number(text) > MAX_PORT) {
    throw new UsageError(`bad ${what} "${text}": expected a port number in ${min}..${MAX_PORT}`);
  }
  return Number(text);
}
