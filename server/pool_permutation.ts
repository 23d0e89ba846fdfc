/**
 * A keyed pseudo-random permutation of a pool's index space, so the registry
 * can hand out addresses in an order nobody can guess, one step per join,
 * with no scan however full the pool is.
 *
 * @module
 */

import { createCipheriv } from "node:crypto";

/** Bytes of the secret key; the registry stores it beside the walk's cursor. */
export const PERMUTATION_KEY_BYTES = 32;

/**
 * Rounds of the Feistel network: four rounds of a pseudo-random function make
 * a pseudo-random permutation (Luby–Rackoff).
 */
const ROUNDS = 4;

/** Smallest domain: two bits, so both halves of the network hold at least one bit. */
const MIN_DOMAIN_BITS = 2;

/** Bytes of one round-table entry: a half is at most 16 bits. */
const ENTRY_BYTES = 2;

/**
 * A bijection of `[0, size)` onto itself, keyed: a balanced Feistel network
 * over the smallest even power of two that holds `size`, cycle-walked back
 * into range. Over a domain at most four times `size`, a walk takes fewer than
 * four network passes on average.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PoolPermutation } from "./pool_permutation.ts";
 *
 * const permutation = new PoolPermutation(10, new Uint8Array(32));
 * const images = Array.from({ length: 10 }, (_, i) => permutation.at(i));
 * assert.deepEqual([...images].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
 * ```
 */
export class PoolPermutation {
  readonly #size: number;
  /** Values a half holds; multiplication, not `<<`, keeps 32-bit results unsigned. */
  readonly #halfSize: number;
  /** Selects a half's bits; halves are at most 16 bits, so `&` stays unsigned. */
  readonly #halfMask: number;
  /**
   * The round functions as tables, one per round, indexed by the right half:
   * random values drawn once from the key (a Feistel network with random round
   * functions is a pseudo-random permutation), so a join computes no hash and
   * allocates nothing. At most 4 × 2^16 entries: 512 KiB for the default pool.
   */
  readonly #tables: Uint16Array[];

  /**
   * Creates the permutation of `[0, size)` for `key`.
   *
   * @param size How many indexes to permute, 1 to 2^32.
   * @param key {@linkcode PERMUTATION_KEY_BYTES} secret random bytes.
   */
  constructor(size: number, key: Uint8Array) {
    if (!Number.isInteger(size) || size < 1 || size > 2 ** 32) {
      throw new RangeError(`Cannot permute ${size} indexes: expected 1 to 2^32`);
    }
    if (key.length !== PERMUTATION_KEY_BYTES) {
      throw new RangeError(
        `Cannot use permutation key: ${key.length} bytes, expected ${PERMUTATION_KEY_BYTES}`,
      );
    }
    const bits = Math.max(MIN_DOMAIN_BITS, Math.ceil(Math.log2(size)));
    this.#size = size;
    this.#halfSize = 2 ** Math.ceil(bits / 2);
    this.#halfMask = this.#halfSize - 1;
    this.#tables = roundTables(key, this.#halfSize, this.#halfMask);
  }

  /** How many indexes the permutation covers. */
  get size(): number {
    return this.#size;
  }

  /** The image of `index`, in `[0, size)`; distinct indexes have distinct images. */
  at(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.#size) {
      throw new RangeError(`Cannot permute index ${index}: expected 0 to ${this.#size - 1}`);
    }
    // Cycle walking: the network permutes the whole domain, so following the cycle from an
    // in-range index must come back into range, and distinct starts stay distinct.
    let value = this.#encrypt(index);
    while (value >= this.#size) value = this.#encrypt(value);
    return value;
  }

  #encrypt(value: number): number {
    let left = Math.floor(value / this.#halfSize);
    let right = value & this.#halfMask;
    for (let round = 0; round < ROUNDS; round++) {
      const next = (left ^ this.#tables[round][right]) & this.#halfMask;
      left = right;
      right = next;
    }
    return left * this.#halfSize + right;
  }
}

/**
 * Draws the round tables from `key`: the AES-256-CTR keystream of the key (a
 * pseudo-random function of it), read as little-endian u16s so a registry
 * file moved to another machine walks the same permutation.
 */
function roundTables(key: Uint8Array, halfSize: number, halfMask: number): Uint16Array[] {
  const cipher = createCipheriv("aes-256-ctr", key, new Uint8Array(16));
  const bytes = cipher.update(new Uint8Array(ROUNDS * halfSize * ENTRY_BYTES));
  cipher.final(); // frees the cipher's native context now, not at some later GC

  return Array.from({ length: ROUNDS }, (_, round) => {
    const table = new Uint16Array(halfSize);
    const base = round * halfSize * ENTRY_BYTES;
    for (let i = 0; i < halfSize; i++) {
      table[i] = (bytes[base + ENTRY_BYTES * i] | bytes[base + ENTRY_BYTES * i + 1] << 8) &
        halfMask;
    }
    return table;
  });
}
