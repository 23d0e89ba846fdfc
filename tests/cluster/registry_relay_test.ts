/**
 * Relays on a PostgreSQL registry (issue 12), with real clients: an outage
 * refuses joins with a reason clients retry while connected clients keep
 * working, and joins work again once PostgreSQL is back; many joins at once
 * get distinct addresses; two relays sharing the registry give an identity
 * the same address and the same network id. A PostgreSQL gone silent (a
 * path that stops forwarding, sockets open) refuses joins with the same
 * clear reason within a call's deadline, fails /readyz, and lets the relay
 * close within a bound.
 */

import assert from "node:assert/strict";
import { isFatal } from "../../client/reconnect.ts";
import { connect, RelayError } from "../../mod.ts";
import { Reason } from "../../protocol/mod.ts";
import { Relay, type RelayOptions } from "../../server.ts";
import { AddressPool } from "../../server/address_pool.ts";
import { PostgresRegistry } from "../../server/registry_postgres.ts";
import { RELAY_HEARTBEAT_MS } from "../../server/registry_postgres_heartbeat.ts";
import { CALL_DEADLINE_MS } from "../../server/registry_postgres_pool.ts";
import { delay, STEP_MS, withTimeout } from "../_helpers/async.ts";
import { randomIdentity } from "../_helpers/bytes.ts";
import { clusterTest, startPostgres } from "../_helpers/cluster_engines.ts";
import { startEchoPair } from "../_helpers/echo_pair.ts";
import { startFaultProxy } from "../_helpers/fault_proxy.ts";

function relayOptions(registry: string, extra: RelayOptions = {}): RelayOptions {
  return { hostname: "127.0.0.1", port: 0, registry, logLevel: "silent", ...extra };
}

