/**
 * Where a new client's address comes from in a PostgreSQL registry: the
 * same keyed walk over the pool as the SQLite registry's (`AddressWalk`),
 * its cursor shared by every relay and advanced by one `UPDATE ...
 * RETURNING`, then addresses freed by release or expiry, each claimed by one
 * `DELETE` that only one transaction can win. Runs inside the transaction
 * that inserts the client, so a join that fails gives its step back.
 *
 * @module
 */

import type postgres from "postgres";
import type { AddressPool } from "./address_pool.ts";
import { PERMUTATION_KEY_BYTES, PoolPermutation } from "./pool_permutation.ts";
import { ReleasedProbe } from "./address_walk.ts";
import type { RegistryTx } from "./registry_postgres_tx.ts";

/** A transaction of the registry. */

/** Picks addresses for new clients of one pool, shared by every relay of the cluster. */
export class PostgresWalk {
  readonly #pool: AddressPool;
  /** The pool's text: each pool (each `--vip-range`) keeps its own walk. */
  readonly #poolText: string;
  readonly #permutation: PoolPermutation;

  private constructor(pool: AddressPool, key: Uint8Array) {
    this.#pool = pool;
    this.#poolText = pool.toString();
    this.#permutation = new PoolPermutation(pool.size, key);
  }

  /**
   * The walk of `pool`: its stored key, or a new one stored by the first
   * relay to walk it (a second relay racing it reads the winner's).
   */
  static async open(sql: postgres.Sql<{ int8: number }>, pool: AddressPool): Promise<PostgresWalk> {
    const text = pool.toString();
    const key = crypto.getRandomValues(new Uint8Array(PERMUTATION_KEY_BYTES));
    await sql`INSERT INTO alphanet.pool_walks (pool, key, next) VALUES (${text}, ${key}, 0)
      ON CONFLICT (pool) DO NOTHING`;
    const [row] = await sql`SELECT key FROM alphanet.pool_walks WHERE pool = ${text}`;
    return new PostgresWalk(pool, new Uint8Array(row.key as Uint8Array));
  }

  /**
   * Gives `insert` free candidates until it takes one (resolves true), and
   * returns that address; null if the pool has none free.
   */
  async take(
    tx: RegistryTx,
    insert: (address: number) => Promise<boolean>,
  ): Promise<number | null> {
    return (await this.#takeFresh(tx, insert)) ?? (await this.#takeReleased(tx, insert));
  }

  /**
   * The next address of the walk that `insert` takes. The cursor's row stays
   * locked until the transaction ends, so the relays take steps one after
   * the other and a rolled-back join gives its step back.
   */
  async #takeFresh(
    tx: RegistryTx,
    insert: (address: number) => Promise<boolean>,
  ): Promise<number | null> {
    for (;;) {
      const [step] = await tx`UPDATE alphanet.pool_walks SET next = next + 1
        WHERE pool = ${this.#poolText} AND next < ${this.#pool.size} RETURNING next - 1 AS index`;
      if (step === undefined) return null;
      const address = this.#pool.at(this.#permutation.at(step.index as number));
      // Taken already (a row the walk did not give): skipped once, as the cursor passes it.
      if (await insert(address)) return address;
    }
  }

  /** An address freed by release or expiry that `insert` takes; null if none is free. */
  async #takeReleased(
    tx: RegistryTx,
    insert: (address: number) => Promise<boolean>,
  ): Promise<number | null> {
    for (;;) {
      const candidate = await this.#claimReleased(tx);
      if (candidate === null) return null;
      if (await insert(candidate)) return candidate;
    }
  }

  /**
   * Claims (deletes) a released address in the pool, from a random starting
   * point so the order of reuse cannot be predicted; rows another
   * transaction is claiming are skipped, not waited for. Each probe is one
   * index seek; it returns, moves on to a later range, or wraps around once.
   */
  async #claimReleased(tx: RegistryTx): Promise<number | null> {
    const probe = new ReleasedProbe(this.#pool);
    for (;;) {
      const [row] = await tx`DELETE FROM alphanet.released WHERE address = (
          SELECT address FROM alphanet.released WHERE address >= ${probe.from}
          ORDER BY address LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING address`;
      const found = row === undefined ? null : row.address as number;
      const verdict = probe.next(found);
      if (verdict === "take") return found;
      // Claimed to look at it, not taken (outside the pool, narrowed since): given back.
      if (found !== null) await this.#unclaim(tx, found);
      if (verdict === "stop") return null;
    }
  }

  async #unclaim(tx: RegistryTx, address: number): Promise<void> {
    await tx`INSERT INTO alphanet.released (address) VALUES (${address}) ON CONFLICT DO NOTHING`;
  }
}
