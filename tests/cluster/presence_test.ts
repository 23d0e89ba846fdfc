/**
 * Presence over a real nats-server (issue 12): locate finds the relay that
 * announced an address and nobody after it withdrew or closed, claims reach
 * the other relays only, dial requests round-trip, a restarted NATS brings
 * presence back, and garbage on the subjects is dropped without a throw.
 * "At once" is shown by an answer arriving before a 1 s timer while the
 * locate time-out is 2 s, never by measuring.
 */

import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Logger } from "../../server/log.ts";
import { type NodeInfo, Presence } from "../../server/cluster/presence.ts";
import { clusterTest, type Nats, startNats } from "../_helpers/cluster_engines.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { freePort } from "../_helpers/ports.ts";

const PREFIX = "alphanet.0123456789abcdef";
/** Well under the 2 s locate time-out: an answer before it did not wait for the time-out. */
const AT_ONCE_MS = 1_000;

/** A Logger that keeps its events, and lets a test wait for one. */
class RecordingLogger extends Logger {
  readonly events: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  readonly #waiters: { event: string; resolve: () => void }[] = [];

  constructor() {
    super("debug");
  }

  override log(level: "debug" | "info" | "warn" | "error", event: string, fields = {}): void {
    this.events.push({ level, event, fields });
    for (const waiter of this.#waiters.filter((w) => w.event === event)) waiter.resolve();
  }

  /** Resolves at the next `event` logged from now on. */
  next(event: string): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ event, resolve });
    return promise;
  }

  count(event: string): number {
    return this.events.filter((e) => e.event === event).length;
  }
}

function randomNode(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))]
    .map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function nodeInfo(): NodeInfo {
  return { node: randomNode(), mesh: `127.0.0.1:${10_000 + Math.floor(Math.random() * 50_000)}` };
}

async function startPresence(
  nats: Nats,
  log: Logger = new RecordingLogger(),
): Promise<Presence & { self: NodeInfo }> {
  const self = nodeInfo();
  const presence = await Presence.connect({ url: nats.url, prefix: PREFIX, self, log });
  return Object.assign(presence, { self });
}

/** `promise`'s value, or "late" if a `ms` timer fires first (the timer is always cleared). */
async function before<T>(promise: Promise<T>, ms: number): Promise<T | "late"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), ms));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

clusterTest(
  "locate() finds the relay that announced, and nobody at once after it withdrew",
  async () => {
    await using nats = await startNats();
    await using a = await startPresence(nats);
    await using b = await startPresence(nats);
    a.announce(7);
    a.announce(7); // idempotent
    assert.ok(await a.flush());
    assert.deepEqual(await b.locate(7), a.self);
    assert.equal(await before(a.locate(7), AT_ONCE_MS), null, "never itself");
    assert.equal(await before(b.locate(8), AT_ONCE_MS), null, "nobody holds 8");

    a.withdraw(7);
    a.withdraw(7); // idempotent
    assert.ok(await a.flush());
    assert.equal(await before(b.locate(7), AT_ONCE_MS), null);
    assert.throws(() => a.announce(2 ** 32), RangeError);
    assert.throws(() => a.withdraw(-1), RangeError);
    assert.throws(() => a.locate(1.5), RangeError, "thrown at the call, never a rejection");
    assert.equal(a.connected, true);
  },
);

clusterTest(
  "announce() of 10,000 addresses answers each, and withdraw() takes them back",
  async () => {
    await using nats = await startNats();
    await using a = await startPresence(nats);
    await using b = await startPresence(nats);
    const base = 0x0a00_0000;
    for (let i = 0; i < 10_000; i++) a.announce(base + i);
    assert.ok(await a.flush());
    for (const i of [0, 4_999, 9_999]) assert.deepEqual(await b.locate(base + i), a.self);
    for (let i = 0; i < 10_000; i++) a.withdraw(base + i);
    assert.ok(await a.flush());
    assert.equal(await before(b.locate(base + 9_999), AT_ONCE_MS), null);
  },
);

clusterTest("a claim reaches the other relays' onClaim, never the claimer's own", async () => {
  await using nats = await startNats();
  await using a = await startPresence(nats);
  await using b = await startPresence(nats);
  const seenByA: [number, string, number][] = [];
  const seenByB: [number, string, number][] = [];
  const bSaw = Promise.withResolvers<void>();
  a.onClaim = (address, node, at) => seenByA.push([address, node, at]);
  b.onClaim = (address, node, at) => {
    seenByB.push([address, node, at]);
    bSaw.resolve();
  };
  a.claim(9, 1_700_000_000_123);
  // The server handled a's claim before it answered a's flush, so an echo would be here by now.
  assert.ok(await a.flush());
  await withTimeout(bSaw.promise, STEP_MS, "b to see a's claim");
  assert.deepEqual(seenByB, [[9, a.self.node, 1_700_000_000_123]]);
  assert.deepEqual(seenByA, []);
});

