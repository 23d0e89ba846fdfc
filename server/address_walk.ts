/**
 * Where a new client's address comes from: the next free step of a keyed
 * walk over the pool, then, once the walk has covered it, an address freed
 * by release or expiry. Each costs a bounded number of index seeks, however
 * full the pool.
 *
 * @module
 */

import type { AddressPool } from "./address_pool.ts";
import { PERMUTATION_KEY_BYTES, PoolPermutation } from "./pool_permutation.ts";
import { randomIndex } from "./random_index.ts";
import type { RegistryStatements } from "./registry_statements.ts";

/**
 * Picks addresses for new clients of one pool. Runs inside the registry's
 * write transaction: the cursor it advances and the rows it inserts commit
 * together.
 */
export class AddressWalk {
  readonly #sql: RegistryStatements;
  readonly #pool: AddressPool;
  /** The pool's text: each pool (each `--vip-range`) keeps its own walk. */
  readonly #poolText: string;
  /** Built from the stored key on first use. */
  #permutation: PoolPermutation | null = null;

  /** A walk of `pool` through the registry's statements. */
  constructor(sql: RegistryStatements, pool: AddressPool) {
    this.#sql = sql;
    this.#pool = pool;
    this.#poolText = pool.toString();
  }

  /**
   * Gives `insert` free candidates until it takes one (returns true), and
   * returns that address; null if the pool has none free.
   */
  take(insert: (address: number) => boolean): number | null {
    return this.#takeFresh(insert) ?? this.#takeReleased(insert);
  }

  /**
   * The next address of the walk that `insert` takes, advancing the cursor;
   * null once the walk has covered the pool. An address taken already (files
   * from before the walk assigned at random) is skipped once, as the cursor
   * passes it, so the skips of all joins together are at most its rows.
   */
  #takeFresh(insert: (address: number) => boolean): number | null {
    let walk = this.#sql.use("walk").get(this.#poolText) as
      | { key: Uint8Array; next: number }
      | undefined;
    if (walk === undefined) {
      walk = { key: crypto.getRandomValues(new Uint8Array(PERMUTATION_KEY_BYTES)), next: 0 };
      this.#sql.use("startWalk").run(this.#poolText, walk.key);
    }
    this.#permutation ??= new PoolPermutation(this.#pool.size, walk.key);
    let next = walk.next;
    let taken: number | null = null;
    while (taken === null && next < this.#pool.size) {
      const address = this.#pool.at(this.#permutation.at(next++));
      if (insert(address)) taken = address;
    }
    if (next !== walk.next) this.#sql.use("advanceWalk").run(next, this.#poolText);
    return taken;
  }

  /** An address freed by release or expiry that `insert` takes; null if none is free. */
  #takeReleased(insert: (address: number) => boolean): number | null {
    for (;;) {
      const candidate = this.#pickReleased();
      if (candidate === null) return null;
      this.#sql.use("unrelease").run(candidate);
      // Freed, then given out again by the walk: the row was stale, and is gone now.
      if (insert(candidate)) return candidate;
    }
  }

  /**
   * A released address in the pool, from a random starting point so the
   * order of reuse cannot be predicted. Each probe is one index seek; it
   * returns, moves on to a later range, or wraps around once.
   */
  #pickReleased(): number | null {
    const ranges = this.#pool.ranges;
    const start = this.#pool.at(randomIndex(this.#pool.size));
    let from = start;
    let wrapped = false;
    for (let probe = 0; probe <= 2 * ranges.length + 2; probe++) {
      const row = this.#sql.use("releasedFrom").get(from) as { address: number } | undefined;
      if (row !== undefined && wrapped && row.address >= start) return null;
      if (row !== undefined && this.#pool.contains(row.address)) return row.address;
      const later = row === undefined
        ? undefined
        : ranges.find((range) => range.first > row.address);
      if (later !== undefined) {
        from = later.first;
      } else if (wrapped) {
        return null;
      } else {
        wrapped = true;
        from = ranges[0].first;
      }
    }
    return null;
  }
}
