/**
 * `deno task bench`: AlphaNET against a direct TCP path and a plain two-hop
 * proxy, all measured in the same run, on 127.0.0.1 only. Every scenario is
 * sender process -> middle process (relay or proxy) -> receiver process.
 * Prints one markdown table and writes bench/out/results.json.
 *
 * Flags: --reps N (throughput and join repetitions, median kept; default 3),
 * --rows LIST (only these rows, e.g. `9` or `1,3,8` or `12,13`; default all),
 * --profile (one extra AlphaNET run of row 1 and one of row 3, among the rows asked for, with
 * sender, relay and receiver each under --cpu-prof; not in the figures),
 * --window BYTES (AlphaNET receive window, for diagnosis; the rows' targets assume the default).
 * Rows 14-17 run a cluster (two relays sharing a private PostgreSQL and nats-server, see
 * cluster.ts) beside the same-relay rows; --profile then also profiles the cross-relay runs.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  cpuSeconds,
  killAll,
  Proc,
  relayArgs,
  rssKiB,
  sleep,
  terminateAll,
  TLS_CA_FILE,
  TLS_RELAY_FLAGS,
} from "./_proc.ts";
import { TUNNEL_PATHS, tunnelBench } from "./tunnels.ts";
import { summarizeProfile } from "./_profile.ts";
import { type Engines, missingEngines, startEngines } from "./_cluster_engines.ts";
import { startBenchCluster, startBenchRelay } from "./cluster.ts";

const here = (file: string) => new URL(file, import.meta.url).pathname;
const PEER = here("./peer.ts");
const PROXY = here("./proxy.ts");
const OUT = here("./out/");

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const RESULT_MS = 90_000;
/** Exit grace for a profiled process: it writes its .cpuprofile on the way out. */
const PROFILED_GRACE_MS = 30_000;

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    reps: { type: "string", default: "3" },
    profile: { type: "boolean" },
    window: { type: "string" },
    rows: { type: "string" },
  },
});
const REPS = Math.max(1, Number(flags.reps));
/**
 * Generous seconds per repetition of each row on 2 busy vCPUs (rows that do
 * not repeat count as if they did): the watchdog's deadline is their sum for
 * the rows asked for, times `--reps`, plus two minutes (and more with `--profile`).
 */
const ROW_SECONDS: Readonly<Record<number, number>> = {
  1: 40,
  2: 20,
  3: 20,
  4: 15,
  5: 40,
  6: 30,
  7: 45,
  8: 10,
  9: 25,
  10: 20,
  11: 15,
  12: 35,
  13: 75,
  14: 30,
  15: 30,
  16: 25,
  17: 60,
};
/** The rows to run; every row without `--rows`. */
const ROWS: ReadonlySet<number> = new Set(
  (flags.rows ?? Object.keys(ROW_SECONDS).join(",")).split(",").map((row) => {
    const id = Number(row.trim());
    if (!(id in ROW_SECONDS)) throw new Error(`bad --rows entry "${row}"`);
    return id;
  }),
);
/** Whether any of the rows `ids` is to run. */
const want = (...ids: number[]) => ids.some((id) => ROWS.has(id));
/** Profiled runs (`--profile`) wait out each process's exit grace: a few minutes more. */
const PROFILE_SECONDS = 180;
/** The cluster rows: 14-16 need PostgreSQL and nats-server, 17 PostgreSQL only. */
const CLUSTER_ROWS = [14, 15, 16, 17] as const;
const MESH_ROWS = [14, 15, 16] as const;
/** Starting the engines once (initdb, postmaster, nats-server) on 2 busy vCPUs. */
const ENGINE_SECONDS = 60;
const WATCHDOG_MS = (120 + (flags.profile ? PROFILE_SECONDS : 0) +
  (want(...CLUSTER_ROWS) ? ENGINE_SECONDS : 0) +
  REPS * [...ROWS].reduce((sum, id) => sum + ROW_SECONDS[id], 0)) * 1000;
/** Rows 1 and 2's target: AlphaNET throughput at least this fraction of the proxy's. */
const THROUGHPUT_TARGET = 0.85;
const THROUGHPUT_TARGET_TEXT = `≥ ${THROUGHPUT_TARGET} × proxy`;
/** Row 3's targets: AlphaNET round trip p50 and p99 at most these multiples of the proxy's. */
const ROUND_TRIP_P50_TARGET = 1.15;
const ROUND_TRIP_P99_TARGET = 1.4;
/** Row 7's target: AlphaNET's tunnel at least as fast as `ssh -L`. */
const TUNNEL_TARGET = 1;
/** Row 7: length of each iperf3 run, in seconds (after one omitted second). */
const TUNNEL_SECONDS = 5;
/** Row 12: connections, 64 B round trips per connection (after a warm-up) and its target. */
const PINGS = { conns: 64, count: 4000, warmup: 200, size: 64 } as const;
const PINGS_TARGET = 1;
/**
 * Row 13: 500 pairs of clients (1,000 in all), one message of `size` bytes
 * every `intervalMs` from each: the sending side's ping and the echoing
 * side's reply.
 */
const GAME = { pairs: 500, size: 100, intervalMs: 100, warmupSeconds: 2, seconds: 10 } as const;
/** Row 10's target: WebSocket sender throughput as a fraction of the TCP client's (report only). */
const WS_THROUGHPUT_TARGET = 0.5;
const WS_THROUGHPUT_TARGET_TEXT = `≥ ${WS_THROUGHPUT_TARGET} × TCP client (report only)`;
/** Row 11's target: WebSocket round trip p50 at most this many times the TCP client's. */
const WS_ROUND_TRIP_TARGET = 1.5;
const WS_ROUND_TRIP_TARGET_TEXT = `p50 ≤ ${WS_ROUND_TRIP_TARGET} × TCP client (report only)`;
/** Clients per join-rate run (row 9). */
const JOINS = 5000;
const WINDOW_KiB = flags.window ? Number(flags.window) / 1024 : 256;

/** Bytes of a WebSocket throughput run (row 10), and of the TCP client runs it is compared with. */
const WS_BYTES = GiB;

/**
 * `alphanet-tls`: the same relay and clients, the links to the relay over TLS.
 * `alphanet-ws`: the relay also serves WebSocket (`--websocket-port 0`); the
 * sending or pinging client joins over it (`url: "ws://…"`), the receiving or
 * echoing one over TCP, so only the measured side's link changes carrier.
 * `alphanet-cross`: two relays of a cluster (cluster.ts); the receiving or
 * echoing client joins relay 2, the sending or pinging one relay 1, so every
 * frame crosses the relay link.
 */
type Mode = "direct" | "proxy" | "alphanet" | "alphanet-tls" | "alphanet-ws" | "alphanet-cross";

/** The engines of the cluster rows, started on first use and stopped at the end. */
let engines: Promise<Engines> | null = null;
function clusterEngines(): Promise<Engines> {
  return engines ??= startEngines(want(...MESH_ROWS) && missingEngines(true) === null);
}
/** Stops the engines if they were started (and removes their directory); never rejects. */
async function stopEngines(): Promise<void> {
  const started = engines;
  engines = null;
  await started?.then((e) => e.stop()).catch(() => {});
}

function peer(
  kind: "tcp" | "alphanet",
  role: string,
  options: Record<string, unknown>,
  denoFlags: string[] = [],
): Proc {
  if (kind === "alphanet" && flags.window) options = { ...options, window: Number(flags.window) };
  return new Proc(`${kind} ${role}`, [
    "run",
    "-A",
    ...denoFlags,
    PEER,
    kind,
    role,
    JSON.stringify(options),
  ]);
}

/**
 * Deno flags that profile the process `who` into `<dir>/<who>/`, or none
 * without `dir`. One directory per process tells the three profiles apart.
 */
