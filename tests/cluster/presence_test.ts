/**
 * Presence over a real nats-server (issue 12): locate finds the relay that
 * announced an address and nobody after it withdrew or closed, claims reach
 * the other relays only, dial requests round-trip, a restarted NATS brings
 * presence back, garbage on the subjects is dropped without a throw, and a
 * payload without the right MAC (no mesh key, another mesh key, or signed for
 * another subject, reply or field) is dropped and logged.
 * "At once" is shown by an answer arriving before a 1 s timer while the
 * locate time-out is 2 s, never by measuring.
 */

import { randomHex } from "../_helpers/bytes.ts";
import assert from "node:assert/strict";
import { connect, createInbox, type NatsConnection } from "@nats-io/transport-node";
import { Logger } from "../../server/log.ts";
import { type NodeInfo, Presence } from "../../server/cluster/presence.ts";
import { PresenceMac } from "../../server/cluster/presence_mac.ts";
import {
  claimMacInput,
  dialAnswerMacInput,
  dialRequestMacInput,
  locateAnswerMacInput,
} from "../../server/cluster/presence_wire.ts";
import { clusterTest, type Nats, startNats } from "../_helpers/cluster_engines.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { freePort } from "../_helpers/ports.ts";

const PREFIX = "alphanet.0123456789abcdef";
/** The mesh key of the relays under test. */
const KEY = crypto.getRandomValues(new Uint8Array(32));
/** Signs payloads as a relay holding {@linkcode KEY} would. */
const MAC = await PresenceMac.derive(KEY);
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

  /** Resolves once `event` has been logged `count` times in all. */
  async reach(event: string, count: number): Promise<void> {
    while (this.count(event) < count) {
      await withTimeout(this.next(event), STEP_MS, `${event} #${this.count(event) + 1}`);
    }
  }
}

function randomNode(): string {
  return randomHex(16);
}

function nodeInfo(): NodeInfo {
  return { node: randomNode(), mesh: `127.0.0.1:${10_000 + Math.floor(Math.random() * 50_000)}` };
}

async function startPresence(
  nats: Nats,
  log: Logger = new RecordingLogger(),
  key: Uint8Array = KEY,
): Promise<Presence & { self: NodeInfo }> {
  const self = nodeInfo();
  const presence = await Presence.connect({ url: nats.url, prefix: PREFIX, self, key, log });
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
  const options = { url, prefix: PREFIX, self: nodeInfo(), key: KEY, log: new RecordingLogger() };
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
  await assert.rejects(
    Presence.connect({ ...options, key: new Uint8Array(16) }),
    /TypeError: Cannot derive the presence key: the mesh key must be 32 bytes/,
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
    const mac6 = await MAC.sign(claimMacInput(`${PREFIX}.claim.6`, { node: other, at: 1 }));
    raw.publish(`${PREFIX}.claim.6`, `{"node":"${other}","at":1,"later":1,"mac":"${mac6}"}`);
    await withTimeout(good.promise, STEP_MS, "the good claim");
    assert.deepEqual(claims, [[6, other]]);
    assert.ok(log.count("presence-malformed") >= badClaims.length);

    // Locate answers that are not a NodeInfo, or name the asker itself (signed, as the last one).
    const answers: [number, NodeInfo | string][] = [
      [11, "garbage"],
      [12, { node: other, mesh: "bad" }],
      [13, { node: other, mesh: "256.1.1.1:80" }],
      [14, { node: other, mesh: "host:0" }],
      [15, b.self],
      [16, { node: other, mesh: "[::1]:4000" }],
    ];
    for (const [address, answer] of answers) {
      raw.subscribe(`${PREFIX}.vip.${address}`, {
        callback: (_e, msg) => {
          if (typeof answer === "string") return void msg.respond(answer);
          void MAC.sign(locateAnswerMacInput(msg.subject, msg.reply!, answer))
            .then((mac) => msg.respond(JSON.stringify({ ...answer, mac })));
        },
      });
    }
    await raw.flush();
    for (const [address] of answers.slice(0, -1)) assert.equal(await b.locate(address), null);
    assert.deepEqual(await b.locate(16), { node: other, mesh: "[::1]:4000" });

    // Dial answers that are not one, or carry control characters (signed).
    const dialAnswers: [string, string][] = [
      [randomNode(), "garbage"],
      [randomNode(), '{"ok":"yes"}'],
      [randomNode(), "no\nway"],
    ];
    for (const [node, answer] of dialAnswers.slice(0, 2)) {
      raw.subscribe(`${PREFIX}.node.${node}.dial`, {
        callback: (_e, msg) => void msg.respond(answer),
      });
    }
    raw.subscribe(`${PREFIX}.node.${dialAnswers[2][0]}.dial`, {
      callback: (_e, msg) => {
        const answer = { ok: false as const, error: dialAnswers[2][1] };
        void MAC.sign(dialAnswerMacInput(msg.subject, msg.reply!, answer))
          .then((mac) => msg.respond(JSON.stringify({ ...answer, mac })));
      },
    });
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
    const dialSubject = `${PREFIX}.node.${a.self.node}.dial`;
    for (const payload of ["garbage", "", JSON.stringify(a.self), '{"node":1,"mesh":2}']) {
      const reply = await raw.request(dialSubject, payload);
      const { mac, ...answer } = reply.json<{ ok: false; error: string; mac: string }>();
      assert.deepEqual(answer, { ok: false, error: "malformed dial request" });
      // Signed for this request's reply subject, like every answer.
      assert.ok(await MAC.verify(dialAnswerMacInput(dialSubject, reply.subject, answer), mac));
    }
    assert.equal(handled, 0);
    assert.equal(a.connected && b.connected, true);
  } finally {
    await raw.close();
  }
});

