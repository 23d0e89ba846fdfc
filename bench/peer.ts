/**
 * One end of a bench scenario, in its own process. Speaks lines on stdout:
 * "ready <port or virtualIp>" once it can be used, "result <json>" at the
 * end. Senders wait for "go" on stdin before the timed part. Closing stdin
 * makes any role exit.
 *
 * Usage: deno run -A bench/peer.ts <tcp|alphanet> <role> '<json options>'
 * (alphanet with a `url` option joins over WebSocket).
 * Roles: sink, source, echo, ping, pings, connrate, hold, joins, echoes, game.
 *
 * @module
 */

import process from "node:process";
import {
  type AlphaNetClient,
  connect as alphanetConnect,
  generateIdentity,
  type Identity,
} from "../mod.ts";
import { nowMs, sleep } from "./_proc.ts";

/** Options every role reads; which ones matter depends on the role. */
interface Options {
  /** TCP: the port to connect to. AlphaNET: the relay's port. */
  port?: number;
  /** AlphaNET: virtual IP to connect to. */
  vip?: string;
  /** Connections to open (source) or to expect (sink), and bytes in all. */
  conns?: number;
  bytes?: number;
  /** Read buffer size (sink). */
  buf?: number;
  /** Sink: read at most this many bytes per second (token bucket). */
  rate?: number;
  /** Time limit of the timed part, in seconds. */
  seconds?: number;
  /** Iterations (ping, connrate, hold) and warm-up (ping). */
  count?: number;
  warmup?: number;
  inflight?: number;
  /** Source: stay connected after writing until stdin ends. */
  linger?: boolean;
  /** AlphaNET receive window. */
  window?: number;
  /** AlphaNET: join over WebSocket at this `ws://HOST:PORT/` URL instead of TCP `port`. */
  url?: string;
  /** AlphaNET: join over TLS, trusting the CA in this PEM file. */
  tlsCa?: string;
  /** Joins: `signed` (one generated identity per client) or `anonymous` (none: keyed by IP). */
  identities?: "signed" | "anonymous";
  /** Joins: how many times the same clients join, one after the other. */
  rounds?: number;
  /** Message size in bytes (pings, game). */
  size?: number;
  /** Echoes, game: clients (AlphaNET) or connections (TCP) to open. */
  clients?: number;
  /** Game: the echoing clients' virtual IPs, one per sending client (AlphaNET). */
  vips?: string[];
  /** Game: one message per client every this many ms. */
  intervalMs?: number;
  /** Game: seconds of traffic before the timed part. */
  warmupSeconds?: number;
}

interface Stream {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

interface Endpoint {
  /** Listens; returns what "ready" should print and the accepted connections. */
  listen(): { addr: string; conns: AsyncIterable<Stream> };
  connect(): Promise<Stream>;
  close(): Promise<void>;
}

const VIRTUAL_PORT = 7;
const CHUNK_BYTES = 64 * 1024;
const [kind, role, json] = Deno.args;
const options: Options = JSON.parse(json ?? "{}");

/**
 * A new identity per client, so clients on 127.0.0.1 do not replace each
 * other: a generated key pair, as an application keeps it (no version 1
 * claim, which a secret would add).
 */
function identity(): Promise<Identity> {
  return generateIdentity();
}

function tcpEndpoint(): Endpoint {
  const listen = (): { addr: string; conns: AsyncIterable<Stream> } => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 4096 });
    async function* accepted(): AsyncIterable<Stream> {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        yield conn;
      }
    }
    return { addr: String(listener.addr.port), conns: accepted() };
  };
  const connect = async (): Promise<Stream> => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: options.port! });
    conn.setNoDelay(true);
    return conn;
  };
  return { listen, connect, close: () => Promise.resolve() };
}

async function alphanetEndpoint(): Promise<Endpoint> {
  // A url joins over WebSocket; it names the relay, so hostname, port and tls stay unset.
  const link = options.url !== undefined ? { url: options.url } : {
    hostname: "127.0.0.1",
    port: options.port!,
    tls: options.tlsCa !== undefined,
    caCerts: options.tlsCa === undefined ? undefined : [Deno.readTextFileSync(options.tlsCa)],
  };
  const net = await alphanetConnect({
    ...link,
    identity: await identity(),
    window: options.window,
  });
  return {
    listen: () => ({
      addr: net.virtualIp,
      conns: net.listen({ port: VIRTUAL_PORT, backlog: 4096 }),
    }),
    connect: () => net.connect({ hostname: options.vip!, port: VIRTUAL_PORT }),
    close: () => net.close(),
  };
}

/** Reads stdin: resolves `go` on the "go" line, exits the process when stdin ends. */
const go = Promise.withResolvers<void>();
(async () => {
  let text = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.includes("go\n")) go.resolve();
  }
  Deno.exit(0);
})();

