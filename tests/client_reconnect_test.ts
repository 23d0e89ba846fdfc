/**
 * Client reconnect: a real relay restarted on the same port and database
 * under live clients, takeovers that must not reconnect, reconnect off,
 * requests that wait for the link, bounded attempts, a changed address, and
 * which Error reasons are fatal (against a fake relay on real TCP).
 */

import assert from "node:assert/strict";
import { ProofFailed } from "../client/link.ts";
import { backoffDelay, isFatal } from "../client/reconnect.ts";
import {
  AddressChanged,
  type AlphaNetClient,
  type ClientOptions,
  connect,
  ConnectionReset,
  JoinTokenError,
  PeerTimeout,
  RelayError,
  RelayIdMismatch,
  Replaced,
  TimedOut,
} from "../mod.ts";
import { PacketType, ProtocolError, Reason, reasonName } from "../protocol/mod.ts";
import { Relay } from "../server.ts";
import { delay, STEP_MS, withTimeout } from "./_helpers/async.ts";
import { assertEcho, echoOnce } from "./_helpers/echo_once.ts";
import { randomIdentity, text, utf8 } from "./_helpers/bytes.ts";
import { recordStates } from "./_helpers/client_states.ts";
import { FakeRelay } from "./_helpers/fake_relay.ts";
import { startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";
import { readAll } from "./_helpers/streams.ts";

/** Fast backoff so the tests reconnect within tens of milliseconds. */
const FAST: ClientOptions["reconnect"] = { initialDelayMs: 10, maxDelayMs: 50 };

/** Starts a relay on the port and database of `first` (which must be closed). */
function restart(
  first: TestRelay,
  options: { db?: string; vipRange?: string } = {},
): Promise<Relay> {
  return Relay.start({
    hostname: "127.0.0.1",
    port: first.port,
    db: options.db ?? first.db,
    vipRange: options.vipRange,
    logLevel: "silent",
  });
}

function join(port: number, options: ClientOptions = {}): Promise<AlphaNetClient> {
  return withTimeout(connect({ port, reconnect: FAST, ...options }), STEP_MS, "a client to join");
}

function isShutdown(error: Error | null): boolean {
  return error instanceof RelayError && error.reason === Reason.Shutdown;
}

Deno.test("backoff: full jitter below min(maxDelayMs, initialDelayMs * 2^attempt)", () => {
  const policy = { initialDelayMs: 100, maxDelayMs: 10_000, maxAttempts: Infinity };
  const top = () => 1 - Number.EPSILON;
  assert.equal(backoffDelay(0, policy, () => 0), 0);
  assert.ok(Math.abs(backoffDelay(0, policy, top) - 100) < 1e-9);
  assert.ok(Math.abs(backoffDelay(3, policy, top) - 800) < 1e-9);
  assert.ok(Math.abs(backoffDelay(7, policy, top) - 10_000) < 1e-9, "capped at maxDelayMs");
  assert.ok(Math.abs(backoffDelay(5000, policy, top) - 10_000) < 1e-9, "no overflow");
  assert.equal(backoffDelay(4, policy, () => 0.5), 800);
});

Deno.test("fatal errors: takeover, refusals and protocol violations; everything else is retried", () => {
  const fatal = [
    "Replaced",
    "UnsupportedVersion",
    "PoolExhausted",
    "InvalidIdentity",
    "JoinTokenRequired",
    "JoinTokenInvalid",
    "JoinTokenUsedUp",
    "JoinTokenExpired",
    "Malformed",
    "UnexpectedPacket",
    "SpoofedAddress",
    "FlowControl",
    "UnknownId",
  ];
  for (const [name, code] of Object.entries(Reason)) {
    assert.equal(isFatal(new RelayError("test", code)), fatal.includes(name), name);
  }
  assert.equal(isFatal(new Replaced("test")), true);
  assert.equal(isFatal(new JoinTokenError("test", Reason.JoinTokenExpired)), true);
  assert.equal(isFatal(new ProofFailed({ cause: new Error("the key refused") })), true);
  assert.equal(isFatal(new ProtocolError("bad frame", Reason.Malformed)), true);
  assert.equal(isFatal(new AddressChanged("1.2.3.4", "5.6.7.8")), true);
  assert.equal(isFatal(new RelayIdMismatch("ab".repeat(32), "cd".repeat(32))), true);
  assert.equal(
    isFatal(
      new ConnectionReset("Cannot keep the link to the relay: the relay closed the connection"),
    ),
    false,
  );
  assert.equal(isFatal(new PeerTimeout("silent")), false);
  assert.equal(isFatal(new TimedOut("no VirtualIP")), false);
  assert.equal(isFatal(new Deno.errors.ConnectionRefused("refused")), false);
});

Deno.test("a relay restart resets open connections; clients come back with the same virtual IP and listeners accept again", async () => {
  const first = await startRelay();
  let second: Relay | undefined;
  const clients: AlphaNetClient[] = [];
  try {
    const a = await join(first.port, { identity: randomIdentity() });
    clients.push(a);
    const b = await join(first.port); // keyed on its real IP, 127.0.0.1
    clients.push(b);
    const [aIp, bIp] = [a.virtualIp, b.virtualIp];
    const aStates = recordStates(a);
    const bStates = recordStates(b);
    const listener = a.listen({ port: 80 });

    const accepting = listener.accept();
    const dialed = await withTimeout(b.connect({ hostname: aIp, port: 80 }), STEP_MS, "dial");
    const accepted = await withTimeout(accepting, STEP_MS, "accept");
    await dialed.write(utf8("before"));
    const buffer = new Uint8Array(64);
    assert.equal(text(buffer.subarray(0, (await accepted.read(buffer))!)), "before");
    const pendingRead = accepted.read(buffer).then(() => null, (error: Error) => error);

    await first.relay.close();
    const aLost = await aStates.next("reconnecting", "a to lose its link");
    const bLost = await bStates.next("reconnecting", "b to lose its link");
    assert.ok(isShutdown(aLost.error), `a: expected Error(Shutdown), got ${aLost.error}`);
    assert.ok(isShutdown(bLost.error), `b: expected Error(Shutdown), got ${bLost.error}`);
    assert.equal(a.state, "reconnecting");
    const readError = await withTimeout(pendingRead, STEP_MS, "the pending read to fail");
    assert.ok(
      readError instanceof ConnectionReset,
      `read: expected ConnectionReset, got ${readError}`,
    );
    await assert.rejects(dialed.write(utf8("lost")), ConnectionReset);
    await assert.rejects(accepted.read(buffer), ConnectionReset);
    dialed.close();
    accepted.close();

    second = await restart(first);
    await aStates.next("connected", "a to reconnect");
    await bStates.next("connected", "b to reconnect");
    assert.equal(a.virtualIp, aIp, "a keeps its virtual IP (identity)");
    assert.equal(b.virtualIp, bIp, "b keeps its virtual IP (real IP)");
    assert.deepEqual(aStates.states(), ["reconnecting", "connected"]);
    assert.deepEqual(bStates.states(), ["reconnecting", "connected"]);
    assert.equal(listener.addr.hostname, aIp);

    // The listener bound before the restart accepts a connection made after it.
    const serving = echoOnce(listener);
    await assertEcho(b, aIp, 80, "after the restart");
    await withTimeout(serving, STEP_MS, "echo server");
    listener.close();
    const pending = Symbol("pending");
    assert.equal(await Promise.race([a.closed, Promise.resolve(pending)]), pending);
  } finally {
    for (const client of clients) await withTimeout(client.close(), STEP_MS, "client.close()");
    await second?.close();
    await first.cleanup();
  }
});

Deno.test("a client replaced by a newer one from the same real IP closes with Replaced and never reconnects", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const clients: AlphaNetClient[] = [];
  try {
    const older = await join(relay.port);
    clients.push(older);
    const states = recordStates(older);
    const listener = older.listen({ port: 80 });
    const newer = await join(relay.port);
    clients.push(newer);
    const ended = await withTimeout(older.closed, STEP_MS, "the older client to be replaced");
    assert.ok(ended instanceof Replaced, `expected Replaced, got ${ended}`);
    assert.ok(ended instanceof RelayError, "Replaced is a RelayError");
    assert.equal(ended.reasonName, "Replaced");
    assert.equal(older.state, "closed");
    assert.deepEqual(states.states(), ["closed"]);
    assert.equal(states.events[0].error, ended);
    await assert.rejects(listener.accept(), Replaced);
    await assert.rejects(older.status({ hostname: newer.virtualIp, port: 1 }), Replaced);
    assert.throws(() => older.listen({ port: 81 }), Replaced);

    // Many backoff periods later, the older client has still not fought back.
    await delay(300);
    assert.deepEqual(states.states(), ["closed"]);
    assert.equal(newer.state, "connected");
    const observer = await join(relay.port, { identity: randomIdentity() });
    clients.push(observer);
    assert.deepEqual(
      await withTimeout(observer.status({ hostname: newer.virtualIp, port: 1 }), STEP_MS, "status"),
      { online: true, listening: false },
    );
    assert.equal(relay.relay.linkCount, 2, "only the newer client and the observer are linked");
    const pending = Symbol("pending");
    assert.equal(await Promise.race([newer.closed, Promise.resolve(pending)]), pending);
  } finally {
    for (const client of clients) await withTimeout(client.close(), STEP_MS, "client.close()");
    await relay.close();
  }
});

