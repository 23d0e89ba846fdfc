/**
 * A cluster of real relays (`server.ts` subprocesses) sharing a private
 * PostgreSQL and nats-server: clients of different relays reach each other
 * over the relay links, keep their addresses across relays, and the
 * cluster's failures cost what the issue says they cost.
 */

import assert from "node:assert/strict";
import {
  type AlphaNetClient,
  type ClientOptions,
  connect,
  ConnectionReset,
  type VirtualConn,
} from "../../mod.ts";
import { delay, STEP_MS, waitUntil, withTimeout } from "../_helpers/async.ts";
import { assertEcho } from "../_helpers/echo_once.ts";
import { randomIdentity, text, utf8 } from "../_helpers/bytes.ts";
import { recordStates } from "../_helpers/client_states.ts";
import { clusterTest } from "../_helpers/cluster_engines.ts";
import { startCluster } from "../_helpers/cluster_relays.ts";
import { type FaultProxy, startFaultProxy } from "../_helpers/fault_proxy.ts";
import { readAll, readExactly } from "../_helpers/streams.ts";

/** Fast backoff, so a client is back within tens of milliseconds of its relay's death. */
const FAST: ClientOptions["reconnect"] = { initialDelayMs: 20, maxDelayMs: 200 };

function join(relays: string[], options: ClientOptions = {}): Promise<AlphaNetClient> {
  return withTimeout(
    connect({ relays, reconnect: FAST, identity: randomIdentity(), ...options }),
    STEP_MS,
    `a client to join one of ${relays.join(",")}`,
  );
}

/** Serves echo on `client`:`port` until the listener closes. */
function serveEcho(client: AlphaNetClient, port: number): { done: Promise<void> } {
  const listener = client.listen({ port });
  const done = (async () => {
    for await (const conn of listener) {
      void (async () => {
        try {
          await conn.write(await readAll(conn));
        } catch {
          // The peer went away.
        } finally {
          conn.close();
        }
      })();
    }
  })();
  return { done };
}

clusterTest(
  "cluster: clients of different relays connect, echo and ask status over the relay links",
  async () => {
    await using cluster = await startCluster(3);
    const [r1, , r3] = cluster.addrs();
    await using a = await join([r1]);
    await using b = await join([r3]);
    assert.equal(a.relayId, b.relayId, "the relays of one cluster present one network id");
    serveEcho(a, 7000);
    await assertEcho(b, a.virtualIp, 7000, "across the cluster");
    assert.deepEqual(await b.status({ hostname: a.virtualIp, port: 7000 }), {
      online: true,
      listening: true,
    });
    assert.deepEqual(await b.status({ hostname: a.virtualIp, port: 7001 }), {
      online: true,
      listening: false,
    });
    // An address no relay holds: NATS has no responder for it, so the answer comes at once.
    assert.deepEqual(await b.status({ hostname: "10.255.255.254", port: 1 }), {
      online: false,
      listening: false,
    });
  },
);

/** An open connection from `from` to `to`'s listener on `port`: both ends, bytes checked once. */
async function openPair(
  from: AlphaNetClient,
  to: AlphaNetClient,
  port: number,
): Promise<{ dialed: VirtualConn; accepted: VirtualConn; close(): void }> {
  const listener = to.listen({ port });
  const accepting = withTimeout(listener.accept(), STEP_MS, "accept");
  const dialed = await withTimeout(from.connect({ hostname: to.virtualIp, port }), STEP_MS, "dial");
  const accepted = await accepting;
  await assertFlows(dialed, accepted, "hello");
  return {
    dialed,
    accepted,
    close: () => {
      dialed.close();
      accepted.close();
    },
  };
}

/** `message` goes from `a` to `b` and back. */
async function assertFlows(a: VirtualConn, b: VirtualConn, message: string): Promise<void> {
  const bytes = utf8(message);
  await a.write(bytes);
  assert.equal(text(await withTimeout(readExactly(b, bytes.length), STEP_MS, "a to b")), message);
  await b.write(bytes);
  assert.equal(text(await withTimeout(readExactly(a, bytes.length), STEP_MS, "b to a")), message);
}

/**
 * Waits until the relay has reset `conn` (SocketClosed with a reason other
 * than Normal): reads end, and writes fail with ConnectionReset.
 */
async function assertReset(conn: VirtualConn, what: string): Promise<void> {
  assert.equal(
    await withTimeout(conn.read(new Uint8Array(64)), STEP_MS, `${what}: reads end`),
    null,
  );
  await assert.rejects(conn.write(utf8("after the reset")), ConnectionReset, what);
}

