/**
 * Client keepalive against a fake relay on real TCP: the client pings while
 * idle, answers keep it connected, and a relay that goes silent is found
 * dead within `peerTimeoutMs`, then closed or reconnected.
 */

import assert from "node:assert/strict";
import { type AlphaNetClient, type ClientOptions, connect, PeerTimeout, TimedOut } from "../mod.ts";
import { identityFromSecret } from "../client/identity.ts";
import { PacketType } from "../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { randomIdentity } from "./_helpers/bytes.ts";
import { recordStates } from "./_helpers/client_states.ts";
import { FakeRelay } from "./_helpers/fake_relay.ts";
import { challenge } from "./client/_scripted_relay.ts";

/** The virtual IP the fake relay hands out: 45.33.2.10. */
const ADDRESS = 0x2d21020a;
const KEEPALIVE_MS = 50;
const PEER_TIMEOUT_MS = 300;

/** Connects a client to the fake relay and completes its handshake by hand. */
async function join(
  fake: FakeRelay,
  options: ClientOptions,
): Promise<{ client: AlphaNetClient; link: Awaited<ReturnType<FakeRelay["acceptJoin"]>> }> {
  const connecting = connect({
    port: fake.port,
    identity: randomIdentity(),
    keepaliveMs: KEEPALIVE_MS,
    peerTimeoutMs: PEER_TIMEOUT_MS,
    ...options,
  });
  const link = await fake.acceptJoin(ADDRESS);
  const client = await withTimeout(connecting, STEP_MS, "the client to join");
  assert.equal(client.virtualIp, "45.33.2.10");
  return { client, link };
}

Deno.test("an idle client pings every keepaliveMs, and the Pongs keep it connected past peerTimeoutMs", async () => {
  await using fake = FakeRelay.start();
  const { client, link } = await join(fake, { reconnect: false });
  try {
    const states = recordStates(client);
    const nonces = new Set<number>();
    const started = performance.now();
    const count = 10; // 10 × 50 ms: well past the 300 ms peer time-out.
    for (let i = 0; i < count; i++) {
      const ping = await link.expect(PacketType.Ping, `Ping ${i + 1}`);
      nonces.add(ping.nonce);
      await link.send({ type: PacketType.Pong, nonce: ping.nonce });
    }
    const elapsed = performance.now() - started;
    assert.equal(nonces.size, count, "every Ping has its own nonce");
    assert.ok(
      elapsed >= (count - 1) * KEEPALIVE_MS * 0.8,
      `${count} Pings came in ${elapsed} ms: faster than one per ${KEEPALIVE_MS} ms`,
    );
    assert.ok(elapsed > PEER_TIMEOUT_MS, "the test outlasted the peer time-out");
    assert.equal(client.state, "connected");
    assert.deepEqual(states.states(), []);
    const pending = Symbol("pending");
    assert.equal(await Promise.race([client.closed, Promise.resolve(pending)]), pending);
  } finally {
    await client.close();
  }
});

Deno.test("a client pings even while the relay keeps talking to it", async () => {
  await using fake = FakeRelay.start();
  const { client, link } = await join(fake, { reconnect: false });
  try {
    // The fake relay sends a Ping of its own every 10 ms; the client must still ping on schedule.
    for (let i = 0; i < 3; i++) {
      let seen = false;
      for (let sent = 0; sent < 100 && !seen; sent++) {
        await link.send({ type: PacketType.Ping, nonce: 1000 + sent });
        const packet = await link.next(STEP_MS, "the client's Pong or Ping");
        assert.ok(packet !== null, "the client closed the link");
        if (packet.type === PacketType.Ping) {
          seen = true;
          await link.send({ type: PacketType.Pong, nonce: packet.nonce });
        } else {
          assert.equal(packet.type, PacketType.Pong);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
      assert.ok(seen, `no Ping ${i + 1} from the client among 100 frames`);
    }
    assert.equal(client.state, "connected");
  } finally {
    await client.close();
  }
});

Deno.test("a relay that goes silent is found dead within peerTimeoutMs; without reconnect the client closes", async () => {
  await using fake = FakeRelay.start();
  const { client, link } = await join(fake, { reconnect: false });
  const states = recordStates(client);
  const listener = client.listen({ port: 80 });
  const joinedAt = performance.now();
  // The fake relay answers nothing from now on.
  const ended = await withTimeout(client.closed, STEP_MS, "the client to give up on the relay");
  const silentFor = performance.now() - joinedAt;
  assert.ok(ended instanceof PeerTimeout, `expected PeerTimeout, got ${ended}`);
  assert.ok(ended instanceof TimedOut, "PeerTimeout is a TimedOut");
  assert.match(ended.message, /nothing received/);
  assert.ok(silentFor >= PEER_TIMEOUT_MS - 5, `declared dead after only ${silentFor} ms`);
  assert.ok(silentFor < PEER_TIMEOUT_MS + 700, `declared dead only after ${silentFor} ms`);
  assert.equal(client.state, "closed");
  assert.deepEqual(states.states(), ["closed"]);
  assert.equal(states.events[0].error, ended);
  await assert.rejects(listener.accept(), PeerTimeout);
  // The client pinged while it waited, then dropped the TCP link like a dead connection.
  let pings = 0;
  for (let i = 0; i < 100; i++) {
    const packet = await link.next(STEP_MS, "the client's Pings, then end of stream");
    if (packet === null) break;
    assert.equal(packet.type, PacketType.Ping);
    pings++;
  }
  assert.ok(pings >= 3, `only ${pings} Pings in ${PEER_TIMEOUT_MS} ms`);
  await client.close();
});

Deno.test("a relay that goes silent sends the client to reconnecting with PeerTimeout, and it comes back", async () => {
  await using fake = FakeRelay.start();
  const identity = randomIdentity();
  const { client } = await join(fake, {
    identity,
    reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  try {
    const states = recordStates(client);
    const lost = await states.next("reconnecting", "the client to notice the silence");
    assert.ok(lost.error instanceof PeerTimeout, `expected PeerTimeout, got ${lost.error}`);
    assert.equal(client.state, "reconnecting");
    const second = await fake.accept("the client to reconnect");
    await second.expect(PacketType.Hello, "Hello on the new link");
    await second.send({ ...challenge(), relayId: fake.relayId }); // The same relay: its id is pinned.
    const proof = await second.expect(PacketType.Proof, "Proof on the new link");
    const derived = await identityFromSecret(identity);
    assert.deepEqual(proof.identity?.publicKey, derived.publicKey, "same identity");
    await second.send({ type: PacketType.VirtualIP, address: ADDRESS });
    const back = await states.next("connected", "the client to be back");
    assert.equal(back.error, null);
    assert.equal(client.virtualIp, "45.33.2.10");
    // The new link is kept alive too.
    const ping = await second.expect(PacketType.Ping, "a Ping on the new link");
    await second.send({ type: PacketType.Pong, nonce: ping.nonce });
    assert.deepEqual(states.states(), ["reconnecting", "connected"]);
  } finally {
    await client.close();
  }
});