Deno.test("with reconnect: false, losing the link closes the client for good", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const client = await join(relay.port, { identity: randomIdentity(), reconnect: false });
  try {
    const states = recordStates(client);
    const listener = client.listen({ port: 80 });
    await relay.close();
    const ended = await withTimeout(client.closed, STEP_MS, "the client to close");
    assert.ok(isShutdown(ended), `expected Error(Shutdown), got ${ended}`);
    assert.equal(client.state, "closed");
    assert.deepEqual(states.states(), ["closed"]);
    await assert.rejects(listener.accept(), RelayError);
  } finally {
    await client.close();
  }
});

Deno.test("connect() and status() while reconnecting wait for the link and succeed once it is back", async () => {
  const first = await startRelay();
  let second: Relay | undefined;
  const client = await join(first.port, { identity: randomIdentity() });
  try {
    const states = recordStates(client);
    const listener = client.listen({ port: 7 });
    await first.relay.close();
    await states.next("reconnecting", "the client to lose its link");
    // Dial our own listener: it is the one peer sure to be back when we are.
    const serving = echoOnce(listener);
    const dialing = client.connect({ hostname: client.virtualIp, port: 7 });
    const asking = client.status({ hostname: client.virtualIp, port: 7 });
    await delay(50);
    assert.equal(client.state, "reconnecting", "the requests are still waiting");
    second = await restart(first);
    const conn = await withTimeout(dialing, STEP_MS, "connect() to finish once back");
    try {
      await conn.write(utf8("waited for the link"));
      await conn.closeWrite();
      assert.equal(text(await withTimeout(readAll(conn), STEP_MS, "echo")), "waited for the link");
    } finally {
      conn.close();
    }
    assert.deepEqual(await withTimeout(asking, STEP_MS, "status() to finish once back"), {
      online: true,
      listening: true,
    });
    await withTimeout(serving, STEP_MS, "echo server");
    listener.close();
  } finally {
    await client.close();
    await second?.close();
    await first.cleanup();
  }
});