/** CPU seconds (user + system) this process used so far. */
function cpu(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

function finish(result: unknown): never {
  console.log(`result ${JSON.stringify(result)}`);
  Deno.exit(0);
}

async function writeAll(conn: Stream, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

async function sink(endpoint: Endpoint): Promise<void> {
  const { addr, conns } = endpoint.listen();
  const expected = options.bytes ?? 0;
  const size = options.buf ?? CHUNK_BYTES;
  let total = 0;
  let ended = 0;
  const cpu0 = cpu();
  console.log(`ready ${addr}`);
  const drain = async (conn: Stream) => {
    const buffer = new Uint8Array(size);
    const start = nowMs();
    let error: string | null = null;
    try {
      while (true) {
        const count = await conn.read(buffer);
        if (count === null) break;
        total += count;
        if (expected > 0 && total >= expected) {
          finish({ bytes: total, lastByteAt: nowMs(), cpu: cpu() - cpu0 });
        }
        if (options.rate) {
          // Token bucket: never ahead of `rate` bytes per second on average.
          const elapsed = nowMs() - start;
          if (elapsed >= options.seconds! * 1000) break;
          await sleep(Math.max(0, (total / options.rate) * 1000 - elapsed));
        }
      }
    } catch (e) {
      error = String(e);
    }
    conn.close();
    if (options.rate) finish({ bytes: total, seconds: (nowMs() - start) / 1000 });
    // Every expected connection ended and bytes are missing: report instead of waiting forever.
    if (expected > 0 && ++ended === options.conns) {
      finish({ bytes: total, short: expected - total, error, cpu: cpu() - cpu0 });
    }
  };
  for await (const conn of conns) void drain(conn);
}

async function source(endpoint: Endpoint): Promise<void> {
  const count = options.conns ?? 1;
  const perConn = Math.floor(options.bytes! / count);
  const chunk = new Uint8Array(CHUNK_BYTES).map((_, i) => i & 0xff);
  const conns = await Promise.all(Array.from({ length: count }, () => endpoint.connect()));
  console.log("ready");
  await go.promise;
  const cpu0 = cpu();
  const firstByteAt = nowMs();
  const deadline = options.seconds ? firstByteAt + options.seconds * 1000 : Infinity;
  let written = 0;
  let error: string | null = null;
  await Promise.all(conns.map(async (conn) => {
    try {
      for (let sent = 0; sent < perConn && nowMs() < deadline;) {
        const size = Math.min(CHUNK_BYTES, perConn - sent);
        await writeAll(conn, chunk.subarray(0, size));
        sent += size;
        written += size;
      }
    } catch (e) {
      error = String(e);
    }
    conn.close();
  }));
  const used = cpu() - cpu0;
  if (options.linger) {
    // Report now, but keep the link open: closing right away can cut data still in flight.
    console.log(`result ${JSON.stringify({ firstByteAt, written, error, cpu: used })}`);
    await new Promise(() => {}); // Until stdin ends.
  }
  await endpoint.close();
  finish({ firstByteAt, written, error, cpu: used });
}

/** Writes back what `conn` sends until it ends, through a `options.buf`-sized buffer. */
async function serveEcho(conn: Stream): Promise<void> {
  const buffer = new Uint8Array(options.buf ?? CHUNK_BYTES);
  try {
    while (true) {
      const count = await conn.read(buffer);
      if (count === null) break;
      await writeAll(conn, buffer.subarray(0, count));
    }
  } catch {
    // A reset ends this connection.
  }
  conn.close();
}

async function echo(endpoint: Endpoint): Promise<void> {
  const { addr, conns } = endpoint.listen();
  console.log(`ready ${addr}`);
  for await (const conn of conns) void serveEcho(conn);
}

/** Runs `task(i)` for i in [0, total), at most `inflight` at a time, in order of i. */
async function pool<T>(
  total: number,
  inflight: number,
  task: (i: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(total);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(inflight, total) }, async () => {
    while (next < total) {
      const i = next++;
      results[i] = await task(i);
    }
  }));
  return results;
}

/** Joins an AlphaNET client with its own identity to the relay at `options.port`. */
async function joinClient(): Promise<AlphaNetClient> {
  return await alphanetConnect({
    hostname: "127.0.0.1",
    port: options.port!,
    identity: await identity(),
    window: options.window,
  });
}

/**
 * AlphaNET: `clients` clients, each listening and echoing; prints
 * `ready <JSON array of their virtual IPs>`. (A TCP echo server is `echo`.)
 */