function profFlags(dir: string | undefined, who: string): string[] {
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}/${who}`] : [];
}

/** The middle process: the real relay or the plain proxy (or the relays of a cluster). */
interface Middle {
  proc: Proc;
  port: number;
  /** The other relays of a cluster (`alphanet-cross`: relay 2); `proc` is relay 1. */
  others?: Proc[];
  /** The relay's WebSocket port, when it was started with `--websocket-port`. */
  wsPort?: number;
}

async function startRelay(extra: string[] = [], relayFlags: string[] = []): Promise<Middle> {
  const proc = new Proc("relay", relayArgs(extra, relayFlags));
  const line = await proc.line(30_000);
  const match = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line);
  if (!match) throw new Error(`relay: unexpected first line ${JSON.stringify(line)}`);
  if (!relayFlags.includes("--websocket-port")) return { proc, port: Number(match[1]) };
  // The relay prints its WebSocket address on the line after "listening on".
  const wsLine = await proc.line(30_000);
  const ws = /^websocket on 127\.0\.0\.1:(\d+)$/.exec(wsLine);
  if (!ws) throw new Error(`relay: unexpected second line ${JSON.stringify(wsLine)}`);
  return { proc, port: Number(match[1]), wsPort: Number(ws[1]) };
}

async function startProxy(targetPort: number): Promise<Middle> {
  const proc = new Proc("proxy", ["run", "-A", PROXY, String(targetPort)]);
  return { proc, port: Number(await proc.expect("ready", 30_000)) };
}

/**
 * Starts receiver and middle for `mode`; returns the receiver, the middle (if
 * any), and the options a sender needs to reach the receiver.
 */
async function topology(
  mode: Mode,
  role: string,
  options: Record<string, unknown>,
  prof?: string,
): Promise<{ receiver: Proc; middle: Middle | null; target: Record<string, unknown> }> {
  const relayDenoFlags = profFlags(prof, "relay");
  const receiverFlags = profFlags(prof, "receiver");
  if (mode === "alphanet-cross") {
    const [relay1, relay2] = await startBenchCluster(
      await clusterEngines(),
      2,
      (i) => profFlags(prof, `relay${i + 1}`),
    );
    const middle = { proc: relay1.proc, port: relay1.port, others: [relay2.proc] };
    const receiver = peer("alphanet", role, { ...options, port: relay2.port }, receiverFlags);
    const vip = await receiver.expect("ready", 30_000);
    return { receiver, middle, target: { port: relay1.port, vip } };
  }
  if (mode === "alphanet-ws") {
    const middle = await startRelay(relayDenoFlags, ["--websocket-port", "0"]);
    const receiver = peer("alphanet", role, { ...options, port: middle.port }, receiverFlags);
    const vip = await receiver.expect("ready", 30_000);
    return { receiver, middle, target: { url: `ws://127.0.0.1:${middle.wsPort}/`, vip } };
  }
  if (mode === "alphanet" || mode === "alphanet-tls") {
    const tls = mode === "alphanet-tls";
    const middle = await startRelay(relayDenoFlags, tls ? [...TLS_RELAY_FLAGS] : []);
    const link = tls ? { port: middle.port, tlsCa: TLS_CA_FILE } : { port: middle.port };
    const receiver = peer("alphanet", role, { ...options, ...link }, receiverFlags);
    const vip = await receiver.expect("ready", 30_000);
    return { receiver, middle, target: { ...link, vip } };
  }
  const receiver = peer("tcp", role, options, receiverFlags);
  const port = Number(await receiver.expect("ready", 30_000));
  const middle = mode === "proxy" ? await startProxy(port) : null;
  return { receiver, middle, target: { port: middle?.port ?? port } };
}

/**
 * Stops the peers (stdin closed: they `Deno.exit(0)`) and SIGTERMs the middle
 * (the relay's handler closes it and exits); a profiled run waits longer
 * before any signal, so no process is killed before its profile is written.
 */
async function stopRun(
  middle: Middle | null,
  prof: string | undefined,
  ...peers: (Proc | undefined)[]
): Promise<void> {
  const grace = prof ? PROFILED_GRACE_MS : undefined;
  await Promise.all(peers.map((proc) => proc?.stop(grace)));
  await Promise.all(middleProcs(middle).map((proc) => proc.terminate(grace)));
}

/** Every process of the middle: the relay or proxy, and a cluster's other relays. */
const middleProcs = (middle: Middle | null): Proc[] =>
  middle ? [middle.proc, ...(middle.others ?? [])] : [];
/** CPU seconds so far of each process of the middle. */
const middleCpu = (middle: Middle | null): number[] =>
  middleProcs(middle).map((proc) => cpuSeconds(proc.pid));

/** What the cluster rows lack: rows 14-16 (mesh) and row 17 (registry); null when nothing. */
const clusterMissing = { mesh: missingEngines(true), registry: missingEngines(false) };

const kind = (mode: Mode) => mode === "direct" || mode === "proxy" ? "tcp" : "alphanet";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Per process (sender, middle, receiver), the median of the runs' CPU figures; null if none has one. */
function medianCpu(runs: readonly { cpu: readonly (number | null)[] }[]): (number | null)[] {
  return [0, 1, 2].map((i) => {
    const values = runs.map((r) => r.cpu[i]).filter((x) => x !== null);
    return values.length ? median(values) : null;
  });
}

/** A throughput run: GB/s, and CPU seconds per GB of sender, middle and receiver. */
interface Throughput {
  /** Null when the receiver's connections ended with bytes missing. */
  gbps: number | null;
  /** Why bytes were missing, if they were. */
  failure?: string;
  cpu: [number, number | null, number];
  /** A cluster's relays apart (relay 1, relay 2), CPU seconds per GB; empty otherwise. */
  perRelay: number[];
}

async function throughput(
  mode: Mode,
  conns: number,
  bytes: number,
  prof?: string,
): Promise<Throughput> {
  const { receiver, middle, target } = await topology(mode, "sink", { bytes, conns }, prof);
  // linger: the sender closes its connections when done but keeps its link until stopped.
  const sender = peer(
    kind(mode),
    "source",
    { ...target, conns, bytes, linger: true },
    profFlags(prof, "sender"),
  );
  await sender.expect("ready", 30_000);
  const cpu0 = middleCpu(middle);
  await sender.send("go");
  const got = await receiver.result<
    { bytes: number; lastByteAt: number; cpu: number; short?: number; error?: string }
  >(RESULT_MS);
  const used = middleCpu(middle).map((x, i) => x - cpu0[i]);
  const sent = await sender.result<{ firstByteAt: number; error: string | null; cpu: number }>(
    RESULT_MS,
  );
  if (sent.error) throw new Error(`sender failed: ${sent.error}`);
  await stopRun(middle, prof, sender, receiver);
  if (got.short) {
    return {
      gbps: null,
      failure: `receiver short by ${got.short} B (${got.error})`,
      cpu: [0, null, 0],
      perRelay: [],
    };
  }
  const seconds = (got.lastByteAt - sent.firstByteAt) / 1000;
  const gb = got.bytes / 1e9;
  const middleTotal = used.reduce((sum, x) => sum + x, 0);
  return {
    gbps: gb / seconds,
    cpu: [sent.cpu / gb, middle ? middleTotal / gb : null, got.cpu / gb],
    perRelay: used.length > 1 ? used.map((x) => x / gb) : [],
  };
}

/** Runs every mode `REPS` times, interleaved; keeps the median of each. */
interface Summary {
  /** Median of the complete runs (0 if none completed). */
  gbps: number;
  /** Runs that lost bytes, with why. */
  failures: string[];
  all: (number | "lost")[];
  /** Median CPU seconds per GB of sender, middle, receiver. */
  cpu: (number | null)[];
  /** A cluster's relays apart: median CPU seconds per GB of relay 1, relay 2. */
  perRelay: number[];
}

async function throughputRow(
  modes: Mode[],
  conns: number,
  bytes: number,
): Promise<
  {
    direct: Summary | null;
    proxy: Summary;
    alphanet: Summary;
    tls: Summary | null;
    ws: Summary | null;
    cross: Summary | null;
  }
