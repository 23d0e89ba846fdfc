/**
 * The registry's transactions run on a pool of their own, where each
 * connection carries one transaction at a time: npm:postgres 3.4.9's
 * `sql.begin()` then never meets the full pipeline that makes it send
 * BEGIN on a connection it did not reserve (porsager/postgres#823). And a
 * database connection that dies mid-transaction costs that transaction,
 * never the process.
 */

import assert from "node:assert/strict";
import { inTransaction } from "../../server/registry_postgres_tx.ts";
import { RegistryConnections } from "../../server/registry_postgres_pool.ts";
import { clusterTest, startPostgres } from "../_helpers/cluster_engines.ts";

clusterTest(
  "registry transactions: many at once each run whole, and a failed one leaves nothing",
  async () => {
    await using pg = await startPostgres();
    const connections = new RegistryConnections({
      url: pg.url,
      where: "test",
      applicationName: "t",
    });
    const tx = connections.transactionSql;
    try {
      await connections.sql`CREATE TABLE t (n int PRIMARY KEY)`;
      const inOne = await Promise.all(
        Array.from(
          { length: 200 },
          (_, n) =>
            connections.run("insert", () =>
              inTransaction(tx, async (t) => {
                const [{ first }] = await t`SELECT now() AS first`;
                await t`INSERT INTO t (n) VALUES (${n})`;
                const [{ later }] = await t`SELECT now() AS later`;
                return first.getTime() === later.getTime();
              })),
        ),
      );
      assert.deepEqual(inOne, Array(200).fill(true), "each ran in one transaction");
      assert.equal((await connections.sql`SELECT n FROM t`).length, 200);

      // A failed transaction leaves nothing.
      await assert.rejects(connections.run("twice", () =>
        inTransaction(tx, async (t) => {
          await t`INSERT INTO t (n) VALUES (1000)`;
          await t`INSERT INTO t (n) VALUES (1000)`;
        })));
      assert.equal((await connections.sql`SELECT n FROM t WHERE n = 1000`).length, 0);
    } finally {
      await connections.end(0);
    }
  },
);

clusterTest(
  "a database connection that dies mid-transaction fails that call, and the relay's process goes on",
  async () => {
    await using pg = await startPostgres();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./_tx_kill_child.ts", import.meta.url).pathname, pg.url],
      stdout: "piped",
      stderr: "piped",
    });
    const { code, stdout, stderr } = await child.output();
    const printed = new TextDecoder().decode(stdout).trim();
    assert.equal(code, 0, `the child ended: ${new TextDecoder().decode(stderr)}`);
    // The killed transaction failed and left nothing; the next one committed.
    assert.deepEqual(JSON.parse(printed), { first: "RegistryUnavailable", rows: 0, after: 2 });
  },
);
