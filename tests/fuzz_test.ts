/**
 * Fuzzes a live `server.ts` subprocess: 20 raw clients send random bytes and
 * mutated valid frames, before and after a valid handshake, while a real
 * pair of clients streams data through the relay and checks every byte.
 * The seed is printed; rerun with ALPHANET_FUZZ_SEED=<seed> to replay the
 * same inputs.
 */

import assert from "node:assert/strict";
import {
  encode,
  MAX_FRAME_BODY_BYTES,
  type Packet,
  PacketType,
  PROTOCOL_VERSION,
  type Reason,
  reasonName,
} from "../protocol/mod.ts";
import type { VirtualConn } from "../mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { concatBytes, sha256hex } from "./_helpers/bytes.ts";
import { type EchoPair, startEchoPair } from "./_helpers/echo_pair.ts";
import { addressOf, RawClient } from "./_helpers/raw_client.ts";
import { assertRelayServes } from "./_helpers/relay_fixture.ts";
import { rssKiB, startServer } from "./_helpers/server_process.ts";
import { readAll } from "./_helpers/streams.ts";

const FUZZ_CLIENTS = 20;
/** Rounds per fuzz client, at most; each round is one TCP link. */
const MAX_ROUNDS = 250;
/** No fuzz client starts a round after this long. */
const FUZZ_BUDGET_MS = 7_000;
/** Longest a fuzzed link may stay open: the relay's time-outs below are far shorter. */
const LINK_DEADLINE_MS = 5_000;
/** Packets a fuzzed link may receive at most before it counts as a runaway. */
const MAX_PACKETS_PER_LINK = 10_000;
/** Growth of the relay's resident memory over the fuzz that counts as a leak. */
const MAX_RSS_GROWTH_KIB = 96 * 1024;

/** mulberry32: a small seeded PRNG, so every fuzz input can be replayed. */
class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** Uniform u32. */
  u32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform integer in [0, n). */
  below(n: number): number {
    return this.u32() % n;
  }
  /** Uniform integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** Addresses a fuzz frame may name: its own, the pair's, and random ones. */
interface Targets {
  self: number;
  others: number[];
}

/** Reason codes of this protocol version: 0..26. */
const REASONS = 27;

/** A Proof of random sections and random bytes: well-formed, never a valid signature. */
function randomProof(rng: Rng): Packet {
  const flags = rng.pick([0, 1, 2, 3, 5, 7]);
  return {
    type: PacketType.Proof,
    identity: flags & 1 ? { publicKey: rng.bytes(32), signature: rng.bytes(64) } : null,
    joinToken: flags & 2 ? { id: rng.bytes(8), signature: rng.bytes(64) } : null,
    legacyClaim: flags & 4 ? { tag: rng.bytes(32), mac: rng.bytes(32) } : null,
  };
}

