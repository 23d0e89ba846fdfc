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
    const probe = new ReleasedProbe(this.#pool);
    for (;;) {
      const row = this.#sql.use("releasedFrom").get(probe.from) as { address: number } | undefined;
      const found = row?.address ?? null;
      const verdict = probe.next(found);
      if (verdict !== "on") return verdict === "take" ? found : null;
    }
  }
}

/**
 * The search for a released address in a pool, shared by the registries
 * (each runs its own query): it starts at a random point of the pool, so
 * the order of reuse cannot be predicted, and after each probe says what
 * the address it found (the first released one from {@linkcode from} on)
 * means. Each probe is one index seek; the search moves on to a later range,
 * or wraps around once, so it ends within a bound of probes.
 */
export class ReleasedProbe {
  readonly #pool: AddressPool;
  readonly #start: number;
  /** Probes after which the search gives up: two per range, and the wrap. */
  readonly #limit: number;
  #probes = 0;
  #wrapped = false;
  /** Where the next probe looks from. */
  from: number;

  /** A search of `pool` from a random point. */
  constructor(pool: AddressPool) {
    this.#pool = pool;
    this.#start = this.from = pool.at(randomIndex(pool.size));
    this.#limit = 2 * pool.ranges.length + 2;
  }

  /**
   * What the probe's find means: `"take"` it (a released address in the
   * pool), `"stop"` (none is left to find), or go `"on"` from the new
   * {@linkcode from}. A registry that claimed the address to look at it
   * gives it back unless it is taken.
   */
  next(found: number | null): "take" | "stop" | "on" {
    this.#probes++;
    if (found !== null && this.#wrapped && found >= this.#start) return "stop";
    if (found !== null && this.#pool.contains(found)) return "take";
    const later = found === null
      ? undefined
      : this.#pool.ranges.find((range) => range.first > found);
    if (later !== undefined) {
      this.from = later.first;
    } else if (this.#wrapped) {
      return "stop";
    } else {
      this.#wrapped = true;
      this.from = this.#pool.ranges[0].first;
    }
    return this.#probes > this.#limit ? "stop" : "on";
  }
}
