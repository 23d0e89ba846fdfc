/**
 * Run by registry_postgres_tx_test.ts as a process of its own (`deno test`
 * fails a test on any uncaught exception, whatever a listener does): a
 * relay's process guard, then a registry transaction whose database
 * connection the server ends under it, then one more transaction. Prints
 * one JSON line of what happened; exits 0 only if it got that far.
 */

import { Relay } from "../../server.ts";
import { inTransaction } from "../../server/registry_postgres_tx.ts";
import { RegistryConnections } from "../../server/registry_postgres_pool.ts";

const url = Deno.args[0];
// As server.ts runs a relay: anything thrown outside a promise is logged, not fatal.
await using _relay = await Relay.start({
  hostname: "127.0.0.1",
  port: 0,
  db: ":memory:",
  guardRejections: true,
  logLevel: "silent",
});
const connections = new RegistryConnections({ url, where: "test", applicationName: "t" });
const tx = connections.transactionSql;
try {
  await connections.sql`CREATE TABLE IF NOT EXISTS k (n int PRIMARY KEY)`;
  const killed = connections.run("killed", () =>
    inTransaction(tx, async (t) => {
      await t`INSERT INTO k (n) VALUES (1)`;
      await t`SELECT pg_sleep(10)`;
    }));
  const outcome = killed.then(() => "committed", (error) => error.name);
  for (let tries = 0; tries < 200; tries++) {
    const [{ ended }] = await connections.sql`SELECT count(pg_terminate_backend(pid))::int AS ended
      FROM pg_stat_activity WHERE query LIKE '%pg_sleep(10)%' AND pid <> pg_backend_pid()`;
    if (ended > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const first = await outcome;
  const rows = (await connections.sql`SELECT n FROM k WHERE n = 1`).length;
  const after = await connections.run(
    "after",
    () => inTransaction(tx, async (t) => (await t`INSERT INTO k (n) VALUES (2) RETURNING n`)[0].n),
  );
  console.log(JSON.stringify({ first, rows, after }));
} finally {
  await connections.end(0);
}