/** The `presence-unauthenticated` lines logged, as `what` of each. */
function unauthenticated(log: RecordingLogger): unknown[] {
  return log.events.filter((e) => e.event === "presence-unauthenticated").map((e) => e.fields.what);
}

clusterTest(
  "a claim without the right MAC is dropped and logged; with it, heard once, and newer ones after",
  async () => {
    await using nats = await startNats();
    const log = new RecordingLogger();
    await using b = await startPresence(nats, log);
    const raw: NatsConnection = await connect({ servers: nats.url });
    try {
      const claims: [number, string, number][] = [];
      const heard = Promise.withResolvers<void>();
      const newer = Promise.withResolvers<void>();
      b.onClaim = (address, node, at) => {
        claims.push([address, node, at]);
        heard.resolve();
        if (at === 101) newer.resolve();
      };
      const node = randomNode();
      const subject = `${PREFIX}.claim.5`;
      const claim = { node, at: 100 };
      const mac = await MAC.sign(claimMacInput(subject, claim));
      const otherKey = await PresenceMac.derive(crypto.getRandomValues(new Uint8Array(32)));
      const forged: [string, Record<string, unknown>][] = [
        [subject, claim], // no mac: what a publisher without the key sends
        [subject, { ...claim, mac: "0".repeat(64) }],
        [subject, { ...claim, mac: mac.slice(0, 62) }],
        [subject, { ...claim, at: 101, mac }], // a replay cannot move its admission time
        [subject, { ...claim, node: randomNode(), mac }], // nor name another relay
        [`${PREFIX}.claim.6`, { ...claim, mac }], // nor go to another address
        [subject, { ...claim, mac: await otherKey.sign(claimMacInput(subject, claim)) }],
      ];
      for (const [to, payload] of forged) raw.publish(to, JSON.stringify(payload));
      await log.reach("presence-unauthenticated", forged.length);
      assert.deepEqual(claims, []);
      assert.deepEqual(unauthenticated(log), forged.map(() => "claim"));

      raw.publish(subject, JSON.stringify({ ...claim, mac }));
      await withTimeout(heard.promise, STEP_MS, "the signed claim");
      assert.deepEqual(claims, [[5, node, 100]]);
      assert.equal(log.count("presence-unauthenticated"), forged.length);

      // A replay of it, and an older signed claim, are not passed on; a newer one is.
      const older = { node, at: 99 };
      const newest = { node, at: 101 };
      const olderMac = await MAC.sign(claimMacInput(subject, older));
      const newestMac = await MAC.sign(claimMacInput(subject, newest));
      raw.publish(subject, JSON.stringify({ ...claim, mac }));
      raw.publish(subject, JSON.stringify({ ...older, mac: olderMac }));
      raw.publish(subject, JSON.stringify({ ...newest, mac: newestMac }));
      await withTimeout(newer.promise, STEP_MS, "the newer claim");
      await log.reach("presence-stale-claim", 2);
      assert.deepEqual(claims, [[5, node, 100], [5, node, 101]]);
    } finally {
      await raw.close();
    }
  },
);