async function readyz(relay: Relay): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${relay.adminAddr!.port}/readyz`);
  await response.body?.cancel();
  return response.status;
}

clusterTest(
  "PostgreSQL unavailable: joins are refused with a reason clients retry, connected clients keep working, and joins work again once it is back",
  async () => {
    await using pg = await startPostgres();
    await using relay = await Relay.start(relayOptions(pg.url, { adminPort: 0 }));
    const port = relay.addr.port;
    const pair = await startEchoPair(port, { reconnect: false });
    try {
      const known = randomIdentity();
      const before = await connect({ port, identity: known, reconnect: false });
      const vip = before.virtualIp;
      await before.close();
      assert.equal(await readyz(relay), 200);

      await pg.halt();
      for (const identity of [randomIdentity(), known]) {
        const started = performance.now();
        const refused = await connect({ port, identity, reconnect: false }).then(
          (client) => client.close().then(() => null),
          (error: unknown) => error,
        );
        assert.ok(refused instanceof RelayError, String(refused));
        assert.equal(refused.reason, Reason.Internal);
        assert.match(refused.message, /the registry is unavailable; try again/);
        assert.equal(isFatal(refused), false, "a client retries it");
        assert.ok(performance.now() - started < 8_000, "refused within seconds, not hung");
      }
      assert.equal(await readyz(relay), 503);
      // The clients that joined before are untouched: their connection still carries bytes.
      await pair.assertEchoes("during the outage");
      assert.equal(relay.onlineCount, 2);

      await pg.resume();
      const after = await withTimeout(
        connect({ port, identity: known, reconnect: false }),
        STEP_MS,
        "a join once PostgreSQL is back",
      );
      assert.equal(after.virtualIp, vip, "the same address as before the outage");
      await after.close();
      await pair.assertEchoes("after the outage");
      assert.equal(await readyz(relay), 200);
    } finally {
      await pair.close();
    }
  },
);

clusterTest(
  "120 joins at once through a relay on PostgreSQL get 120 distinct addresses, each kept on the next join",
  async () => {
    await using pg = await startPostgres();
    await using relay = await Relay.start(
      relayOptions(pg.url, { maxHandshakesPerIp: 0, maxNewIdentitiesPerIp: 0 }),
    );
    const port = relay.addr.port;
    const identities = Array.from({ length: 120 }, () => randomIdentity());
    const join = () =>
      Promise.all(identities.map((identity) => connect({ port, identity, reconnect: false })));
    const first = await withTimeout(join(), 4 * STEP_MS, "120 joins");
    const addresses = first.map((client) => client.virtualIp);
    await Promise.all(first.map((client) => client.close()));
    assert.equal(new Set(addresses).size, identities.length);
    const second = await withTimeout(join(), 4 * STEP_MS, "120 joins again");
    assert.deepEqual(second.map((client) => client.virtualIp), addresses);
    await Promise.all(second.map((client) => client.close()));
  },
);

clusterTest(
  "two relays on one PostgreSQL registry share the network id, and an identity keeps its address through either",
  async () => {
    await using pg = await startPostgres();
    const [a, b] = await Promise.all([
      Relay.start(relayOptions(pg.url)),
      Relay.start(relayOptions(pg.url)),
    ]);
    try {
      assert.equal(a.relayId, b.relayId);
      const identity = randomIdentity();
      const onA = await connect({ port: a.addr.port, identity, reconnect: false });
      const vip = onA.virtualIp;
      assert.equal(onA.relayId, a.relayId);
      await onA.close();
      const onB = await connect({ port: b.addr.port, identity, reconnect: false });
      assert.equal(onB.virtualIp, vip);
      await onB.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
);

clusterTest(
  "PostgreSQL gone silent (sockets open, nothing answers): joins get the registry-unavailable refusal within a call's deadline, /readyz fails, and the relay closes within a bound",
  async () => {
    await using pg = await startPostgres();
    await using proxy = startFaultProxy(pg.port);
    const url = pg.url.replace(`:${pg.port}/`, `:${proxy.port}/`);
    const relay = await Relay.start(relayOptions(url, { adminPort: 0 }));
    let closed = false;
    try {
      const port = relay.addr.port;
      const pair = await startEchoPair(port, { reconnect: false });
      try {
        // Several joins at once first, so the pool has connections open when the path freezes.
        const warm = await Promise.all(
          Array.from({ length: 6 }, () => connect({ port, identity: randomIdentity() })),
        );
        await Promise.all(warm.map((client) => client.close()));
        proxy.freeze();
        const bound = CALL_DEADLINE_MS + 2_000; // within the Hello time-out (10 s)
        // Joins and a readiness probe at once: each waits on a call's deadline, not on the others.
        const probe = (async () => {
          const started = performance.now();
          return { status: await readyz(relay), ms: performance.now() - started };
        })();
        const joins = await Promise.all(Array.from({ length: 3 }, async () => {
          const started = performance.now();
          const refused = await connect({ port, identity: randomIdentity(), reconnect: false })
            .then((client) => client.close().then(() => null), (error: unknown) => error);
          return { refused, ms: performance.now() - started };
        }));
        for (const { refused, ms } of joins) {
          assert.ok(refused instanceof RelayError, String(refused));
          assert.equal(refused.reason, Reason.Internal, refused.message);
          assert.match(refused.message, /the registry is unavailable; try again/);
          assert.ok(ms < bound, `refused after ${Math.round(ms)} ms`);
        }
        const ready = await probe;
        assert.equal(ready.status, 503);
        assert.ok(ready.ms < bound, `/readyz answered after ${Math.round(ready.ms)} ms`);
        // Clients already joined keep working: nothing they do needs the registry.
        await pair.assertEchoes("with the registry silent");
      } finally {
        await pair.close();
      }
      const closing = performance.now();
      await relay.close();
      closed = true;
      const took = performance.now() - closing;
      assert.ok(took < 10_000, `relay.close() took ${Math.round(took)} ms`);
    } finally {
      if (!closed) await relay.close();
    }
  },
);

clusterTest(
  "a client that leaves while PostgreSQL is down is shown offline, and can be released, once PostgreSQL is back",
  async () => {
    await using pg = await startPostgres();
    await using relay = await Relay.start(relayOptions(pg.url));
    const client = await connect({ port: relay.addr.port, identity: randomIdentity() });
    const vip = client.virtualIp;
    const address = vip.split(".").reduce((sum, octet) => sum * 256 + Number(octet), 0);
    await pg.halt();
    await client.close();
    // The relay let it go (its offline mark failed: the database is down).
    await withTimeout(
      (async () => {
        while (relay.onlineCount > 0) await delay(10);
      })(),
      STEP_MS,
      "the relay to let the client go",
    );
    await pg.resume();
    const observer = await PostgresRegistry.open(pg.url, AddressPool.default(), {
      migrate: false,
    });
    try {
      // Cleared after the relay's next good beat (without it, it stayed online until a restart).
      await withTimeout(
        (async () => {
          while ((await observer.get(address))?.online !== false) await delay(50);
        })(),
        2 * RELAY_HEARTBEAT_MS + STEP_MS,
        "the mark to be cleared",
      );
      assert.equal(await observer.release(address), true, "released");
    } finally {
      await observer.close();
    }
  },
);