> {
  const runs = new Map<Mode, Throughput[]>(modes.map((m) => [m, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const mode of modes) runs.get(mode)!.push(await throughput(mode, conns, bytes));
  }
  const pick = (mode: Mode): Summary | null => {
    const list = runs.get(mode);
    if (!list) return null;
    const complete = list.filter((r) => r.gbps !== null);
    const cpu = medianCpu(complete).map((x) => x === null ? null : round(x));
    return {
      gbps: complete.length ? median(complete.map((r) => r.gbps!)) : 0,
      failures: list.flatMap((r) => r.failure ? [r.failure] : []),
      all: list.map((r) => r.gbps === null ? "lost" : round(r.gbps)),
      cpu,
      perRelay:
        complete[0]?.perRelay.map((_, i) => round(median(complete.map((r) => r.perRelay[i])))) ??
          [],
    };
  };
  return {
    direct: pick("direct"),
    // Row 10 runs no proxy; it reads only alphanet and ws.
    proxy: pick("proxy") ?? { gbps: 0, failures: [], all: [], cpu: [], perRelay: [] },
    alphanet: pick("alphanet")!,
    tls: pick("alphanet-tls"),
    ws: pick("alphanet-ws"),
    cross: pick("alphanet-cross"),
  };
}

async function pingPong(mode: Mode, prof?: string): Promise<{ p50: number; p99: number }> {
  const { receiver, middle, target } = await topology(mode, "echo", {}, prof);
  const sender = peer(
    kind(mode),
    "ping",
    { ...target, count: 10_000, warmup: 500 },
    profFlags(prof, "sender"),
  );
  await sender.expect("ready", 30_000);
  await sender.send("go");
  const result = await sender.result<{ p50: number; p99: number }>(RESULT_MS);
  await stopRun(middle, prof, sender, receiver);
  return result;
}

async function connectRate(mode: Mode): Promise<{ perSecond: number; errors: number }> {
  const { receiver, middle, target } = await topology(mode, "echo", {});
  const sender = peer(kind(mode), "connrate", { ...target, count: 5000, inflight: 50 });
  await sender.expect("ready", 30_000);
  await sender.send("go");
  const result = await sender.result<{ perSecond: number; errors: number }>(RESULT_MS);
  await stopRun(middle, undefined, sender, receiver);
  return result;
}

/** CPU seconds so far of each of `procs` (null stays null), read when `sender` prints "mark". */
async function cpuAtMark(
  sender: Proc,
  procs: (Proc | null)[],
  timeoutMs: number,
): Promise<{ at: number; cpu: (number | null)[] }> {
  await sender.expect("mark", timeoutMs);
  return { at: performance.now(), cpu: procs.map((proc) => proc ? cpuSeconds(proc.pid) : null) };
}

/** Row 12's run: round trips per second over all connections, and CPU per round trip. */
interface ManyPings {
  perSecond: number;
  /** Round trip p50 / p99 in µs, over all connections. */
  p50: number;
  p99: number;
  /** CPU µs per round trip of sender, middle (null when none), receiver. */
  cpu: (number | null)[];
}

/**
 * Row 12: `PINGS.conns` connections between the same two processes (TCP
 * connections, or virtual connections between two AlphaNET clients), each
 * doing sequential round trips of `PINGS.size` bytes, all in parallel.
 */
async function manyPings(mode: Mode): Promise<ManyPings> {
  const { receiver, middle, target } = await topology(mode, "echo", { buf: 1024 });
  const sender = peer(kind(mode), "pings", { ...target, ...PINGS });
  await sender.expect("ready", 30_000);
  await sender.send("go");
  const procs = [sender, middle?.proc ?? null, receiver];
  const before = await cpuAtMark(sender, procs, RESULT_MS);
  const after = await cpuAtMark(sender, procs, RESULT_MS);
  const result = await sender.result<
    { roundTrips: number; perSecond: number; p50: number; p99: number }
  >(RESULT_MS);
  await stopRun(middle, undefined, sender, receiver);
  const cpu = after.cpu.map((x, i) =>
    x === null ? null : round((x - before.cpu[i]!) / result.roundTrips * 1e6, 1)
  );
  return { perSecond: result.perSecond, p50: result.p50, p99: result.p99, cpu };
}

/** Row 13's run: round-trip latency, and CPU in % of one core over the timed part. */
interface GameRun {
  p50: number;
  p99: number;
  max: number;
  sent: number;
  due: number;
  skipped: number;
  error: string | null;
  /** % of one core of sender, middle (null when none), receiver. */
  cpu: (number | null)[];
}

/**
 * Row 13: `GAME.pairs` pairs. AlphaNET: one process holds the sending
 * clients, another the echoing clients, each its own identity and link to
 * the relay; sending client i has one connection to echoing client i. TCP:
 * one process holds `GAME.pairs` connections to an echo server in the other,
 * directly or through the proxy. CPU is read over the timed part only.
 */
async function gameRun(mode: "direct" | "proxy" | "alphanet"): Promise<GameRun> {
  let receiver: Proc;
  let middle: Middle | null;
  let target: Record<string, unknown>;
  if (mode === "alphanet") {
    middle = await startRelay();
    receiver = peer("alphanet", "echoes", { port: middle.port, clients: GAME.pairs, buf: 1024 });
    const vips: string[] = JSON.parse(await receiver.expect("ready", 60_000));
    target = { port: middle.port, vips };
  } else {
    ({ receiver, middle, target } = await topology(mode, "echo", { buf: 1024 }));
  }
  const { pairs, ...traffic } = GAME;
  const sender = peer(kind(mode), "game", { ...target, clients: pairs, ...traffic });
  await sender.expect("ready", 60_000);
  await sender.send("go");
  const procs = [sender, middle?.proc ?? null, receiver];
  const before = await cpuAtMark(sender, procs, RESULT_MS);
  const after = await cpuAtMark(sender, procs, RESULT_MS);
  const result = await sender.result<Omit<GameRun, "cpu">>(RESULT_MS);
  await stopRun(middle, undefined, sender, receiver);
  const seconds = (after.at - before.at) / 1000;
  const cpu = after.cpu.map((x, i) =>
    x === null ? null : round((x - before.cpu[i]!) / seconds * 100, 1)
  );
  return { ...result, cpu };
}

/**
 * Joins per second (row 9): `JOINS` clients, 200 in flight, each closed once
 * joined, against a fresh relay; signed clients join twice (new registry
 * rows, then known keys). `direct` is TCP connect + close to a plain Deno
 * server.
 */
async function joinRate(
  mode: "direct" | "signed" | "anonymous",
): Promise<{ perSecond: number[]; errors: number; firstError: string | null }> {
  let middle: Middle | null = null;
  let receiver: Proc | undefined;
  let port: number;
  if (mode === "direct") {
    receiver = peer("tcp", "echo", {});
    port = Number(await receiver.expect("ready", 30_000));
  } else {
    middle = await startRelay();
    port = middle.port;
  }
  const options = { port, count: JOINS, inflight: 200 };
  const joiner = mode === "direct" ? peer("tcp", "joins", options) : peer("alphanet", "joins", {
    ...options,
    identities: mode,
    rounds: mode === "signed" ? 2 : 1,
  });
  await joiner.expect("ready", 60_000);
  await joiner.send("go");
  const result = await joiner.result<
    { perSecond: number[]; errors: number; firstError: string | null }
  >(RESULT_MS);
  await stopRun(middle, undefined, joiner, receiver);
  return result;
}

/**
 * Row 17: `JOINS` signed clients, 200 in flight, join twice (new registry
 * rows, then known keys) against a fresh lone relay whose registry is a new
 * SQLite file (`--db`) or a new database of the private PostgreSQL
 * (`--registry`).
 */
async function registryJoinRate(
  engine: "sqlite" | "postgres",
): Promise<{ perSecond: number[]; errors: number; firstError: string | null }> {
  const dir = engine === "sqlite" ? await Deno.makeTempDir({ prefix: "alphanet_bench_db_" }) : null;
  try {
    const registry = dir !== null
      ? ["--db", `${dir}/registry.db`]
      : ["--registry", await (await clusterEngines()).database()];
    const relay = await startBenchRelay(registry, null, [], `relay (${engine})`);
    const joiner = peer("alphanet", "joins", {
      port: relay.port,
      count: JOINS,
      inflight: 200,
      identities: "signed",
      rounds: 2,
    });
    await joiner.expect("ready", 60_000);
    await joiner.send("go");
    const result = await joiner.result<
      { perSecond: number[]; errors: number; firstError: string | null }
    >(RESULT_MS);
    await stopRun({ proc: relay.proc, port: relay.port }, undefined, joiner);
    return result;
  } finally {
    if (dir !== null) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** RSS growth per idle link of the measured process, in KiB. */
async function idleCost(mode: Mode, count: number): Promise<{ perLink: number; seconds: number }> {
  const { receiver, middle, target } = await topology(mode, "sink", { buf: 1024 });
  const measured = middle?.proc ?? receiver;
  await sleep(1000);
  const before = rssKiB(measured.pid);
  const holder = mode === "alphanet"
    ? peer("alphanet", "hold", { port: target.port, count, inflight: 200 })
    : peer("tcp", "hold", { port: target.port, count, inflight: 200 });
  const held = await holder.result<{ count: number; errors: number; seconds: number }>(RESULT_MS);
  if (held.errors > 0) throw new Error(`${mode} hold: ${held.errors} connects failed`);
  await sleep(2000); // Fixed settle time before the measurement.
  const after = rssKiB(measured.pid);
  await stopRun(middle, undefined, holder, receiver);
  return { perLink: (after - before) / count, seconds: held.seconds };
}

/** Slow consumer: max RSS growth of the middle process while the receiver reads 1 MiB/s for 5 s. */
async function slowConsumer(
  mode: Mode,
): Promise<{ growthKiB: number; lateGrowthKiB: number; readMiB: number; series: number[] }> {
  const { receiver, middle, target } = await topology(mode, "sink", { rate: MiB, seconds: 5 });
  const sender = peer(kind(mode), "source", { ...target, bytes: 256 * MiB, seconds: 10 });
  await sender.expect("ready", 30_000);
  const pid = middle!.proc.pid;
  const start = rssKiB(pid);
  const series: number[] = [];
  await sender.send("go");
  let done = false;
  const result = receiver.result<{ bytes: number }>(20_000).finally(() => done = true);
  for (let i = 0; i < 200 && !done; i++) {
    series.push(rssKiB(pid) - start);
    await sleep(100);
  }
  const got = await result;
  await sender.result(20_000);
  await stopRun(middle, undefined, sender, receiver);
  // Growth after the first second, over the RSS at 1 s: the warm-up (JIT, heap) left out.
  const late = series.slice(10);
  return {
    growthKiB: Math.max(0, ...series),
    lateGrowthKiB: late.length ? Math.max(...late) - late[0] : 0,
    readMiB: got.bytes / MiB,
    series,
  };
}

/** The top self-time functions of each process's profile under `dir` (`who`: their directories). */
function profileTables(dir: string, whos = ["sender", "relay", "receiver"]): string[] {
  const out: string[] = [];
  for (const who of whos) {
    const files = (() => {
      try {
        return [...Deno.readDirSync(`${dir}/${who}`)].filter((e) => e.name.endsWith(".cpuprofile"));
      } catch {
        return [];
      }
    })();
    if (files.length !== 1) {
      out.push(`${who}: ${files.length} profiles written (expected 1)`, "");
      continue;
    }
    const path = `${dir}/${who}/${files[0].name}`;
    const p = summarizeProfile(path);
    out.push(
      `${who} (${path}): ${p.totalMs} ms sampled; idle ${p.idle}%, (program) ${p.program}%, ` +
        `GC ${p.gc}%; top self time (% of all / % of busy = non-idle):`,
      "",
      "| function | self ms | % all | % busy |",
      "| --- | ---: | ---: | ---: |",
      ...p.top.map((f) => `| ${f.name} | ${f.ms} | ${f.percent} | ${f.busyPercent} |`),
      "",
    );
  }
  return out;
}

/**
 * One extra AlphaNET run of row 1 and of row 3 (those among the rows asked
 * for) with sender, relay and receiver each under --cpu-prof; the figures
 * of these runs are not in the table (the profiler slows every process).
 */
async function profileRuns(): Promise<string[]> {
  const base = `${OUT}prof-${Date.now()}`;
  const out: string[] = [];
  if (want(1)) {
    const dir = `${base}/row1`;
    const run = await throughput("alphanet", 1, GiB, dir);
    out.push(
      `### Row 1 profile: 1 connection, 1 GiB (${
        run.gbps === null ? run.failure : `${round(run.gbps)} GB/s`
      } under the profiler)`,
      "",
      ...profileTables(dir),
    );
  }
  if (want(3)) {
    const dir = `${base}/row3`;
    const trip = await pingPong("alphanet", dir);
    out.push(
      `### Row 3 profile: 32 B round trip (p50 / p99 ${trip.p50} / ${trip.p99} µs under the profiler)`,
      "",
      ...profileTables(dir),
    );
  }
  const cross = ["sender", "relay1", "relay2", "receiver"];
  if (want(14) && clusterMissing.mesh === null) {
    const dir = `${base}/row14`;
    const run = await throughput("alphanet-cross", 1, GiB, dir);
    out.push(
      `### Row 14 profile: cross-relay, 1 connection, 1 GiB (${
        run.gbps === null ? run.failure : `${round(run.gbps)} GB/s`
      } under the profiler; relay1 holds the sender, relay2 the receiver)`,
      "",
      ...profileTables(dir, cross),
    );
  }
  if (want(15) && clusterMissing.mesh === null) {
    const dir = `${base}/row15`;
    const trip = await pingPong("alphanet-cross", dir);
    out.push(
      `### Row 15 profile: cross-relay 32 B round trip (p50 / p99 ${trip.p50} / ${trip.p99} µs ` +
        "under the profiler)",
      "",
      ...profileTables(dir, cross),
    );
  }
  return out.length ? out : [
    "(--profile covers rows 1, 3, 14 and 15: none was asked for, or the cluster rows lack engines)",
  ];
}

async function text(command: string, args: string[] = []): Promise<string> {
  const { stdout } = await new Deno.Command(command, { args, stdout: "piped" }).output();
  return new TextDecoder().decode(stdout).trim();
}

interface Row {
  /** The row's number; the one line of cluster rows skipped for want of engines names them all. */
  id: number | string;
  scenario: string;
  unit: string;
  alphanet: number;
  direct: number | null;
  proxy: number | null;
  ratio: number | null;
  target: string;
  pass: boolean;
  /** Not measured (a tool missing): PASS/MISS shows "skipped". */
  skipped?: boolean;
  notes: string;
  shown?: { alphanet?: string; direct?: string; proxy?: string };
  series?: Record<string, number[]>;
  /** The row's other figures (CPU ratios, per-path medians), for results.json. */
  figures?: Record<string, unknown>;
}

async function main(): Promise<void> {
  const started = performance.now();
  const rows: Row[] = [];
  const log = (message: string) =>
    console.error(`[bench ${Math.round((performance.now() - started) / 1000)}s] ${message}`);
  const failures = (t: { alphanet: Summary; proxy: Summary }) =>
    t.alphanet.failures.length + t.proxy.failures.length === 0
      ? ""
      : `**DATA LOSS in ${t.alphanet.failures.length} AlphaNET / ${t.proxy.failures.length} proxy run(s): ${
        [...t.alphanet.failures, ...t.proxy.failures].join("; ")
      }**; `;
  const cpuNote = (label: string, t: Summary | null) =>
    t ? `${label} ${t.cpu.map((x) => x ?? "–").join(" / ")}` : "";
  const ratio = (a: number | null | undefined, b: number | null | undefined) =>
    a == null || !b ? null : round(a / b);
  /** The issue's CPU goals: relay ÷ proxy (middle), AlphaNET ÷ direct (sender, receiver). */
  const cpuRatios = (t: { alphanet: Summary; proxy: Summary; direct: Summary | null }) => ({
    relayOverProxy: ratio(t.alphanet.cpu[1], t.proxy.cpu[1]),
    senderOverDirect: ratio(t.alphanet.cpu[0], t.direct?.cpu[0]),
    receiverOverDirect: ratio(t.alphanet.cpu[2], t.direct?.cpu[2]),
  });
  const cpuOf = (t: Awaited<ReturnType<typeof throughputRow>>) => ({
    alphanet: t.alphanet.cpu,
    proxy: t.proxy.cpu,
    direct: t.direct?.cpu ?? null,
  });
  const cpuRatioNote = (r: ReturnType<typeof cpuRatios>) =>
    `CPU per GB ratios: relay ÷ proxy ${r.relayOverProxy ?? "–"} ×, AlphaNET sender ÷ direct ` +
    `sender ${r.senderOverDirect ?? "–"} ×, AlphaNET receiver ÷ direct receiver ` +
    `${r.receiverOverDirect ?? "–"} ×`;
  const throughputNotes = (t: Awaited<ReturnType<typeof throughputRow>>) =>
    `${failures(t)}median of ${REPS} (AlphaNET ${t.alphanet.all.join(", ")}; proxy ${
      t.proxy.all.join(", ")
    }; direct ${t.direct?.all.join(", ")}); ${cpuRatioNote(cpuRatios(t))}; ` +
    `CPU core-s/GB sender / middle / receiver: ${
      [cpuNote("AlphaNET", t.alphanet), cpuNote("proxy", t.proxy), cpuNote("direct", t.direct)]
        .filter(Boolean).join("; ")
    }`;

  // Row 8 reads the TLS runs of rows 1 and 3: they run for it even when only row 8 is asked for.
  let t1: Awaited<ReturnType<typeof throughputRow>> | null = null;
  /** Whether cluster row `id` is asked for and its engines are installed. */
  const clusterRow = (id: number) =>
    want(id) && (id === 17 ? clusterMissing.registry : clusterMissing.mesh) === null;
  const skippedCluster = CLUSTER_ROWS.filter((id) => want(id) && !clusterRow(id));
  if (skippedCluster.length) {
    rows.push({
      id: skippedCluster.join(", "),
      scenario: "Cluster rows (cross-relay; joins on PostgreSQL)",
      unit: "—",
      alphanet: 0,
      direct: null,
      proxy: null,
      ratio: null,
      target: "report only",
      pass: true,
      skipped: true,
      notes: `not run: ${(skippedCluster.includes(17)
        ? clusterMissing.registry
        : clusterMissing.mesh)!}`,
      shown: { alphanet: "—" },
    });
  }
  if (want(1, 8) || clusterRow(14)) {
    log(`1${clusterRow(14) ? ", 14" : ""}: throughput, 1 connection`);
    // TLS runs interleaved with the others, so row 8 compares figures of the same moments;
    // so are the cross-relay runs of row 14.
    t1 = await throughputRow(
      [
        "direct",
        "proxy",
        "alphanet",
        ...(want(1, 8) ? ["alphanet-tls" as const] : []),
        ...(clusterRow(14) ? ["alphanet-cross" as const] : []),
      ],
      1,
      GiB,
    );
  }
  if (t1?.cross && clusterRow(14)) {
    const cross = t1.cross;
    const same = t1.alphanet;
    const lost = [...cross.failures, ...same.failures];
    rows.push({
      id: 14,
      scenario: "Cluster: throughput 1 conn 1 GiB across two relays, sender on relay 1, " +
        "receiver on relay 2 (ratio: × same relay, row 1)",
      unit: "GB/s",
      alphanet: cross.gbps,
      direct: t1.direct!.gbps,
      proxy: t1.proxy.gbps,
      ratio: cross.gbps / same.gbps,
      target: "report only",
      pass: lost.length === 0,
      notes: `${lost.length ? `**DATA LOSS: ${lost.join("; ")}**; ` : ""}same relay ` +
        `${round(same.gbps)} GB/s; cross-relay × proxy ${round(cross.gbps / t1.proxy.gbps)}; ` +
        `median of ${REPS}, interleaved with row 1 (cross-relay ${cross.all.join(", ")}; same ` +
        `relay ${same.all.join(", ")}); CPU core-s/GB sender / both relays / receiver: ` +
        `${cpuNote("cross-relay", cross)} (relay 1 ${cross.perRelay[0] ?? "–"}, relay 2 ` +
        `${cross.perRelay[1] ?? "–"}); ${cpuNote("same relay", same)}; relays ÷ same relay ` +
        `${ratio(cross.cpu[1], same.cpu[1]) ?? "–"} ×; cluster: PostgreSQL registry, ` +
        "nats-server, one relay link (cluster.ts)",
      shown: { alphanet: `${round(cross.gbps)} (same relay ${round(same.gbps)})` },
      figures: {
        cpuPerGB: { cross: cross.cpu, crossPerRelay: cross.perRelay, same: same.cpu },
      },
      series: { cross: cross.all.map(Number), same: same.all.map(Number) },
    });
  }
  if (t1 && want(1)) {
    rows.push({
      id: 1,
      scenario: "Throughput, 1 conn, 1 GiB",
      unit: "GB/s",
      alphanet: t1.alphanet.gbps,
      direct: t1.direct!.gbps,
      proxy: t1.proxy.gbps,
      ratio: t1.alphanet.gbps / t1.proxy.gbps,
      target: THROUGHPUT_TARGET_TEXT,
      pass: t1.alphanet.gbps >= THROUGHPUT_TARGET * t1.proxy.gbps &&
        t1.alphanet.failures.length === 0,
      notes: throughputNotes(t1),
      figures: { cpuPerGB: cpuOf(t1), cpuRatios: cpuRatios(t1) },
    });
  }

  if (want(2)) {
    log("2: throughput, 16 connections");
    const t2 = await throughputRow(["direct", "proxy", "alphanet"], 16, GiB);
    rows.push({
      id: 2,
      scenario: "Throughput, 16 conns × 64 MiB",
      unit: "GB/s",
      alphanet: t2.alphanet.gbps,
      direct: t2.direct!.gbps,
      proxy: t2.proxy.gbps,
      ratio: t2.alphanet.gbps / t2.proxy.gbps,
      target: THROUGHPUT_TARGET_TEXT,
      pass: t2.alphanet.gbps >= THROUGHPUT_TARGET * t2.proxy.gbps &&
        t2.alphanet.failures.length === 0,
      notes: throughputNotes(t2),
      figures: { cpuPerGB: cpuOf(t2), cpuRatios: cpuRatios(t2) },
    });
  }

  const fmt = (p: { p50: number; p99: number }) => `${p.p50} / ${p.p99}`;
  let p2: { p50: number; p99: number } | null = null;
  let p3: { p50: number; p99: number } | null = null;
  let p0: { p50: number; p99: number } | null = null;
  let p1: { p50: number; p99: number } | null = null;
  if (want(3, 8)) {
    log("3: round trip");
    p0 = want(3) ? await pingPong("direct") : null;
    p1 = want(3) ? await pingPong("proxy") : null;
    p2 = await pingPong("alphanet");
    p3 = await pingPong("alphanet-tls");
    if (p0 && p1) {
      rows.push({
        id: 3,
        scenario: "Round trip 32 B, p50 / p99 (10k after 500 warm-up)",
        unit: "µs",
        alphanet: p2.p50,
        direct: p0.p50,
        proxy: p1.p50,
        ratio: p2.p50 / p1.p50,
        target: `p50 ≤ ${ROUND_TRIP_P50_TARGET} × proxy and p99 ≤ ${ROUND_TRIP_P99_TARGET} × proxy`,
        pass: p2.p50 <= ROUND_TRIP_P50_TARGET * p1.p50 &&
          p2.p99 <= ROUND_TRIP_P99_TARGET * p1.p99,
        notes: `ratio on p50; p99 ratio ${round(p2.p99 / p1.p99)} × proxy`,
        figures: { p99Ratio: round(p2.p99 / p1.p99) },
        shown: { alphanet: fmt(p2), direct: fmt(p0), proxy: fmt(p1) },
      });
    }
  }

  let tlsRow: Row | null = null;
  if (want(8) && t1 && p2 && p3) {
    const tls = t1.tls!;
    tlsRow = {
      id: 8,
      scenario: "Links over TLS: throughput 1 conn 1 GiB (GB/s); round trip 32 B p50 / p99 (µs)",
      unit: "GB/s; µs",
      alphanet: tls.gbps,
      direct: null,
      proxy: null,
      ratio: null,
      target: "report only",
      pass: tls.failures.length === 0,
      notes:
        `TLS × plain AlphaNET (rows 1, 3, same run): throughput ${
          round(tls.gbps / t1.alphanet.gbps)
        } ×, round trip p50 ${round(p3.p50 / p2.p50)} ×; TLS runs ${tls.all.join(", ")}${
          tls.failures.length ? ` (DATA LOSS: ${tls.failures.join("; ")})` : ""
        }; CPU core-s/GB sender / relay / receiver: ${cpuNote("TLS", tls)}; ` +
        "the relay's side of a TLS link keeps Deno's default Nagle setting (a TlsConn has no setNoDelay)",
      shown: { alphanet: `${round(tls.gbps)}; ${fmt(p3)}` },
    };
  }

  if (clusterRow(15)) {
    log("15: cross-relay round trip");
    type Trip = { p50: number; p99: number };
    const runs = { same: [] as Trip[], cross: [] as Trip[] };
    for (let rep = 0; rep < REPS; rep++) {
      runs.same.push(await pingPong("alphanet"));
      runs.cross.push(await pingPong("alphanet-cross"));
    }
    // Row 3's baselines when it ran; else measured once here, as row 3 does.
    const direct = p0 ?? await pingPong("direct");
    const proxy = p1 ?? await pingPong("proxy");
    const mid = (list: Trip[]) => ({
      p50: median(list.map((r) => r.p50)),
      p99: median(list.map((r) => r.p99)),
    });
    const same = mid(runs.same);
    const cross = mid(runs.cross);
    rows.push({
      id: 15,
      scenario: "Cluster: round trip 32 B, p50 / p99, pinging client on relay 1, echoing one on " +
        "relay 2 (ratio: p50 × same relay)",
      unit: "µs",
      alphanet: cross.p50,
      direct: direct.p50,
      proxy: proxy.p50,
      ratio: cross.p50 / same.p50,
      target: "report only",
      pass: true,
      notes: `row 3's method (10k after 500 warm-up); same relay ${fmt(same)}; p99 ` +
        `${round(cross.p99 / same.p99)} × same relay; cross-relay p50 × proxy ` +
        `${round(cross.p50 / proxy.p50)}; median of ${REPS}, interleaved (cross-relay ${
          runs.cross.map(fmt).join(", ")
        }; same relay ${runs.same.map(fmt).join(", ")})`,
      shown: {
        alphanet: `${fmt(cross)} (same relay ${fmt(same)})`,
        direct: fmt(direct),
        proxy: fmt(proxy),
      },
      figures: { same, cross },
      series: { crossP50: runs.cross.map((r) => r.p50), sameP50: runs.same.map((r) => r.p50) },
    });
  }

  let c0: { perSecond: number; errors: number } | null = null;
  let c1: { perSecond: number; errors: number } | null = null;
  if (want(4)) {
    log("4: connects per second");
    c0 = await connectRate("direct");
    c1 = await connectRate("proxy");
    const c2 = await connectRate("alphanet");
    rows.push({
      id: 4,
      scenario: "Connect + close, 50 in flight, 5,000 total",
      unit: "conn/s",
      alphanet: c2.perSecond,
      direct: c0.perSecond,
      proxy: c1.perSecond,
      ratio: c2.perSecond / c1.perSecond,
      target: "≥ 5,000/s",
      pass: c2.perSecond >= 5000 && c2.errors === 0,
      notes: `errors: AlphaNET ${c2.errors}, proxy ${c1.errors}, direct ${c0.errors}`,
    });
  }

  if (clusterRow(16)) {
    log("16: cross-relay connects per second");
    const runs = { same: [] as number[], cross: [] as number[] };
    let errors = 0;
    for (let rep = 0; rep < REPS; rep++) {
      const same = await connectRate("alphanet");
      const cross = await connectRate("alphanet-cross");
      runs.same.push(same.perSecond);
      runs.cross.push(cross.perSecond);
      errors += same.errors + cross.errors;
    }
    // Row 4's baselines when it ran; else measured once here, as row 4 does.
    const direct = c0 ?? await connectRate("direct");
    const proxy = c1 ?? await connectRate("proxy");
    const same = median(runs.same);
    const cross = median(runs.cross);
    rows.push({
      id: 16,
      scenario: "Cluster: connect + close, 50 in flight, 5,000 total, connecting client on " +
        "relay 1, accepting one on relay 2 (ratio: × same relay)",
      unit: "conn/s",
      alphanet: cross,
      direct: direct.perSecond,
      proxy: proxy.perSecond,
      ratio: cross / same,
      target: "report only",
      pass: errors === 0,
      notes: `row 4's method; same relay ${same}/s; the first request finds the destination's ` +
        `relay over NATS, every status and connection request crosses the relay link; ` +
        `errors ${errors}; median of ` +
        `${REPS}, interleaved (cross-relay ${runs.cross.join(", ")}; same relay ${
          runs.same.join(", ")
        })`,
      shown: { alphanet: `${cross} (same relay ${same})` },
      series: runs,
    });
  }

  if (want(5)) {
    log("5: idle clients");
    const i2 = await idleCost("alphanet", 10_000);
    const i0 = await idleCost("direct", 10_000);
    const i1 = await idleCost("proxy", 1_000);
    rows.push({
      id: 5,
      scenario: "Idle links: middle RSS growth per link",
      unit: "KiB",
      alphanet: i2.perLink,
      direct: i0.perLink,
      proxy: i1.perLink,
      ratio: i2.perLink / i1.perLink,
      target: "≤ 10 KiB/client",
      pass: i2.perLink <= 10,
      notes:
        `AlphaNET: relay, 10,000 clients with signed identities (joined in ${
          round(i2.seconds, 1)
        } s); ` +
        `direct: plain Deno TCP server, 10,000 conns, pending 1 KiB read; ` +
        `proxy: 1,000 conns (20,000-fd limit)`,
    });
  }

  if (want(6)) {
    log("6: slow consumer");
    const s2 = await slowConsumer("alphanet");
    const s1 = await slowConsumer("proxy");
    rows.push({
      id: 6,
      scenario: "Slow consumer 1 MiB/s for 5 s: max middle RSS growth",
      unit: "KiB",
      alphanet: s2.growthKiB,
      direct: null,
      proxy: s1.growthKiB,
      ratio: null,
      target: `≤ 2 × window (${2 * WINDOW_KiB} KiB)`,
      pass: s2.growthKiB <= 2 * WINDOW_KiB,
      notes:
        `growth from 1 s to the end: AlphaNET ${s2.lateGrowthKiB} KiB, proxy ${s1.lateGrowthKiB} KiB; ` +
        `receiver read ${round(s2.readMiB, 1)} MiB (proxy run ${round(s1.readMiB, 1)} MiB)`,
      series: { alphanet: s2.series, proxy: s1.series },
      shown: { alphanet: `${s2.growthKiB} (${round(s2.growthKiB / WINDOW_KiB)} × window)` },
    });
  }

  if (want(7)) {
    log("7: iperf3 through tunnels");
    const tunnels = await tunnelBench(TUNNEL_SECONDS, REPS);
    const mbs = Object.fromEntries(
      TUNNEL_PATHS.map((path) => {
        const runs = tunnels.runs[path];
        return [path, runs ? Math.round(median(runs)) : null];
      }),
    ) as Record<typeof TUNNEL_PATHS[number], number | null>;
    const cellOf = (path: typeof TUNNEL_PATHS[number], label: string) =>
      mbs[path] === null ? tunnels.skipped[path]! : `${label}${mbs[path]}`;
    const tunnelRatio = ratio(mbs.alphanet, mbs.ssh);
    rows.push({
      id: 7,
      scenario: `iperf3, 1 stream, ${TUNNEL_SECONDS} s: forward -> relay -> expose, against ` +
        "ssh -L and two socat hops (ratio: × ssh -L)",
      unit: "MB/s",
      alphanet: mbs.alphanet ?? 0,
      direct: mbs.loopback,
      proxy: mbs.ssh,
      ratio: tunnelRatio,
      target: `≥ ${TUNNEL_TARGET} × ssh -L`,
      pass: tunnelRatio === null || tunnelRatio >= TUNNEL_TARGET,
      notes: `${tunnelRatio === null ? "no ssh -L figure: target not checked; " : ""}` +
        `AlphaNET × socat ${ratio(mbs.alphanet, mbs.socat) ?? "–"}, × loopback ${
          ratio(mbs.alphanet, mbs.loopback) ?? "–"
        }; median of ${REPS}, interleaved (${
          TUNNEL_PATHS.map((path) =>
            `${path} ${tunnels.runs[path]?.map(Math.round).join(", ") ?? tunnels.skipped[path]}`
          ).join("; ")
        }); ssh -L: private sshd on 127.0.0.1, aes128-gcm@openssh.com; socat: default 8 KiB blocks`,
      shown: {
        alphanet: cellOf("alphanet", ""),
        direct: cellOf("loopback", ""),
        proxy: `${cellOf("ssh", "ssh -L ")}; ${cellOf("socat", "2 × socat ")}`,
      },
      figures: { mbPerSecond: mbs, runs: tunnels.runs, skipped: tunnels.skipped },
    });
  }
  if (tlsRow) rows.push(tlsRow);

  if (want(9)) {
    log("9: joins per second");
    // Interleaved, so the signed and the IP-keyed joins are measured at the same moments.
    const runs = {
      signedNew: [] as number[],
      signedKnown: [] as number[],
      anonymous: [] as number[],
      direct: [] as number[],
    };
    const errors: string[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      for (const mode of ["anonymous", "signed", "direct"] as const) {
        const result = await joinRate(mode);
        if (mode === "signed") {
          runs.signedNew.push(result.perSecond[0]);
          runs.signedKnown.push(result.perSecond[1]);
        } else {
          runs[mode].push(result.perSecond[0]);
        }
        if (result.errors > 0) errors.push(`${mode}: ${result.errors} (${result.firstError})`);
      }
    }
    const signedNew = median(runs.signedNew);
    const signedKnown = median(runs.signedKnown);
    const anonymous = median(runs.anonymous);
    rows.push({
      id: 9,
      scenario: `Joins: ${JOINS.toLocaleString("en")} clients, 200 in flight, join then close`,
      unit: "joins/s",
      alphanet: signedNew,
      direct: median(runs.direct),
      proxy: null,
      ratio: null,
      target: "report only",
      pass: errors.length === 0,
      notes: `signed: one generated Ed25519 identity per client (TCP connect, Hello, Challenge, ` +
        `Proof signed and verified, VirtualIP), first as new registry rows, then again as known ` +
        `keys; IP-keyed: no identity, no signature (all from 127.0.0.1: one key, each join takes ` +
        `the address over from the one before); signed × IP-keyed: new ${
          round(signedNew / anonymous)
        } ×, known ${round(signedKnown / anonymous)} ×; median of ${REPS} (signed new ${
          runs.signedNew.join(", ")
        }; known ${runs.signedKnown.join(", ")}; IP-keyed ${runs.anonymous.join(", ")}; direct ${
          runs.direct.join(", ")
        }); direct: TCP connect + close to a plain Deno server` +
        (errors.length ? `; **ERRORS** ${errors.join("; ")}` : ""),
      shown: {
        alphanet: `signed ${signedNew} new / ${signedKnown} known; IP-keyed ${anonymous} ` +
          `(${round(signedNew / anonymous)} × / ${round(signedKnown / anonymous)} ×)`,
      },
      series: runs,
    });
  }
  if (clusterRow(17)) {
    log("17: joins per second, PostgreSQL and SQLite registries");
    const runs = { sqliteNew: [] as number[], sqliteKnown: [] as number[] };
    const pg = { pgNew: [] as number[], pgKnown: [] as number[] };
    const errors: string[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      for (const engine of ["sqlite", "postgres"] as const) {
        const result = await registryJoinRate(engine);
        const [fresh, known] = result.perSecond;
        if (engine === "sqlite") {
          runs.sqliteNew.push(fresh);
          runs.sqliteKnown.push(known);
        } else {
          pg.pgNew.push(fresh);
          pg.pgKnown.push(known);
        }
        if (result.errors > 0) errors.push(`${engine}: ${result.errors} (${result.firstError})`);
      }
    }
    const sqliteNew = median(runs.sqliteNew);
    const sqliteKnown = median(runs.sqliteKnown);
    const pgNew = median(pg.pgNew);
    const pgKnown = median(pg.pgKnown);
    rows.push({
      id: 17,
      scenario: `Cluster: joins on a PostgreSQL registry (--registry) beside an SQLite file ` +
        `(--db): ${JOINS.toLocaleString("en")} signed clients, 200 in flight, new keys then ` +
        "known keys (ratio: new-key joins × SQLite)",
      unit: "joins/s",
      alphanet: pgNew,
      direct: null,
      proxy: null,
      ratio: pgNew / sqliteNew,
      target: "report only",
      pass: errors.length === 0,
      notes: `row 9's signed joins against a lone relay on a fresh database of a private ` +
        `PostgreSQL (loopback, synchronous_commit=off, fsync on) or a fresh SQLite file (WAL, ` +
        `synchronous=NORMAL); known-key joins × SQLite ${round(pgKnown / sqliteKnown)}; median ` +
        `of ${REPS}, interleaved (PostgreSQL new ${pg.pgNew.join(", ")}, known ${
          pg.pgKnown.join(", ")
        }; SQLite new ${runs.sqliteNew.join(", ")}, known ${runs.sqliteKnown.join(", ")})` +
        (errors.length ? `; **ERRORS** ${errors.join("; ")}` : ""),
      shown: {
        alphanet: `PostgreSQL ${pgNew} new / ${pgKnown} known; SQLite ${sqliteNew} / ` +
          `${sqliteKnown}`,
      },
      series: { ...runs, ...pg },
    });
  }

  if (want(10)) {
    log("10: WebSocket client throughput");
    const t10 = await throughputRow(["alphanet", "alphanet-ws"], 1, WS_BYTES);
    const ws = t10.ws!;
    const ratio = ws.gbps / t10.alphanet.gbps;
    const lost = [...ws.failures, ...t10.alphanet.failures];
    rows.push({
      id: 10,
      scenario:
        `WebSocket client: throughput 1 conn ${WS_BYTES / MiB} MiB, sender over WebSocket ` +
        "(ratio: × TCP client)",
      unit: "GB/s",
      alphanet: ws.gbps,
      direct: null,
      proxy: null,
      ratio,
      target: WS_THROUGHPUT_TARGET_TEXT,
      pass: ratio >= WS_THROUGHPUT_TARGET && lost.length === 0,
      notes: `${lost.length ? `**DATA LOSS: ${lost.join("; ")}**; ` : ""}sender joined with ` +
        `url ws://…, receiver over TCP, same relay build (--websocket-port 0); TCP client ` +
        `${round(t10.alphanet.gbps)} GB/s; median of ${REPS} (WebSocket ${ws.all.join(", ")}; ` +
        `TCP ${t10.alphanet.all.join(", ")}); CPU core-s/GB sender / relay / receiver: ${
          [cpuNote("WebSocket", ws), cpuNote("TCP", t10.alphanet)].join("; ")
        }`,
      shown: { alphanet: `${round(ws.gbps)} (TCP client ${round(t10.alphanet.gbps)})` },
    });
  }

  if (want(11)) {
    log("11: WebSocket client round trip");
    type Trip = { p50: number; p99: number };
    const runs = { tcp: [] as Trip[], ws: [] as Trip[] };
    for (let rep = 0; rep < REPS; rep++) {
      runs.tcp.push(await pingPong("alphanet"));
      runs.ws.push(await pingPong("alphanet-ws"));
    }
    const mid = (list: Trip[]) => ({
      p50: median(list.map((r) => r.p50)),
      p99: median(list.map((r) => r.p99)),
    });
    const tcp = mid(runs.tcp);
    const ws = mid(runs.ws);
    rows.push({
      id: 11,
      scenario: "WebSocket client: round trip 32 B, p50 / p99, pinging side over WebSocket " +
        "(ratio: p50 × TCP client)",
      unit: "µs",
      alphanet: ws.p50,
      direct: null,
      proxy: null,
      ratio: ws.p50 / tcp.p50,
      target: WS_ROUND_TRIP_TARGET_TEXT,
      pass: ws.p50 <= WS_ROUND_TRIP_TARGET * tcp.p50,
      notes: `pinging client joined with url ws://…, echo client over TCP; TCP client ` +
        `${fmt(tcp)}; p99 ${round(ws.p99 / tcp.p99)} × TCP client; median of ${REPS} ` +
        `(WebSocket ${runs.ws.map(fmt).join(", ")}; TCP ${runs.tcp.map(fmt).join(", ")})`,
      shown: { alphanet: `${fmt(ws)} (TCP client ${fmt(tcp)})` },
      series: {
        wsP50: runs.ws.map((r) => r.p50),
        tcpP50: runs.tcp.map((r) => r.p50),
      },
    });
  }

  if (want(12)) {
    log("12: small messages, 64 connections");
    const modes = ["direct", "proxy", "alphanet"] as const;
    const runs = {
      direct: [] as ManyPings[],
      proxy: [] as ManyPings[],
      alphanet: [] as ManyPings[],
    };
    for (let rep = 0; rep < REPS; rep++) {
      for (const mode of modes) runs[mode].push(await manyPings(mode));
    }
    const mid = (list: ManyPings[]) => ({
      perSecond: median(list.map((r) => r.perSecond)),
      p50: median(list.map((r) => r.p50)),
      p99: median(list.map((r) => r.p99)),
      cpu: medianCpu(list),
    });
    const [direct, proxy, alphanet] = modes.map((mode) => mid(runs[mode]));
    const trips = (r: { p50: number; p99: number }) => `${r.p50} / ${r.p99}`;
    rows.push({
      id: 12,
      scenario: `Small messages: ${PINGS.conns} conns × ${PINGS.count.toLocaleString("en")} ` +
        `sequential ${PINGS.size} B round trips, in parallel`,
      unit: "round trips/s",
      alphanet: alphanet.perSecond,
      direct: direct.perSecond,
      proxy: proxy.perSecond,
      ratio: alphanet.perSecond / proxy.perSecond,
      target: `≥ ${PINGS_TARGET} × proxy`,
      pass: alphanet.perSecond >= PINGS_TARGET * proxy.perSecond,
      notes: `after ${PINGS.warmup} warm-up round trips per conn; AlphaNET: ${PINGS.conns} ` +
        `virtual conns between two clients; round trip p50 / p99 µs: AlphaNET ${
          trips(alphanet)
        }, proxy ${trips(proxy)}, direct ${trips(direct)}; CPU µs per round trip sender / ` +
        `middle / receiver: ${
          modes.map((mode, i) =>
            `${mode} ${[direct, proxy, alphanet][i].cpu.map((x) => x ?? "–").join(" / ")}`
          ).join("; ")
        }; relay ÷ proxy CPU per round trip ${ratio(alphanet.cpu[1], proxy.cpu[1]) ?? "–"} ×; ` +
        `median of ${REPS} (AlphaNET ${runs.alphanet.map((r) => r.perSecond).join(", ")}; proxy ${
          runs.proxy.map((r) => r.perSecond).join(", ")
        }; direct ${runs.direct.map((r) => r.perSecond).join(", ")})`,
      figures: { direct, proxy, alphanet },
      series: Object.fromEntries(modes.map((m) => [m, runs[m].map((r) => r.perSecond)])),
    });
  }

  if (want(13)) {
    const clients = (2 * GAME.pairs).toLocaleString("en");
    log(`13: game traffic, ${clients} clients`);
    const modes = ["alphanet", "proxy", "direct"] as const;
    const runs = { direct: [] as GameRun[], proxy: [] as GameRun[], alphanet: [] as GameRun[] };
    for (let rep = 0; rep < REPS; rep++) {
      for (const mode of modes) runs[mode].push(await gameRun(mode));
    }
    const mid = (list: GameRun[]) => ({
      p50: median(list.map((r) => r.p50)),
      p99: median(list.map((r) => r.p99)),
      max: median(list.map((r) => r.max)),
      sent: median(list.map((r) => r.sent)),
      due: list[0].due,
      skipped: median(list.map((r) => r.skipped)),
      cpu: medianCpu(list),
    });
    const alphanet = mid(runs.alphanet);
    const proxy = mid(runs.proxy);
    const direct = mid(runs.direct);
    const errors = modes.flatMap((mode) =>
      runs[mode].flatMap((r) => r.error ? [`${mode}: ${r.error}`] : [])
    );
    const rtt = (r: { p50: number; p99: number }) => `${r.p50} / ${r.p99} ms`;
    const load = (r: ReturnType<typeof mid>) => `${r.sent}/${r.due} sent, ${r.skipped} skipped`;
    rows.push({
      id: 13,
      scenario: `Game traffic: ${clients} clients in ${GAME.pairs} pairs, ${GAME.size} B ` +
        `every ${GAME.intervalMs} ms each (ping and echo), ${GAME.seconds} s after ` +
        `${GAME.warmupSeconds} s warm-up: middle CPU; round trip p50 / p99 (ratio: CPU × proxy)`,
      unit: "% of 1 core; ms",
      alphanet: alphanet.cpu[1]!,
      direct: direct.p50,
      proxy: proxy.cpu[1],
      ratio: ratio(alphanet.cpu[1], proxy.cpu[1]),
      target: "report only",
      pass: errors.length === 0,
      notes: `${errors.length ? `**ERRORS** ${errors.join("; ")}; ` : ""}AlphaNET: sending and ` +
        `echoing clients in two processes, each client its own identity and link; TCP: ` +
        `${GAME.pairs} connections (${clients} sockets at the proxy); round trip p50 / p99 ` +
        `/ max ms: AlphaNET ${alphanet.p50} / ${alphanet.p99} / ${alphanet.max}, proxy ${proxy.p50} ` +
        `/ ${proxy.p99} / ${proxy.max}, direct ${direct.p50} / ${direct.p99} / ${direct.max}; ` +
        `p99 × proxy ${ratio(alphanet.p99, proxy.p99) ?? "–"}; CPU % of 1 core sender / middle / ` +
        `receiver: ${
          modes.map((mode) =>
            `${mode} ${{ alphanet, proxy, direct }[mode].cpu.map((x) => x ?? "–").join(" / ")}`
          ).join("; ")
        }; load: AlphaNET ${load(alphanet)}, proxy ${load(proxy)}, direct ${load(direct)}; ` +
        `median of ${REPS} (relay CPU ${runs.alphanet.map((r) => r.cpu[1]).join(", ")}; proxy ` +
        `${runs.proxy.map((r) => r.cpu[1]).join(", ")})`,
      shown: {
        alphanet: `relay ${alphanet.cpu[1]}%; ${rtt(alphanet)}`,
        direct: rtt(direct),
        proxy: `proxy ${proxy.cpu[1]}%; ${rtt(proxy)}`,
      },
      figures: { alphanet, proxy, direct },
    });
  }

  const profile = flags.profile ? (log("profile"), await profileRuns()) : [];
  await stopEngines();
  // The cluster rows are measured beside the rows they compare with; they print after row 13.
  rows.sort((a, b) => parseInt(String(a.id)) - parseInt(String(b.id)));
  const meta = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    nproc: Number(await text("nproc")),
    reps: REPS,
    seconds: round((performance.now() - started) / 1000, 1),
  };
  const cell = (x: number | null, shown?: string) =>
    shown ?? (x === null ? "—" : String(x >= 100 ? Math.round(x) : round(x)));
  const lines = [
    `Date: ${meta.date} · Deno ${meta.deno} (V8 ${meta.v8}) · nproc ${meta.nproc} · ` +
    `127.0.0.1 only · bench took ${meta.seconds} s`,
    "",
    "| # | Scenario | Unit | AlphaNET | Direct TCP | Plain proxy | AlphaNET × proxy | Target | PASS/MISS | Notes |",
    "| -: | --- | --- | --: | --: | --: | --: | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.id} | ${r.scenario} | ${r.unit} | ${cell(r.alphanet, r.shown?.alphanet)} | ${
        cell(r.direct, r.shown?.direct)
      } | ${cell(r.proxy, r.shown?.proxy)} | ${
        r.ratio === null ? "—" : `${round(r.ratio)} ×`
      } | ${r.target} | ${r.skipped ? "skipped" : r.pass ? "PASS" : "MISS"} | ${r.notes} |`
    ),
  ];
  console.log([...lines, ...(profile.length ? ["", ...profile] : [])].join("\n"));
  Deno.mkdirSync(OUT, { recursive: true });
  Deno.writeTextFileSync(
    `${OUT}results.json`,
    JSON.stringify({ meta, rows, profile }, null, 2) + "\n",
  );
}

const watchdog = setTimeout(() => {
  console.error(`bench: watchdog fired after ${WATCHDOG_MS / 1000} s, killing everything`);
  killAll();
  Deno.exit(1);
}, WATCHDOG_MS);
try {
  await main();
} catch (error) {
  console.error("bench failed:", error);
  await terminateAll(1000);
  Deno.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  // Engines left by a failed run: their processes are gone, their temporary directory is not.
  await stopEngines();
}