clusterTest(
  "requestDial() runs the other relay's dial handler and reports its answer",
  async () => {
    await using nats = await startNats();
    await using a = await startPresence(nats);
    await using b = await startPresence(nats);
    const dialed: NodeInfo[] = [];
    a.serveDial((from) => {
      dialed.push(from);
      return dialed.length === 1 ? Promise.resolve() : Promise.reject(new Error("link refused"));
    });
    assert.throws(() => a.serveDial(() => Promise.resolve()), /twice/);
    assert.ok(await a.flush());

    await b.requestDial(a.self.node);
    assert.deepEqual(dialed, [b.self]);
    await assert.rejects(b.requestDial(a.self.node), /it answered: link refused/);

    const unknown = before(b.requestDial(randomNode()).catch((error: Error) => error), AT_ONCE_MS);
    const error = await unknown;
    assert.ok(error instanceof Error, "rejected before the timer");
    assert.match(error.message, /^Cannot request a dial from node [0-9a-f]{32}: no relay/);
    await assert.rejects(b.requestDial("not-a-node"), TypeError);
  },
);

clusterTest(
  "a relay runs at most 16 dial handlers at once and answers the next one busy",
  async () => {
    await using nats = await startNats();
    await using a = await startPresence(nats);
    await using b = await startPresence(nats);
    const release = Promise.withResolvers<void>();
    const sixteen = Promise.withResolvers<void>();
    let running = 0;
    a.serveDial(() => {
      if (++running === 16) sixteen.resolve();
      return release.promise;
    });
    assert.ok(await a.flush());
    const waiting = Array.from({ length: 16 }, () => b.requestDial(a.self.node));
    await withTimeout(sixteen.promise, STEP_MS, "16 handlers running");
    await assert.rejects(b.requestDial(a.self.node), /it answered: busy/);
    release.resolve();
    await Promise.all(waiting);
    await b.requestDial(a.self.node);
    assert.equal(running, 17);
  },
);

clusterTest(
  "a closed Presence's addresses are gone at once, and close() is idempotent",
  async () => {
    await using nats = await startNats();
    const a = await startPresence(nats);
    await using b = await startPresence(nats);
    a.serveDial(() => Promise.resolve());
    a.announce(3);
    assert.ok(await a.flush());
    assert.deepEqual(await b.locate(3), a.self);

    await a.close();
    await a.close();
    assert.equal(a.connected, false);
    assert.equal(await before(b.locate(3), AT_ONCE_MS), null);
    await assert.rejects(b.requestDial(a.self.node), /no relay with that id/);
    assert.equal(await a.locate(3), null);
    a.announce(4); // ignored once closed
    a.claim(4, Date.now());
    assert.equal(await a.flush(), false);
  },
);

clusterTest("NATS restarted on its port: both relays reconnect and presence is back", async () => {
  await using first = await startNats();
  const logA = new RecordingLogger();
  const logB = new RecordingLogger();
  await using a = await startPresence(first, logA);
  await using b = await startPresence(first, logB);
  a.announce(21);
  b.announce(22);
  a.serveDial(() => Promise.resolve());
  assert.ok(await a.flush());
  assert.ok(await b.flush());

  const down = Promise.all([logA.next("nats-disconnected"), logB.next("nats-disconnected")]);
  const aBack = Promise.withResolvers<void>();
  const bBack = Promise.withResolvers<void>();
  a.onReconnect = aBack.resolve;
  b.onReconnect = bBack.resolve;
  await first.stop();
  await withTimeout(down, STEP_MS, "both relays to see NATS go");
  assert.equal(a.connected, false);
  assert.equal(await b.locate(21), null, "NATS down: nobody found");
  await assert.rejects(b.requestDial(a.self.node), /NATS is not connected/);
  b.withdraw(22); // while down: must not come back with the reconnect
  b.announce(23);

  await using _second = await startNats(first.port);
  await withTimeout(Promise.all([aBack.promise, bBack.promise]), STEP_MS, "both to reconnect");
  assert.equal(a.connected && b.connected, true);
  assert.deepEqual(await b.locate(21), a.self);
  assert.deepEqual(await a.locate(23), b.self);
  assert.equal(await before(a.locate(22), AT_ONCE_MS), null);
  await b.requestDial(a.self.node);
  // One line each way per outage, not one per reconnect attempt.
  assert.equal(logA.count("nats-disconnected"), 1);
  assert.equal(logA.count("nats-reconnected"), 1);
  assert.equal(logA.count("presence-restored"), 1);
});

clusterTest("close() while NATS is down ends at once", async () => {
  const nats = await startNats();
  const log = new RecordingLogger();
  const a = await startPresence(nats, log);
  a.announce(1);
  const down = log.next("nats-disconnected");
  await nats.stop();
  await withTimeout(down, STEP_MS, "the disconnect");
  await withTimeout(a.close(), STEP_MS, "close() while NATS is down");
});