async function echoes(): Promise<void> {
  const nets = await pool(options.clients ?? 500, 100, () => joinClient());
  for (const net of nets) {
    (async () => {
      for await (const conn of net.listen({ port: VIRTUAL_PORT })) void serveEcho(conn);
    })();
  }
  console.log(`ready ${JSON.stringify(nets.map((net) => net.virtualIp))}`);
  await new Promise(() => {}); // Until stdin ends.
}

/** Writes `message` and reads as many bytes back: one round trip, in ms. */
async function roundTrip(conn: Stream, message: Uint8Array, reply: Uint8Array): Promise<number> {
  const start = performance.now();
  await writeAll(conn, message);
  for (let got = 0; got < reply.length;) {
    const n = await conn.read(reply.subarray(got));
    if (n === null) throw new Error("echo closed early");
    got += n;
  }
  return performance.now() - start;
}

/** Percentile `q` of sorted `values`, rounded. */
function percentile(sorted: ArrayLike<number>, q: number, digits = 0): number {
  if (sorted.length === 0) return 0;
  const x = sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

/**
 * Small messages on many connections at once: `conns` connections, each
 * doing `warmup` then `count` sequential round trips of `size` bytes, all
 * connections in parallel; prints "mark" when the timed part starts and
 * when it ends. Result: round trips per second over all connections, and
 * p50 / p99 of a round trip in µs.
 */
async function pings(endpoint: Endpoint): Promise<void> {
  const count = options.count ?? 2000;
  const size = options.size ?? 64;
  const conns = await Promise.all(
    Array.from({ length: options.conns ?? 64 }, () => endpoint.connect()),
  );
  const micros = new Float64Array(conns.length * count);
  console.log("ready");
  await go.promise;
  const loop = (rounds: number, record: boolean) =>
    Promise.all(conns.map(async (conn, c) => {
      const message = new Uint8Array(size).fill(c & 0xff);
      const reply = new Uint8Array(size);
      for (let i = 0; i < rounds; i++) {
        const ms = await roundTrip(conn, message, reply);
        if (record) micros[c * count + i] = ms * 1000;
      }
    }));
  await loop(options.warmup ?? 200, false);
  console.log("mark start");
  const start = performance.now();
  await loop(count, true);
  const seconds = (performance.now() - start) / 1000;
  console.log("mark end");
  for (const conn of conns) conn.close();
  await endpoint.close();
  micros.sort();
  finish({
    roundTrips: micros.length,
    seconds,
    perSecond: Math.round(micros.length / seconds),
    p50: percentile(micros, 0.5),
    p99: percentile(micros, 0.99),
  });
}

/**
 * Game traffic: `clients` senders (AlphaNET clients, one connection each to
 * their own echoing client in `vips`; or TCP connections to `port`), each
 * sending `size` bytes every `intervalMs` and reading the echo back, the
 * senders' ticks spread evenly over the interval. A tick that comes while the
 * previous reply is still awaited is skipped (and counted). Prints "mark"
 * when the timed part (`seconds`, after `warmupSeconds`) starts and ends.
 * Result: round-trip p50 / p99 / max in ms over the timed part, messages
 * sent in it against those due, ticks skipped.
 */
async function game(): Promise<void> {
  const total = options.clients ?? 500;
  const size = options.size ?? 100;
  const interval = options.intervalMs ?? 100;
  const warmupMs = (options.warmupSeconds ?? 2) * 1000;
  const timedMs = (options.seconds ?? 10) * 1000;
  const conns = await pool(total, 100, async (i): Promise<Stream> => {
    if (kind === "tcp") return await tcpEndpoint().connect();
    const net = await joinClient();
    return await net.connect({ hostname: options.vips![i], port: VIRTUAL_PORT });
  });
  console.log("ready");
  await go.promise;
  const start = performance.now();
  const timedFrom = start + warmupMs;
  const end = timedFrom + timedMs;
  // The marks bound the timed part, also when the last ticks end before it does.
  const marks = (async () => {
    await sleep(timedFrom - performance.now());
    console.log("mark start");
    await sleep(end - performance.now());
    console.log("mark end");
  })();
  const rtts: number[] = [];
  let sent = 0;
  let skipped = 0;
  let error: string | null = null;
  await Promise.all(conns.map(async (conn, c) => {
    const message = new Uint8Array(size).fill(c & 0xff);
    const reply = new Uint8Array(size);
    const phase = (c / total) * interval;
    try {
      for (let tick = 0;; tick++) {
        const due = start + phase + tick * interval;
        const now = performance.now();
        if (due < now - 1) { // Late by more than the timer's slack: this tick is lost.
          if (due >= timedFrom && due < end) skipped++;
          continue;
        }
        if (due >= end) break;
        await sleep(due - now);
        const sentAt = performance.now();
        const ms = await roundTrip(conn, message, reply);
        if (sentAt >= timedFrom && sentAt < end) {
          rtts.push(ms);
          sent++;
        }
      }
    } catch (e) {
      error ??= String(e);
    }
  }));
  await marks;
  rtts.sort((a, b) => a - b);
  finish({
    p50: percentile(rtts, 0.5, 2),
    p99: percentile(rtts, 0.99, 2),
    max: percentile(rtts, 1, 2),
    sent,
    due: Math.round(total * timedMs / interval),
    skipped,
    error,
  });
}

async function ping(endpoint: Endpoint): Promise<void> {
  const conn = await endpoint.connect();
  const message = new Uint8Array(32).fill(7);
  const reply = new Uint8Array(32);
  const warmup = options.warmup ?? 500;
  const count = options.count ?? 10_000;
  const micros: number[] = [];
  console.log("ready");
  await go.promise;
  for (let i = 0; i < warmup + count; i++) {
    const ms = await roundTrip(conn, message, reply);
    if (i >= warmup) micros.push(ms * 1000);
  }
  conn.close();
  await endpoint.close();
  micros.sort((a, b) => a - b);
  finish({ p50: percentile(micros, 0.5), p99: percentile(micros, 0.99), count: micros.length });
}

async function connrate(endpoint: Endpoint): Promise<void> {
  const total = options.count ?? 5000;
  console.log("ready");
  await go.promise;
  let next = 0;
  let errors = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: options.inflight ?? 50 }, async () => {
    while (next < total) {
      next++;
      try {
        (await endpoint.connect()).close();
      } catch {
        errors++;
      }
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  await endpoint.close();
  finish({ count: total, errors, seconds, perSecond: Math.round(total / seconds) });
}

/** Opens `count` idle links (TCP connections or AlphaNET clients) and keeps them until stdin ends. */
async function hold(): Promise<void> {
  const total = options.count ?? 10_000;
  const held: unknown[] = [];
  let next = 0;
  let errors = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: options.inflight ?? 200 }, async () => {
    while (next < total) {
      next++;
      try {
        held.push(
          kind === "tcp"
            ? await Deno.connect({ hostname: "127.0.0.1", port: options.port! })
            : await alphanetConnect({
              hostname: "127.0.0.1",
              port: options.port!,
              identity: await identity(),
            }),
        );
      } catch {
        errors++;
      }
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  console.log(`result ${JSON.stringify({ count: held.length, errors, seconds })}`);
  await new Promise(() => {}); // Until stdin ends.
}

/**
 * Joins `count` clients, `inflight` at a time, each closed as soon as it has
 * its virtual IP (or TCP connects and closes, for the baseline), `rounds`
 * times over; one rate per round. Signed identities are made before
 * "ready", so the timed part is the join alone: TCP connect, Hello,
 * Challenge, Proof (signed, and verified by the relay), registry lookup or
 * assignment, VirtualIP. In the first round each is a new registry row, in
 * later ones a known key. Anonymous clients all come from 127.0.0.1, one
 * registry key: each takes the address over from the one before, if it is
 * still there.
 */
async function joins(): Promise<void> {
  const total = options.count ?? 5000;
  const signed = kind === "alphanet" && options.identities === "signed";
  const identities = signed ? await Promise.all(Array.from({ length: total }, identity)) : [];
  console.log("ready");
  await go.promise;
  let errors = 0;
  let firstError: string | null = null;
  const perSecond: number[] = [];
  for (let round = 0; round < (options.rounds ?? 1); round++) {
    let next = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: options.inflight ?? 200 }, async () => {
      while (next < total) {
        const i = next++;
        try {
          if (kind === "tcp") {
            (await Deno.connect({ hostname: "127.0.0.1", port: options.port! })).close();
          } else {
            const net = await alphanetConnect({
              hostname: "127.0.0.1",
              port: options.port!,
              identity: signed ? identities[i] : undefined,
              reconnect: false,
            });
            await net.close();
          }
        } catch (e) {
          errors++;
          firstError ??= String(e);
        }
      }
    }));
    perSecond.push(Math.round(total / ((performance.now() - start) / 1000)));
  }
  finish({ count: total, errors, firstError, perSecond });
}

if (role === "hold") {
  await hold();
} else if (role === "joins") {
  await joins();
} else if (role === "echoes") {
  await echoes();
} else if (role === "game") {
  await game();
} else {
  const endpoint = kind === "tcp" ? tcpEndpoint() : await alphanetEndpoint();
  const roles: Record<string, (endpoint: Endpoint) => Promise<void>> = {
    sink,
    source,
    echo,
    ping,
    pings,
    connrate,
  };
  const run = roles[role];
  if (!run) throw new Error(`unknown role ${role}`);
  await run(endpoint);
}
