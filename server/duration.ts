/**
 * Durations as an operator types them on the command line: `90d`, `12h`,
 * `30m`, `45s`, or bare seconds.
 *
 * @module
 */

const MS_PER_UNIT = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * Parses a duration into milliseconds: a number (decimals allowed) and an
 * optional unit, `s` (the default), `m`, `h` or `d`; null for anything else.
 *
 * @param text What the operator typed, e.g. `"30d"`.
 * @returns The duration in whole milliseconds, or null if `text` is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDuration } from "./duration.ts";
 *
 * assert.equal(parseDuration("30d"), 30 * 86_400_000);
 * assert.equal(parseDuration("1.5h"), 5_400_000);
 * assert.equal(parseDuration("90"), 90_000);
 * assert.equal(parseDuration("-1d"), null);
 * ```
 */
export function parseDuration(text: string): number | null {
  const match = /^([0-9]+(?:\.[0-9]+)?)([smhd]?)$/.exec(text);
  if (match === null) return null;
  const unit = (match[2] || "s") as keyof typeof MS_PER_UNIT;
  const ms = Math.round(Number(match[1]) * MS_PER_UNIT[unit]);
  return Number.isSafeInteger(ms) ? ms : null;
}