clusterTest(
  "a locate answer without the right MAC is refused and logged; with it, it is the holder",
  async () => {
    await using nats = await startNats();
    const log = new RecordingLogger();
    await using b = await startPresence(nats, log);
    const raw: NatsConnection = await connect({ servers: nats.url });
    try {
      const holder = { node: randomNode(), mesh: "127.0.0.1:4000" };
      const otherKey = await PresenceMac.derive(crypto.getRandomValues(new Uint8Array(32)));
      /** How each address's forger answers a locate request (subject, reply) for it. */
      const answerers: [number, (subject: string, reply: string) => Promise<unknown>][] = [
        [31, () => Promise.resolve(holder)], // no mac
        [32, () => Promise.resolve({ ...holder, mac: "f".repeat(64) })],
        // A real answer replayed: signed for another request's reply subject.
        [33, async (subject) => ({
          ...holder,
          mac: await MAC.sign(locateAnswerMacInput(subject, "_INBOX.earlier.1", holder)),
        })],
        // Signed for another address.
        [34, async (_subject, reply) => ({
          ...holder,
          mac: await MAC.sign(locateAnswerMacInput(`${PREFIX}.vip.35`, reply, holder)),
        })],
        // Pointing a signed answer at another host.
        [35, async (subject, reply) => ({
          ...holder,
          mesh: "203.0.113.9:22",
          mac: await MAC.sign(locateAnswerMacInput(subject, reply, holder)),
        })],
        [36, async (subject, reply) => ({
          ...holder,
          mac: await otherKey.sign(locateAnswerMacInput(subject, reply, holder)),
        })],
        [37, async (subject, reply) => ({
          ...holder,
          mac: await MAC.sign(locateAnswerMacInput(subject, reply, holder)),
        })],
      ];
      for (const [address, answer] of answerers) {
        raw.subscribe(`${PREFIX}.vip.${address}`, {
          callback: (_e, msg) =>
            void answer(msg.subject, msg.reply!).then((body) => msg.respond(JSON.stringify(body))),
        });
      }
      await raw.flush();
      for (const [address] of answerers.slice(0, -1)) {
        assert.equal(await b.locate(address), null, `address ${address}`);
      }
      assert.deepEqual(unauthenticated(log), answerers.slice(0, -1).map(() => "locate answer"));
      assert.deepEqual(await b.locate(37), holder);
      assert.equal(log.count("presence-unauthenticated"), answerers.length - 1);
    } finally {
      await raw.close();
    }
  },
);

