/**
 * A client given several relays (`relays`), against real in-process relays:
 * the first join skips a dead relay, a lost relay's clients come back on the
 * next one with their listeners bound again, each pass starts after the relay
 * the link was on and wraps around, each relay keeps the address its
 * registry gave, and a `relayId` pin holds for every relay.
 */

import assert from "node:assert/strict";
import { type AlphaNetClient, type ClientOptions, connect, RelayIdMismatch } from "../mod.ts";
import { Relay } from "../server.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { assertEcho, echoOnce } from "./_helpers/echo_once.ts";
import { randomIdentity } from "./_helpers/bytes.ts";
import { recordStates } from "./_helpers/client_states.ts";
import { freePort } from "./_helpers/ports.ts";
import { startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";

/** Fast backoff so the tests reconnect within tens of milliseconds. */
const FAST: ClientOptions["reconnect"] = { initialDelayMs: 10, maxDelayMs: 50 };

const at = (port: number): string => `127.0.0.1:${port}`;

function join(relays: string[], options: ClientOptions = {}): Promise<AlphaNetClient> {
  return withTimeout(
    connect({ relays, reconnect: FAST, identity: randomIdentity(), ...options }),
    STEP_MS,
    "a client to join one of the relays",
  );
}

/**
 * A TCP port that accepts every connection and closes it at once, counting
 * them: a relay that fails every join, and shows when a client tried it.
 */
class ClosingPort implements AsyncDisposable {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #loop: Promise<void>;
  dials = 0;

  constructor() {
    this.#loop = (async () => {
      for await (const conn of this.#listener) {
        this.dials++;
        conn.close();
      }
    })();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#loop;
  }
}

/** Closes every relay and client, whatever a test left open. */
async function closeAll(relays: TestRelay[], clients: AlphaNetClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.close()));
  await Promise.all(relays.map((relay) => relay.close()));
}

Deno.test("relays: the first join skips a relay that refuses the connection and lands on the next", async () => {
  const live = await startRelay({ db: ":memory:" });
  try {
    const dead = freePort();
    await using net = await join([at(dead), at(live.port)]);
    assert.equal(net.relay, at(live.port));
    assert.equal(net.relayId, live.relay.relayId);
    assert.equal(net.state, "connected");
  } finally {
    await live.close();
  }
});

Deno.test("relays: when none admits the client, connect() rejects with an AggregateError of each relay's error in order", async () => {
  await using closing = new ClosingPort();
  const dead = freePort();
  const error = await connect({ relays: [at(dead), at(closing.port)], reconnect: false }).then(
    () => assert.fail("connect() resolved"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof AggregateError, String(error));
  assert.equal(error.errors.length, 2);
  assert.ok(error.errors[0] instanceof Deno.errors.ConnectionRefused, String(error.errors[0]));
  assert.match(
    error.message,
    new RegExp(`^Cannot join any of the 2 relays: ${at(dead)}: .*; ${at(closing.port)}: `),
  );
  assert.equal(closing.dials, 1);
});

Deno.test("relays: a lost relay's client comes back on the next one, and its listener accepts there", async () => {
  const [first, second] = [
    await startRelay({ db: ":memory:" }),
    await startRelay({ db: ":memory:" }),
  ];
  const clients: AlphaNetClient[] = [];
  try {
    const net = await join([at(first.port), at(second.port)]);
    clients.push(net);
    assert.equal(net.relay, at(first.port));
    const states = recordStates(net);
    const listener = net.listen({ port: 7 });

    await first.relay.close();
    await states.next("reconnecting", "the client to lose the first relay");
    await states.next("connected", "the client to join the second relay");
    assert.equal(net.relay, at(second.port));
    assert.equal(net.relayId, second.relay.relayId);
    // Each relay has its own in-memory registry, so its own address for the client.
    assert.equal(listener.addr.hostname, net.virtualIp);

    const peer = await join([at(second.port)]);
    clients.push(peer);
    assert.deepEqual(await peer.status({ hostname: net.virtualIp, port: 7 }), {
      online: true,
      listening: true,
    });
    await Promise.all([echoOnce(listener), assertEcho(peer, net.virtualIp, 7, "moved")]);
    listener.close();
  } finally {
    await closeAll([first, second], clients);
  }
});

Deno.test("relays: a reconnect pass starts after the relay the link was on, not at the first", async () => {
  await using closing = new ClosingPort();
  const [second, third] = [
    await startRelay({ db: ":memory:" }),
    await startRelay({ db: ":memory:" }),
  ];
  const clients: AlphaNetClient[] = [];
  try {
    // The first join tries the closing port first, then lands on the second relay.
    const net = await join([at(closing.port), at(second.port), at(third.port)]);
    clients.push(net);
    assert.equal(closing.dials, 1);
    assert.equal(net.relay, at(second.port));
    const states = recordStates(net);

    await second.relay.close();
    await states.next("connected", "the client to join the third relay");
    assert.equal(net.relay, at(third.port));
    assert.equal(closing.dials, 1, "the pass began after the second relay, at the third");
  } finally {
    await closeAll([second, third], clients);
  }
});

Deno.test("relays: a pass wraps around to the first relay, which gives back the address and id it gave before", async () => {
  const first = await startRelay(); // a file registry, so a restart keeps its id and addresses
  const second = await startRelay({ db: ":memory:" });
  let restarted: Relay | undefined;
  const clients: AlphaNetClient[] = [];
  try {
    const net = await join([at(first.port), at(second.port)]);
    clients.push(net);
    const [firstIp, firstId] = [net.virtualIp, net.relayId];
    const states = recordStates(net);
    const listener = net.listen({ port: 80 });

    await first.relay.close();
    await states.next("connected", "the client to join the second relay");
    assert.equal(net.relay, at(second.port));

    restarted = await Relay.start({
      hostname: "127.0.0.1",
      port: first.port,
      db: first.db,
      logLevel: "silent",
    });
    await second.relay.close();
    await states.next("connected", "the client to come back on the first relay");
    assert.equal(net.relay, at(first.port));
    assert.equal(net.relayId, firstId);
    assert.equal(net.virtualIp, firstIp);
    assert.equal(listener.addr.hostname, firstIp);

    const peer = await join([at(first.port)]);
    clients.push(peer);
    await Promise.all([echoOnce(listener), assertEcho(peer, firstIp, 80, "home again")]);
    listener.close();
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await restarted?.close();
    await first.cleanup();
    await second.close();
  }
});

Deno.test("relays: with relayId every relay must show that id; another ends the client with RelayIdMismatch", async () => {
  const [first, second] = [
    await startRelay({ db: ":memory:" }),
    await startRelay({ db: ":memory:" }),
  ];
  const clients: AlphaNetClient[] = [];
  try {
    const net = await join([at(first.port), at(second.port)], { relayId: first.relay.relayId });
    clients.push(net);
    await first.relay.close();
    const error = await withTimeout(net.closed, STEP_MS, "the client to end");
    assert.ok(error instanceof RelayIdMismatch, String(error));
    assert.equal(error.expected, first.relay.relayId);
    assert.equal(error.actual, second.relay.relayId);

    // The first join checks every relay of the list too.
    await assert.rejects(
      connect({ relays: [at(second.port)], relayId: first.relay.relayId }),
      RelayIdMismatch,
    );
  } finally {
    await closeAll([first, second], clients);
  }
});