Deno.test("connect() while reconnecting fails with TimedOut if the link is not back within requestTimeoutMs", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const client = await join(relay.port, { identity: randomIdentity(), requestTimeoutMs: 200 });
  const states = recordStates(client);
  await relay.close();
  await states.next("reconnecting", "the client to lose its link");
  const started = performance.now();
  await assert.rejects(client.connect({ hostname: "45.33.2.10", port: 80 }), TimedOut);
  assert.ok(performance.now() - started >= 190, "it waited for requestTimeoutMs");
  assert.equal(client.state, "reconnecting");
  // close() stops reconnecting; a close is not an error.
  const waiting = client.status({ hostname: "45.33.2.10", port: 80 });
  await client.close();
  await assert.rejects(waiting, (error: unknown) => error instanceof Error);
  assert.equal(await client.closed, null);
  assert.deepEqual(states.states(), ["reconnecting", "closed"]);
  assert.equal(states.events[1].error, null);
});

Deno.test("reconnect gives up after maxAttempts and closes with ConnectionReset", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const client = await join(relay.port, {
    identity: randomIdentity(),
    reconnect: { initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 3 },
  });
  const states = recordStates(client);
  await relay.close(); // and never back
  const ended = await withTimeout(client.closed, STEP_MS, "the client to give up");
  assert.ok(ended instanceof ConnectionReset, `expected ConnectionReset, got ${ended}`);
  assert.match(ended.message, /3 attempts failed/);
  assert.ok(ended.cause instanceof Deno.errors.ConnectionRefused, `cause: ${ended.cause}`);
  assert.deepEqual(states.states(), ["reconnecting", "closed"]);
  assert.equal(client.state, "closed");
  await client.close();
});

