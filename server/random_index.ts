/**
 * A uniform random index, for the registries' random starting points: both
 * the SQLite and the PostgreSQL registry draw where their search for a freed
 * address begins, so the order of reuse cannot be predicted.
 *
 * @module
 */

/** Values a 32-bit word holds: the range one draw covers. */
const WORD_VALUES = 2 ** 32;

/**
 * A uniform random integer in `[0, size)`, without modulo bias: draws that
 * fall in the last, partial multiple of `size` are drawn again.
 *
 * @example Draw an index into a pool of ten
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomIndex } from "./random_index.ts";
 *
 * const index = randomIndex(10);
 * assert.ok(Number.isInteger(index) && index >= 0 && index < 10);
 * ```
 *
 * @param size How many indexes to draw from, 1 to 2^32.
 * @returns An integer in `[0, size)`, every one equally likely.
 */
export function randomIndex(size: number): number {
  const word = new Uint32Array(1);
  const limit = WORD_VALUES - (WORD_VALUES % size);
  for (;;) {
    crypto.getRandomValues(word);
    if (word[0] < limit) return word[0] % size;
  }
}