/** A random packet of any type, valid as encoded (the relay may still reject it). */
function randomPacket(rng: Rng, targets: Targets): Packet {
  const address = () => rng.chance(0.1) ? rng.u32() : rng.pick([targets.self, ...targets.others]);
  const port = () => rng.chance(0.5) ? rng.pick([7, 80]) : rng.between(1, 65_535);
  const id = () => rng.chance(0.7) ? rng.between(0, 4) : rng.u32();
  const window = () => rng.between(16_384, 16 * 1024 * 1024);
  switch (rng.below(16)) {
    case 0:
      return {
        type: PacketType.Hello,
        version: rng.chance(0.8) ? PROTOCOL_VERSION : rng.below(65_536),
      };
    case 14:
      return { type: PacketType.Challenge, relayId: rng.bytes(32), nonce: rng.bytes(32) };
    case 15:
      return randomProof(rng);
    case 1:
      return { type: PacketType.VirtualIP, address: address() };
    case 2:
      return {
        type: PacketType.Error,
        reason: rng.below(REASONS) as Reason,
        message: "fuzz".repeat(rng.below(8)),
      };
    case 3:
      return { type: PacketType.Ping, nonce: rng.u32() };
    case 4:
      return { type: PacketType.Pong, nonce: rng.u32() };
    case 5:
      return {
        type: PacketType.SocketStatusRequest,
        requestId: id(),
        source: rng.chance(0.9) ? targets.self : address(),
        destination: address(),
        destinationPort: port(),
      };
    case 6:
      return { type: PacketType.SocketStatusResponse, requestId: id(), listening: rng.chance(0.5) };
    case 7:
      return {
        type: PacketType.SocketConnectionRequest,
        requestId: id(),
        connectionId: rng.chance(0.9) ? 0 : id(),
        source: rng.chance(0.9) ? targets.self : address(),
        sourcePort: port(),
        destination: address(),
        destinationPort: port(),
        window: window(),
      };
    case 8: {
      const accepted = rng.chance(0.6);
      return {
        type: PacketType.SocketConnectionResponse,
        requestId: id(),
        connectionId: accepted ? Math.max(1, id()) : 0,
        accepted,
        window: accepted ? window() : 0,
      };
    }
    case 9:
      return {
        type: PacketType.RequestFailed,
        requestId: id(),
        reason: rng.below(REASONS) as Reason,
      };
    case 10:
      return {
        type: PacketType.ArbitraryData,
        connectionId: id(),
        payload: rng.bytes(rng.chance(0.9) ? rng.between(1, 256) : rng.between(1, 65_535)),
      };
    case 11:
      return {
        type: PacketType.WindowUpdate,
        connectionId: id(),
        increment: rng.between(1, 16 * 1024 * 1024),
      };
    case 12:
      return { type: PacketType.SocketShutdown, connectionId: id() };
    default:
      return {
        type: PacketType.SocketClosed,
        connectionId: id(),
        reason: rng.below(REASONS) as Reason,
      };
  }
}

/** One mutation of an encoded frame: flipped bytes, a cut, a bad length or type, junk. */
function mutate(rng: Rng, frame: Uint8Array): Uint8Array {
  const out = frame.slice();
  const view = new DataView(out.buffer);
  switch (rng.below(7)) {
    case 0: { // flip a few bytes
      for (let i = rng.between(1, 4); i > 0; i--) out[rng.below(out.length)] = rng.below(256);
      return out;
    }
    case 1: // truncate
      return out.subarray(0, rng.below(out.length));
    case 2: { // another length
      const lengths = [
        0,
        1,
        view.getUint32(0) + rng.between(1, 5),
        Math.max(0, view.getUint32(0) - rng.between(1, 5)),
        MAX_FRAME_BODY_BYTES,
        MAX_FRAME_BODY_BYTES + 1,
        rng.u32(),
        0xffffffff,
      ];
      view.setUint32(0, rng.pick(lengths));
      return out;
    }
    case 3: { // another type
      const types = Object.values(PacketType) as number[];
      out[4] = rng.chance(0.5) ? rng.pick(types) : rng.below(256);
      return out;
    }
    case 4: // junk after the frame
      return concatBytes([out, rng.bytes(rng.between(1, 64))]);
    case 5: // the frame twice
      return concatBytes([out, out]);
    default: // a random byte range inside the frame
      return out.subarray(rng.below(out.length));
  }
}

/** What one fuzzed link saw. */
interface LinkReport {
  readonly mode: string;
  readonly packets: number;
  readonly error: string | null;
  readonly afterError: number;
  readonly ending: "eof" | "reset";
}