Deno.test("a relay that lost its registry (another relay id) on reconnect closes the client with RelayIdMismatch", async () => {
  const first = await startRelay({ vipRange: "45.0.0.1/32" });
  let second: Relay | undefined;
  const client = await join(first.port, { identity: randomIdentity() });
  try {
    assert.equal(client.virtualIp, "45.0.0.1");
    const states = recordStates(client);
    await first.relay.close();
    const pinned = client.relayId;
    // A relay that lost its registry: a fresh database (so a new relay id) and another pool. The
    // client refuses its Challenge unsigned, before any address (AddressChanged: tests/client/).
    second = await restart(first, { db: `${first.dir}/fresh.db`, vipRange: "45.0.0.2/32" });
    const ended = await withTimeout(client.closed, STEP_MS, "the client to refuse the relay");
    assert.ok(ended instanceof RelayIdMismatch, `expected RelayIdMismatch, got ${ended}`);
    assert.equal(ended.expected, pinned);
    assert.equal(ended.actual, second.relayId);
    assert.equal(client.virtualIp, "45.0.0.1");
    assert.deepEqual(states.states(), ["reconnecting", "closed"]);
  } finally {
    await client.close();
    await second?.close();
    await first.cleanup();
  }
});

Deno.test("a request in flight when the link drops fails with ConnectionReset", async () => {
  await using fake = FakeRelay.start();
  const connecting = join(fake.port, { identity: randomIdentity() });
  const link = await fake.acceptJoin(0x2d21020a);
  const client = await connecting;
  try {
    const states = recordStates(client);
    const asking = client.status({ hostname: "45.33.2.11", port: 80 });
    await link.expect(PacketType.SocketStatusRequest, "the status request");
    await link.close(); // EOF, no answer
    await assert.rejects(withTimeout(asking, STEP_MS, "status() to fail"), ConnectionReset);
    const lost = await states.next("reconnecting", "the client to lose its link");
    assert.ok(lost.error instanceof ConnectionReset, `expected ConnectionReset, got ${lost.error}`);
  } finally {
    await client.close();
  }
});

Deno.test("which Error frames end a client for good and which it reconnects after", async (t) => {
  const fatal = new Set<Reason>([
    Reason.Replaced,
    Reason.UnsupportedVersion,
    Reason.PoolExhausted,
    Reason.InvalidIdentity,
    Reason.JoinTokenRequired,
    Reason.JoinTokenInvalid,
    Reason.JoinTokenUsedUp,
    Reason.JoinTokenExpired,
    Reason.Malformed,
    Reason.UnexpectedPacket,
    Reason.SpoofedAddress,
    Reason.FlowControl,
    Reason.UnknownId,
  ]);
  const reasons: Reason[] = [
    ...fatal,
    Reason.Shutdown,
    Reason.HelloTimeout,
    Reason.SlowConsumer,
    Reason.Internal,
    Reason.PeerTimeout,
    Reason.RateLimited,
    Reason.ServerFull,
  ];
  for (const reason of reasons) {
    const verdict = fatal.has(reason) ? "closes" : "reconnects";
    await t.step(`Error(${reasonName(reason)}) ${verdict}`, async () => {
      await using fake = FakeRelay.start();
      const connecting = join(fake.port, { identity: randomIdentity() });
      const link = await fake.acceptJoin(0x2d21020a);
      const client = await connecting;
      try {
        const states = recordStates(client);
        await link.send({ type: PacketType.Error, reason, message: "test" });
        await link.close();
        if (fatal.has(reason)) {
          const ended = await withTimeout(client.closed, STEP_MS, "the client to close");
          assert.ok(ended instanceof RelayError, `expected RelayError, got ${ended}`);
          assert.equal(ended.reason, reason);
          assert.equal(ended instanceof Replaced, reason === Reason.Replaced);
          assert.deepEqual(states.states(), ["closed"]);
        } else {
          const lost = await states.next("reconnecting", "the client to lose its link");
          assert.ok(lost.error instanceof RelayError && lost.error.reason === reason);
          await fake.acceptJoin(0x2d21020a, "the client to reconnect");
          await states.next("connected", "the client to be back");
        }
      } finally {
        await client.close();
      }
    });
  }
});