clusterTest(
  "a dial request or answer without the right MAC is dropped and logged; with it, it is served",
  async () => {
    await using nats = await startNats();
    const logA = new RecordingLogger();
    const logB = new RecordingLogger();
    await using a = await startPresence(nats, logA);
    await using b = await startPresence(nats, logB);
    const raw: NatsConnection = await connect({ servers: nats.url });
    try {
      const dialed: NodeInfo[] = [];
      a.serveDial((from) => {
        dialed.push(from);
        return Promise.resolve();
      });
      assert.ok(await a.flush());
      const subject = `${PREFIX}.node.${a.self.node}.dial`;
      const from = nodeInfo();
      const otherKey = await PresenceMac.derive(crypto.getRandomValues(new Uint8Array(32)));
      const mac = await MAC.sign(dialRequestMacInput(subject, from));
      const forged: object[] = [
        from, // no mac
        { ...from, mac: "1".repeat(64) },
        { ...from, mesh: "203.0.113.9:22", mac }, // a signed request pointed at another host
        {
          ...from,
          mac: await MAC.sign(dialRequestMacInput(`${PREFIX}.node.${b.self.node}.dial`, from)),
        },
        { ...from, mac: await otherKey.sign(dialRequestMacInput(subject, from)) },
      ];
      // Dropped unanswered: nothing reaches this inbox.
      const inbox = createInbox();
      const answers: unknown[] = [];
      raw.subscribe(inbox, { callback: (_e, msg) => void answers.push(msg.data) });
      for (const payload of forged) raw.publish(subject, JSON.stringify(payload), { reply: inbox });
      await logA.reach("presence-unauthenticated", forged.length);
      assert.ok(await a.flush()); // anything a had answered is at the server by now ...
      await raw.flush(); // ... and at raw by now
      assert.deepEqual(answers, []);
      assert.deepEqual(dialed, []);
      assert.deepEqual(unauthenticated(logA), forged.map(() => "dial request"));

      const reply = await raw.request(subject, JSON.stringify({ ...from, mac }));
      const answer = reply.json<{ ok: true; mac: string }>();
      assert.equal(answer.ok, true);
      assert.ok(await MAC.verify(dialAnswerMacInput(subject, reply.subject, answer), answer.mac));
      assert.deepEqual(dialed, [from]);

      // Answers: a forged ok, and a real ok replayed from another request, are refused.
      const forgedAnswers: [string, (reply: string, subject: string) => Promise<unknown>][] = [
        [randomNode(), () => Promise.resolve({ ok: true })],
        [randomNode(), async (_reply, subject) => ({
          ok: true,
          mac: await MAC.sign(dialAnswerMacInput(subject, "_INBOX.earlier.1", { ok: true })),
        })],
        [randomNode(), async (reply, subject) => ({
          ok: true,
          mac: await MAC.sign(
            dialAnswerMacInput(subject, reply, { ok: false, error: "signed as a refusal" }),
          ),
        })],
      ];
      for (const [node, answerer] of forgedAnswers) {
        raw.subscribe(`${PREFIX}.node.${node}.dial`, {
          callback: (_e, msg) =>
            void answerer(msg.reply!, msg.subject).then((body) =>
              msg.respond(JSON.stringify(body))
            ),
        });
      }
      await raw.flush();
      for (const [node] of forgedAnswers) {
        await assert.rejects(b.requestDial(node), /: unauthenticated answer$/);
      }
      assert.deepEqual(unauthenticated(logB), forgedAnswers.map(() => "dial answer"));
      await b.requestDial(a.self.node); // and the real one still works
    } finally {
      await raw.close();
    }
  },
);

clusterTest("relays with another mesh key are not heard: no locate, no claim", async () => {
  await using nats = await startNats();
  const logA = new RecordingLogger();
  const logC = new RecordingLogger();
  await using a = await startPresence(nats, logA);
  await using c = await startPresence(
    nats,
    logC,
    crypto.getRandomValues(new Uint8Array(32)),
  );
  c.announce(41);
  assert.ok(await c.flush());
  assert.equal(await a.locate(41), null);
  assert.deepEqual(unauthenticated(logA), ["locate answer"]);

  const claims: number[] = [];
  c.onClaim = (address) => claims.push(address);
  a.claim(41, Date.now());
  assert.ok(await a.flush());
  await logC.reach("presence-unauthenticated", 1);
  assert.deepEqual(unauthenticated(logC), ["claim"]);
  assert.deepEqual(claims, []);
});