/** Runs one fuzz round on a fresh link and reports how the relay ended it. */
async function fuzzRound(port: number, rng: Rng, others: number[]): Promise<LinkReport> {
  const raw = await RawClient.open(port);
  try {
    const modes = [
      "bytes before Hello",
      "frames before Hello",
      "frames after Challenge",
      "frames after VirtualIP",
      "bytes after VirtualIP",
    ];
    const mode = rng.pick(modes);
    let self = rng.u32();
    if (mode.endsWith("after Challenge")) {
      // The relay waits for a Proof: the frames fuzz its handshake (random Proofs among them).
      await raw.greet();
    } else if (mode.endsWith("after VirtualIP")) {
      // Some with an identity from a secret (and its legacy claim), some keyed on the real IP.
      self = await raw.handshake(
        rng.chance(0.2) ? null : rng.chance(0.5) ? undefined : `fuzz-${rng.u32()}-${rng.u32()}-id`,
      );
    }
    const targets = { self, others };
    const parts: Uint8Array[] = [];
    if (mode.startsWith("bytes")) {
      parts.push(rng.bytes(rng.between(1, 2_048)));
    } else {
      // Some rounds are mostly valid, to get past the decoder into the relay's routing.
      const mutationRate = rng.pick([0, 0.05, 0.2, 0.7]);
      for (let frames = rng.between(1, 12); frames > 0; frames--) {
        const frame = encode(randomPacket(rng, targets));
        parts.push(rng.chance(mutationRate) ? mutate(rng, frame) : frame);
      }
    }
    const payload = concatBytes(parts);
    const halfClose = rng.chance(0.5);
    // Written in random pieces, so the relay's decoder sees frames split anywhere.
    try {
      for (let offset = 0, writes = 0; offset < payload.length && writes < 64; writes++) {
        const end = writes === 63 ? payload.length : offset + rng.between(1, payload.length);
        await raw.write(payload.subarray(offset, Math.min(end, payload.length)));
        offset = Math.min(end, payload.length);
      }
      if (halfClose) await raw.conn.closeWrite();
    } catch {
      // The relay already closed the link on an earlier piece: that is an answer too.
    }
    let packets = 0;
    let error: string | null = null;
    let afterError = 0;
    const deadline = performance.now() + LINK_DEADLINE_MS;
    for (; packets < MAX_PACKETS_PER_LINK; packets++) {
      const left = deadline - performance.now();
      const packet = await raw.next(Math.max(1, left), `the relay to end a fuzzed link (${mode})`);
      if (packet === null) break;
      if (error !== null) afterError++;
      else if (packet.type === PacketType.Error) error = reasonName(packet.reason);
    }
    assert.ok(packets < MAX_PACKETS_PER_LINK, `a fuzzed link got ${packets} packets`);
    if (raw.decodeError) throw raw.decodeError;
    return {
      mode: `${mode}${halfClose ? ", half-closed" : ""}`,
      packets,
      error,
      afterError,
      ending: raw.reset ? "reset" : "eof",
    };
  } finally {
    await raw.close();
  }
}

