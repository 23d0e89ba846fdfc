/**
 * The registry's transactions hold a connection of their own from BEGIN to
 * COMMIT, where postgres.js 3.4.9's sql.begin() may send BEGIN on a
 * connection it never reserved (porsager/postgres#823, #1189): with
 * `max_pipeline: 0` that happens to every transaction, so pools with that
 * setting show which of the two a transaction relies on.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { inTransaction } from "../../server/registry_postgres_tx.ts";
import { RegistryConnections } from "../../server/registry_postgres_pool.ts";
import { clusterTest, startPostgres } from "../_helpers/cluster_engines.ts";

/** The pools of this test: postgres.js's default types. */
type Pool = ReturnType<typeof postgres>;

/** A pool of `max` connections on which the driver's begin() never reserves one. */
function racyPool(url: string, max: number): Pool {
  // max_pipeline is an option of postgres.js that its types do not list.
  const options = { max, max_pipeline: 0, onnotice: () => {} };
  return postgres(url, options as Parameters<typeof postgres>[1]);
}

/** Whether `sql`'s next two statements run in one transaction (now() stays its start). */
async function inOneTransaction(sql: Pool): Promise<boolean> {
  const [{ first }] = await sql`SELECT now() AS first`;
  await sql`SELECT pg_sleep(0.002)`;
  const [{ later }] = await sql`SELECT now() AS later`;
  return first.getTime() === later.getTime();
}

clusterTest(
  "registry transactions reserve their connection before BEGIN, so the driver's begin() race cannot reach them",
  async () => {
    await using pg = await startPostgres();
    const sql = racyPool(pg.url, 2);
    const single = racyPool(pg.url, 1);
    try {
      await sql`CREATE TABLE t (n int PRIMARY KEY)`;
      // The driver's own begin() loses its connection here: what inTransaction avoids.
      await assert.rejects(sql.begin((tx) => tx`SELECT 1`), /UNSAFE_TRANSACTION/);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          inTransaction(sql, async (tx) => {
            await tx`INSERT INTO t (n) VALUES (${n})`;
            return await inOneTransaction(tx);
          })),
      );
      assert.deepEqual(results, Array(20).fill(true), "each in one transaction");
      assert.equal((await sql`SELECT n FROM t`).length, 20);
      // A failed one rolls back and gives its connection back outside any transaction.
      await assert.rejects(inTransaction(single, async (tx) => {
        await tx`INSERT INTO t (n) VALUES (100)`;
        await tx`INSERT INTO t (n) VALUES (100)`;
      }));
      assert.equal((await single`SELECT n FROM t WHERE n = 100`).length, 0);
      assert.equal(await inOneTransaction(single), false, "not left inside a transaction");
    } finally {
      await Promise.all([sql.end({ timeout: 5 }), single.end({ timeout: 5 })]);
    }
  },
);

clusterTest(
  "the registry's transaction pool opens its connections for a transaction, fresh or after they closed idle",
  async () => {
    await using pg = await startPostgres();
    const connections = new RegistryConnections({
      url: pg.url,
      where: "test",
      applicationName: "test",
    });
    try {
      // No statement ran before: the transaction opens the pool's first connection itself.
      const answer = await connections.run(
        "test",
        () =>
          inTransaction(
            connections.transactionSql,
            async (tx) => (await tx`SELECT 1 AS one`)[0].one,
          ),
      );
      assert.equal(answer, 1);
    } finally {
      await connections.end(0);
    }
  },
);