clusterTest(
  "cluster: kill -9 of a relay: its clients come back on another with their addresses and listeners; the rest is untouched",
  async () => {
    await using cluster = await startCluster(3);
    const [r1, r2, r3] = cluster.addrs();
    await using a = await join([r1, r2]); // on r1, which dies
    await using b = await join([r2, r3]); // on r2
    await using c = await join([r3, r1]); // on r3
    assert.deepEqual([a.relay, b.relay, c.relay], [r1, r2, r3]);
    const aAddress = a.virtualIp;
    const aStates = recordStates(a);
    const crossing = await openPair(b, a, 7000); // r2 → r1: crosses the dying relay
    const untouched = await openPair(b, c, 7001); // r2 → r3

    const killed = await cluster.relays[0].kill("SIGKILL");
    assert.equal(killed.signal, "SIGKILL");

    await assertReset(crossing.dialed, "the connection into the dead relay");
    await aStates.next("connected", "a to reconnect", 10_000);
    assert.equal(a.relay, r2, "a is back on the next relay of its list");
    assert.equal(a.virtualIp, aAddress, "with the same address");
    // The connection between the survivors flows on.
    await assertFlows(untouched.dialed, untouched.accepted, "still here");
    // a's listener was bound again on r2: a client of r3 reaches it across the cluster.
    const accepted = withTimeout(a.listen({ port: 7002 }).accept(), STEP_MS, "accept on r2");
    const again = await withTimeout(
      c.connect({ hostname: aAddress, port: 7002 }),
      STEP_MS,
      "c dials a",
    );
    const other = await accepted;
    await assertFlows(again, other, "after the failover");
    for (const conn of [again, other]) conn.close();
    untouched.close();
    crossing.close();
  },
);

clusterTest(
  "cluster: NATS restarted: established connections keep flowing, new requests work again within seconds",
  async () => {
    await using cluster = await startCluster(2);
    const [r1, r2] = cluster.addrs();
    await using a = await join([r1]);
    await using b = await join([r2]);
    const pair = await openPair(b, a, 7000);
    await cluster.restartNats(() => assertFlows(pair.dialed, pair.accepted, "during the outage"));
    await assertFlows(pair.dialed, pair.accepted, "after the outage");
    // A client new to the cluster (no link or lookup cached anywhere) is found once presence is back.
    await using d = await join([r1]);
    d.listen({ port: 7001 });
    let answer = { online: false, listening: false };
    for (let tries = 0; tries < 100 && !answer.listening; tries++) {
      answer = await withTimeout(
        b.status({ hostname: d.virtualIp, port: 7001 }),
        STEP_MS,
        "status",
      );
      if (!answer.listening) await delay(100);
    }
    assert.deepEqual(answer, { online: true, listening: true });
    pair.close();
  },
);

clusterTest(
  "cluster: a broken relay link resets the connections crossing it, and the relays dial again",
  async () => {
    await using cluster = await startCluster(0);
    const proxies: FaultProxy[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        // Each relay is dialed through a forwarder the test can cut: the path between them breaks.
        // Its link port is the relay's pick (a port reserved ahead could be taken meanwhile).
        let meshPort = 0;
        const proxy = startFaultProxy(() => meshPort);
        proxies.push(proxy);
        const relay = await cluster.startRelay(["--advertise", `127.0.0.1:${proxy.port}`]);
        meshPort = (await relay.meshPort)!;
      }
      const [r1, r2] = cluster.addrs();
      await using a = await join([r1]);
      await using b = await join([r2]);
      const pair = await openPair(b, a, 7000);
      const linksBefore = proxies[0].accepted + proxies[1].accepted;
      assert.equal(linksBefore, 1, "one link between the two relays");
      for (const proxy of proxies) proxy.cut();
      await assertReset(pair.dialed, "the dialing end");
      await assertReset(pair.accepted, "the accepting end");
      pair.close();
      await waitUntil(
        () => proxies[0].open + proxies[1].open === 1,
        "the relays to dial a new link",
        10_000,
      );
      assert.equal(proxies[0].accepted + proxies[1].accepted, 2);
      const again = await openPair(b, a, 7001);
      again.close();
    } finally {
      for (const proxy of proxies) await proxy.close();
    }
  },
);

clusterTest(
  "cluster: 300 concurrent joins over three relays get 300 addresses, each the same on its next join through another relay",
  async () => {
    await using cluster = await startCluster(3);
    const relays = cluster.addrs();
    const identities = Array.from({ length: 300 }, () => randomIdentity());
    const first = await Promise.all(
      identities.map((identity, i) =>
        withTimeout(
          connect({ relays: [relays[i % 3]], identity }),
          30_000,
          `join ${i}`,
        )
      ),
    );
    const addresses = first.map((client) => client.virtualIp);
    await Promise.all(first.map((client) => client.close()));
    assert.equal(new Set(addresses).size, 300, "300 distinct addresses");
    const second = await Promise.all(
      identities.map((identity, i) =>
        withTimeout(connect({ relays: [relays[(i + 1) % 3]], identity }), 30_000, `rejoin ${i}`)
      ),
    );
    try {
      assert.deepEqual(second.map((client) => client.virtualIp), addresses);
    } finally {
      await Promise.all(second.map((client) => client.close()));
    }
  },
);

clusterTest(
  "cluster: PostgreSQL unavailable: a join is refused with a clear reason; connected clients of two relays keep talking",
  async () => {
    await using cluster = await startCluster(2);
    const [r1, r2] = cluster.addrs();
    await using a = await join([r1]);
    await using b = await join([r2]);
    const pair = await openPair(b, a, 7000);
    await cluster.postgres.halt();
    try {
      await assert.rejects(
        connect({ relays: [r1], identity: randomIdentity() }),
        /registry is unavailable/,
      );
      await assertFlows(pair.dialed, pair.accepted, "without the registry");
    } finally {
      await cluster.postgres.resume();
    }
    await using c = await join([r1]);
    assert.notEqual(c.virtualIp, a.virtualIp);
    pair.close();
  },
);