/** Streams pseudo-random bytes through the echo pair until `stop` resolves; returns both hashes. */
async function streamThroughPair(
  pair: EchoPair,
  rng: Rng,
  stop: Promise<void>,
): Promise<{ sent: string; received: string; bytes: number }> {
  let stopped = false;
  void stop.then(() => stopped = true);
  const conn: VirtualConn = pair.conn;
  const receiving = readAll(conn, 256 * 1024 * 1024);
  const chunks: Uint8Array[] = [];
  // At most 5,000 chunks of 8 KiB (40 MiB), paced so the relay's CPU goes mostly to the fuzz.
  for (let i = 0; i < 5_000 && !stopped; i++) {
    const chunk = rng.bytes(8 * 1024);
    chunks.push(chunk);
    await withTimeout(conn.write(chunk), STEP_MS, `the pair's write ${i}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await conn.closeWrite();
  const received = await withTimeout(receiving, STEP_MS * 2, "the pair's echo to end");
  const sent = concatBytes(chunks);
  return {
    sent: await sha256hex(sent),
    received: await sha256hex(received),
    bytes: sent.length,
  };
}

Deno.test("a relay fuzzed by 20 raw clients answers every link with packets or an Error then EOF, and a real pair loses no byte", async () => {
  const envSeed = Deno.env.get("ALPHANET_FUZZ_SEED");
  const seed = envSeed !== undefined
    ? Number(envSeed) >>> 0
    : crypto.getRandomValues(new Uint32Array(1))[0];
  console.log(`fuzz seed ${seed} (replay with ALPHANET_FUZZ_SEED=${seed})`);

  const dir = await Deno.makeTempDir({ prefix: "alphanet_fuzz_" });
  const server = await startServer([
    "--port",
    "0",
    "--db",
    `${dir}/alphanet.db`,
    "--log-level",
    "silent",
    "--hello-timeout",
    "0.5",
    "--keepalive",
    "0.2",
    "--peer-timeout",
    "1",
    // Every fuzz round joins with a new identity from 127.0.0.1.
    "--max-new-identities-per-ip",
    "0",
  ]);
  let pair: EchoPair | undefined;
  const drains = new Set<Promise<unknown>>();
  try {
    pair = await startEchoPair(server.port);
    await pair.assertEchoes("before the fuzz");
    // Fuzz frames may connect to the pair's owner on port 80: it reads and drops their bytes.
    const target = pair.owner.listen({ port: 80 });
    const accepting = (async () => {
      for await (const conn of target) {
        const drain = readAll(conn, 64 * 1024 * 1024).catch(() => null).finally(() => {
          conn.close();
          drains.delete(drain);
        });
        drains.add(drain);
      }
    })();
    const others = [addressOf(pair.owner), addressOf(pair.requester)];
    const rssBefore = await rssKiB(server.pid);

    const fuzzDone = Promise.withResolvers<void>();
    const streaming = streamThroughPair(pair, new Rng(seed ^ 0xa5a5a5a5), fuzzDone.promise);
    const startedAt = performance.now();
    const reports: LinkReport[] = [];
    const fuzzers = Array.from({ length: FUZZ_CLIENTS }, async (_, index) => {
      const rng = new Rng((seed + Math.imul(index + 1, 0x9e3779b9)) >>> 0);
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (performance.now() - startedAt > FUZZ_BUDGET_MS) break;
        reports.push(await fuzzRound(server.port, rng, others));
      }
    });
    const settled = await Promise.allSettled(fuzzers);
    fuzzDone.resolve();
    const failure = settled.find((result) => result.status === "rejected");
    if (failure) throw (failure as PromiseRejectedResult).reason;

    const { sent, received, bytes } = await streaming;
    assert.ok(bytes > 0, "the pair streamed nothing");
    assert.equal(received, sent, `the pair's ${bytes} bytes came back altered (seed ${seed})`);
    assert.deepEqual(
      await withTimeout(
        pair.requester.status({ hostname: pair.owner.virtualIp, port: 80 }),
        STEP_MS,
        "the pair's status request after the fuzz",
      ),
      { online: true, listening: true },
    );
    target.close();
    await accepting;
    await withTimeout(Promise.all([...drains]), STEP_MS, "the owner's fuzz connections to end");

    const summary = new Map<string, number>();
    for (const report of reports) {
      const key = `${report.error ?? "no Error"} → ${report.ending}`;
      summary.set(key, (summary.get(key) ?? 0) + 1);
      assert.equal(report.afterError, 0, `packets after an Error frame (seed ${seed})`);
    }
    console.log(
      `fuzz: ${reports.length} links in ${Math.round(performance.now() - startedAt)} ms, ` +
        `pair streamed ${bytes} bytes; outcomes ${JSON.stringify(Object.fromEntries(summary))}`,
    );
    assert.ok(reports.length >= FUZZ_CLIENTS, `only ${reports.length} fuzzed links`);

    await assertRelayServes(server.port);
    const rssAfter = await rssKiB(server.pid);
    assert.ok(
      rssAfter - rssBefore < MAX_RSS_GROWTH_KIB,
      `relay RSS grew from ${rssBefore} KiB to ${rssAfter} KiB over the fuzz`,
    );
  } finally {
    await pair?.close();
    await Promise.allSettled([...drains]);
    assert.equal(await server.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});
