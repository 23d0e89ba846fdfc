/**
 * The engines the cluster (issue 12) is built on, started privately by the
 * tests: PostgreSQL refuses a second row for a unique key (address
 * assignment across relays rests on that constraint, not on locks), and NATS
 * answers a request nobody subscribes to at once (how a relay learns that an
 * address is offline), and carries one that has a responder.
 */

import assert from "node:assert/strict";
import { connect, errors } from "@nats-io/transport-node";
import postgres from "postgres";
import { clusterTest, startNats, startPostgres } from "../_helpers/cluster_engines.ts";

clusterTest("a private PostgreSQL enforces a unique key between two sessions", async () => {
  await using pg = await startPostgres();
  const a = postgres(pg.url, { max: 1, onnotice: () => {} });
  const b = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    await a`create table addresses (address integer primary key, owner text not null)`;
    await a`insert into addresses ${a({ address: 1, owner: "relay a" })}`;
    await assert.rejects(
      b`insert into addresses ${b({ address: 1, owner: "relay b" })}`,
      (error: { code?: string }) => error.code === "23505", // unique_violation
    );
    const rows = await b`select owner from addresses where address = 1`;
    assert.deepEqual(rows.map((row) => row.owner), ["relay a"]);
  } finally {
    await a.end();
    await b.end();
  }
});

clusterTest(
  "a private nats-server answers a request nobody serves at once, and carries one that is served",
  async () => {
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url });
    try {
      const sub = nc.subscribe("presence.10.0.0.1", {
        callback: (_error, message) => void message.respond(new TextEncoder().encode("online")),
      });
      await nc.flush();
      const answer = await nc.request("presence.10.0.0.1", new Uint8Array(0), { timeout: 5_000 });
      assert.equal(new TextDecoder().decode(answer.data), "online");
      const started = performance.now();
      await assert.rejects(
        nc.request("presence.10.0.0.2", new Uint8Array(0), { timeout: 5_000 }),
        (error) => error instanceof errors.RequestError && error.isNoResponders(),
      );
      // No responder: refused by the server, not left to the 5 s time-out.
      assert.ok(performance.now() - started < 4_000);
      sub.unsubscribe();
    } finally {
      await nc.close();
    }
  },
);