clusterTest("connect() rejects with a clear error when NATS cannot be reached", async () => {
  const url = `nats://127.0.0.1:${freePort()}`;
  const options = { url, prefix: PREFIX, self: nodeInfo(), log: new RecordingLogger() };
  await assert.rejects(Presence.connect(options), /^Error: Cannot connect to NATS at nats:\/\//);
  await assert.rejects(Presence.connect({ ...options, prefix: "alphanet.*" }), TypeError);
  await assert.rejects(
    Presence.connect({ ...options, self: { node: "ABC", mesh: "127.0.0.1:1" } }),
    TypeError,
  );
  await assert.rejects(
    Presence.connect({ ...options, self: { node: randomNode(), mesh: "127.0.0.1" } }),
    TypeError,
  );
});

clusterTest("garbage on the presence subjects is dropped, never thrown", async () => {
  await using nats = await startNats();
  const log = new RecordingLogger();
  await using a = await startPresence(nats);
  await using b = await startPresence(nats, log);
  const raw: NatsConnection = await connect({ servers: nats.url });
  try {
    // Claims: bad payloads and bad subjects, then one good claim behind them (one publisher's
    // messages arrive in order, so the good one shows the garbage was handled).
    const claims: [number, string][] = [];
    const good = Promise.withResolvers<void>();
    b.onClaim = (address, node) => {
      claims.push([address, node]);
      if (address === 6) good.resolve();
    };
    const other = randomNode();
    const badClaims: [string, string][] = [
      ["5", "not json"],
      ["5", ""],
      ["5", "[1,2]"],
      ["5", "null"],
      ["5", '{"node":"XYZ"}'],
      ["5", `{"node":"${other.toUpperCase()}"}`],
      ["5", JSON.stringify({ node: other, pad: "x".repeat(1_000) })],
      ["5", `{"node":"${other}"}`],
      ["abc", `{"node":"${other}","at":1}`],
      ["007", `{"node":"${other}","at":1}`],
      ["4294967296", `{"node":"${other}","at":1}`],
      ["-1", `{"node":"${other}","at":1}`],
    ];
    for (const [token, payload] of badClaims) raw.publish(`${PREFIX}.claim.${token}`, payload);
    raw.publish(`${PREFIX}.claim.5`, new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]));
    raw.publish(`${PREFIX}.claim.6`, `{"node":"${other}","at":1,"later":1}`);
    await withTimeout(good.promise, STEP_MS, "the good claim");
    assert.deepEqual(claims, [[6, other]]);
    assert.ok(log.count("presence-malformed") >= badClaims.length);

    // Locate answers that are not a NodeInfo, or name the asker itself.
    const answers: [number, string][] = [
      [11, "garbage"],
      [12, JSON.stringify({ node: other, mesh: "bad" })],
      [13, JSON.stringify({ node: other, mesh: "256.1.1.1:80" })],
      [14, JSON.stringify({ node: other, mesh: "host:0" })],
      [15, JSON.stringify(b.self)],
      [16, JSON.stringify({ node: other, mesh: "[::1]:4000" })],
    ];
    for (const [address, answer] of answers) {
      raw.subscribe(`${PREFIX}.vip.${address}`, {
        callback: (_e, msg) => void msg.respond(answer),
      });
    }
    await raw.flush();
    for (const [address] of answers.slice(0, -1)) assert.equal(await b.locate(address), null);
    assert.deepEqual(await b.locate(16), { node: other, mesh: "[::1]:4000" });

    // Dial answers that are not one, or carry control characters.
    const dialAnswers: [string, string][] = [
      [randomNode(), "garbage"],
      [randomNode(), '{"ok":"yes"}'],
      [randomNode(), JSON.stringify({ ok: false, error: "no\nway" })],
    ];
    for (const [node, answer] of dialAnswers) {
      raw.subscribe(`${PREFIX}.node.${node}.dial`, {
        callback: (_e, msg) => void msg.respond(answer),
      });
    }
    await raw.flush();
    await assert.rejects(b.requestDial(dialAnswers[0][0]), /malformed answer/);
    await assert.rejects(b.requestDial(dialAnswers[1][0]), /malformed answer/);
    await assert.rejects(b.requestDial(dialAnswers[2][0]), /it answered: no\?way$/);

    // Dial requests that are not a NodeInfo: answered with an error, the handler not run.
    let handled = 0;
    a.serveDial(() => {
      handled++;
      return Promise.resolve();
    });
    assert.ok(await a.flush());
    for (const payload of ["garbage", "", JSON.stringify(a.self), '{"node":1,"mesh":2}']) {
      const reply = await raw.request(`${PREFIX}.node.${a.self.node}.dial`, payload);
      assert.deepEqual(reply.json(), { ok: false, error: "malformed dial request" });
    }
    assert.equal(handled, 0);
    assert.equal(a.connected && b.connected, true);
  } finally {
    await raw.close();
  }
});
