/**
 * Shared helpers of the integration tests: a relay on an ephemeral port with
 * its own temp dir, identities, byte collection, hashing, time-outs, and a
 * raw-frame client for hostile-input tests.
 */

import assert from "node:assert/strict";
import {
  type AlphaNetClient,
  type ClientState,
  connect,
  type ConnectOptions,
  encode,
  type ErrorPacket,
  FrameDecoder,
  type Packet,
  PacketType,
  PROTOCOL_VERSION,
  reasonName,
  type StateChangeEvent,
  type VirtualConn,
  type VirtualListener,
} from "../mod.ts";
import { Relay, type RelayOptions } from "../server.ts";

/** Default time-out of one awaited step in the tests. */
export const STEP_MS = 5_000;

/**
 * Resolves or rejects like `promise`, or rejects with a message naming
 * `what` after `ms`. The timer is always cleared.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A relay started for one test, with the temp dir holding its database. */
export interface TestRelay {
  readonly relay: Relay;
  readonly port: number;
  /** The temp dir; removed by {@linkcode TestRelay.close} or {@linkcode TestRelay.cleanup}. */
  readonly dir: string;
  /** The database path the relay was started with. */
  readonly db: string;
  /** Closes the relay, then removes the temp dir. */
  close(): Promise<void>;
  /** Removes the temp dir only (for tests that close the relay themselves). */
  cleanup(): Promise<void>;
}

/**
 * Starts a relay on 127.0.0.1 on an ephemeral port, logging nothing, with
 * its database in a fresh temp dir unless `opts.db` says otherwise.
 */
export async function startRelay(opts: RelayOptions = {}): Promise<TestRelay> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_test_" });
  const db = opts.db ?? `${dir}/alphanet.db`;
  let relay: Relay;
  try {
    relay = await Relay.start({
      logLevel: "silent",
      ...opts,
      hostname: "127.0.0.1",
      port: 0,
      db,
    });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  let removed = false;
  const cleanup = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await Deno.remove(dir, { recursive: true });
  };
  return {
    relay,
    port: relay.addr.port,
    dir,
    db,
    async close(): Promise<void> {
      try {
        await withTimeout(relay.close(), STEP_MS, "relay.close()");
      } finally {
        await cleanup();
      }
    },
    cleanup,
  };
}

/** A fresh identity secret (well within 16..256 bytes). */
export function randomIdentity(): string {
  return `test-identity-${crypto.randomUUID()}`;
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** Joins chunks into one array. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** Largest stream readAll accepts before failing: a bound on its loop. */
const READ_ALL_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Reads `conn` until end of stream and returns every byte. Fails if more
 * than `limit` bytes arrive (each read yields at least one byte, so the loop
 * runs at most `limit + 1` times).
 */
export async function readAll(
  conn: VirtualConn,
  limit: number = READ_ALL_LIMIT_BYTES,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(64 * 1024);
  for (let reads = 0; reads <= limit; reads++) {
    const count = await conn.read(buffer);
    if (count === null) return concatBytes(chunks);
    assert.ok(count > 0, "read returned 0 bytes into a non-empty buffer");
    chunks.push(buffer.slice(0, count));
    total += count;
    assert.ok(total <= limit, `readAll: more than ${limit} bytes arrived`);
  }
  throw new Error(`readAll: no end of stream after ${limit + 1} reads`);
}

/** Reads exactly `length` bytes from `conn`; fails on an early end of stream. */
export async function readExactly(conn: VirtualConn, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  for (let reads = 0; reads <= length && filled < length; reads++) {
    const count = await conn.read(out.subarray(filled));
    if (count === null) throw new Error(`readExactly: end of stream after ${filled}/${length}`);
    filled += count;
  }
  assert.equal(filled, length);
  return out;
}

/** Collects a byte stream (bounded like {@linkcode readAll}). */
export async function readStreamAll(
  stream: ReadableStream<Uint8Array>,
  limit: number = READ_ALL_LIMIT_BYTES,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (let reads = 0; reads <= limit; reads++) {
      const { value, done } = await reader.read();
      if (done) return concatBytes(chunks);
      chunks.push(value.slice());
      total += value.length;
      assert.ok(total <= limit, `readStreamAll: more than ${limit} bytes arrived`);
    }
  } finally {
    reader.releaseLock();
  }
  throw new Error(`readStreamAll: no end of stream after ${limit + 1} reads`);
}

/** SHA-256 of `bytes` as lowercase hex. */
export async function sha256hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes.slice());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Text of UTF-8 `bytes`. */
export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Connects a fresh real client and closes it: proof that the relay still serves. */
export async function assertRelayServes(port: number): Promise<void> {
  const probe = await withTimeout(
    connect({ port, identity: randomIdentity() }),
    STEP_MS,
    "a fresh client to join the relay",
  );
  try {
    const status = await withTimeout(
      probe.status({ hostname: probe.virtualIp, port: 1 }),
      STEP_MS,
      "the fresh client's status request",
    );
    assert.deepEqual(status, { online: true, listening: false });
  } finally {
    await probe.close();
  }
}

/** Deep-copies a decoded packet: decoders hand out views valid only during the callback. */
function copyPacket(packet: Packet): Packet {
  switch (packet.type) {
    case PacketType.ArbitraryData:
      return { ...packet, payload: packet.payload.slice() };
    case PacketType.Hello:
      return { ...packet, identity: packet.identity?.slice() ?? null };
    default:
      return { ...packet };
  }
}

/** Packets a raw client will skip looking for an expected one, at most. */
const MAX_SKIPPED_PACKETS = 64;

/**
 * A hand-driven TCP client of the relay: writes arbitrary bytes or encoded
 * packets, and reads decoded packets one by one (null at end of stream).
 */
export class RawClient {
  readonly conn: Deno.TcpConn;
  /** The virtual address from the handshake, once {@linkcode handshake} ran. */
  address = 0;
  /** Whether the relay reset the link instead of closing it cleanly. */
  reset = false;
  /** Set when the relay's bytes could not be decoded. */
  decodeError: Error | null = null;

  readonly #queue: Packet[] = [];
  #ended = false;
  #waiters: (() => void)[] = [];
  readonly #loop: Promise<void>;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#loop = this.#readLoop();
  }

  /** Wraps a TCP connection accepted by a test's own fake relay (see {@linkcode FakeRelay}). */
  static adopt(conn: Deno.TcpConn): RawClient {
    conn.setNoDelay(true);
    return new RawClient(conn);
  }

  /** Opens a TCP link to the relay on 127.0.0.1:`port`. */
  static async open(port: number): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
    conn.setNoDelay(true);
    return new RawClient(conn);
  }

  /** Writes every byte of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    let written = 0;
    for (let writes = 0; writes <= bytes.length && written < bytes.length; writes++) {
      written += await this.conn.write(bytes.subarray(written));
    }
    assert.equal(written, bytes.length, "raw write incomplete");
  }

  /** Encodes and writes packets in one write. */
  send(...packets: Packet[]): Promise<void> {
    const frames: Uint8Array[] = [];
    for (const packet of packets) frames.push(encode(packet));
    return this.write(concatBytes(frames));
  }

  /** The next packet from the relay, or null once the link has ended. */
  async next(
    ms: number = STEP_MS,
    what = "the next packet from the relay",
  ): Promise<Packet | null> {
    const ready = () => this.#queue.length > 0 || this.#ended;
    if (!ready()) {
      await withTimeout(
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        ms,
        what,
      );
    }
    const packet = this.#queue.shift();
    if (packet) return packet;
    if (this.decodeError) throw this.decodeError;
    return null;
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet["type"]>(
    type: T,
    what: string,
  ): Promise<Extract<Packet, { type: T }>> {
    const packet = await this.next(STEP_MS, what);
    assert.ok(packet !== null, `${what}: link ended instead`);
    assert.equal(
      packet.type,
      type,
      `${what}: got type 0x${packet.type.toString(16)} ${JSON.stringify(packet)}`,
    );
    return packet as Extract<Packet, { type: T }>;
  }

  /** Waits for the end of the link; fails if another packet arrives first. */
  async expectEof(what = "the relay to close the link"): Promise<void> {
    const packet = await this.next(STEP_MS, what);
    assert.equal(packet, null, `${what}: got ${JSON.stringify(packet)} instead`);
  }

  /**
   * Waits for an Error frame with `reason` (skipping a bounded number of
   * other packets), then for the relay to close the link.
   */
  async expectError(reason: number, what = "an Error frame"): Promise<ErrorPacket> {
    const skipped: string[] = [];
    for (let i = 0; i <= MAX_SKIPPED_PACKETS; i++) {
      const packet = await this.next(STEP_MS, `${what} (${reasonName(reason)})`);
      assert.ok(packet !== null, `${what}: link ended without an Error frame`);
      if (packet.type !== PacketType.Error) {
        skipped.push(`0x${packet.type.toString(16)}`);
        continue;
      }
      assert.equal(
        reasonName(packet.reason),
        reasonName(reason),
        `${what}: wrong reason, message: ${packet.message}`,
      );
      await this.expectEof(`${what}: the relay to close the link after the Error frame`);
      return packet;
    }
    throw new Error(`${what}: no Error frame among ${skipped.join(", ")}`);
  }

  /** Sends Hello and waits for the VirtualIP; returns the address. */
  async handshake(identity: string | null = randomIdentity()): Promise<number> {
    await this.send({
      type: PacketType.Hello,
      version: PROTOCOL_VERSION,
      identity: identity === null ? null : utf8(identity),
    });
    const answer = await this.expect(PacketType.VirtualIP, "VirtualIP after Hello");
    this.address = answer.address;
    return answer.address;
  }

  /** Closes the link and waits for the read loop to finish. Idempotent. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #readLoop(): Promise<void> {
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const count = await this.conn.read(buffer);
        if (count === null) break;
        decoder.push(buffer.subarray(0, count), (packet) => this.#queue.push(copyPacket(packet)));
        this.#wake();
      }
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) this.reset = true;
      else if (
        !(error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted)
      ) {
        this.decodeError = error as Error;
      }
    } finally {
      this.#ended = true;
      this.#wake();
    }
  }

  #wake(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}

/** Opens a raw client (see {@linkcode RawClient}). */
export function rawClient(port: number): Promise<RawClient> {
  return RawClient.open(port);
}

/** A client's virtual IP as a u32. */
export function addressOf(client: AlphaNetClient): number {
  const [a, b, c, d] = client.virtualIp.split(".").map(Number);
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/**
 * Opens a connection from a handshaken raw client to `owner`'s listener on
 * `port` by hand (status request, then connection request with window 16384),
 * and returns the raw client's connection id, the accepted window and the
 * owner's end.
 */
export async function rawConnect(
  raw: RawClient,
  owner: AlphaNetClient,
  listener: VirtualListener,
  port: number,
): Promise<{ connectionId: number; window: number; ownerEnd: VirtualConn }> {
  const destination = addressOf(owner);
  await raw.send({
    type: PacketType.SocketStatusRequest,
    requestId: 1,
    source: raw.address,
    destination,
    destinationPort: port,
  });
  const status = await raw.expect(PacketType.SocketStatusResponse, "status response");
  assert.equal(status.requestId, 1);
  assert.equal(status.listening, true);
  const accepting = listener.accept();
  await raw.send({
    type: PacketType.SocketConnectionRequest,
    requestId: 2,
    connectionId: 0,
    source: raw.address,
    sourcePort: 50_000,
    destination,
    destinationPort: port,
    window: 16_384,
  });
  const answer = await raw.expect(PacketType.SocketConnectionResponse, "connection response");
  assert.equal(answer.requestId, 2);
  assert.equal(answer.accepted, true);
  assert.ok(answer.connectionId >= 1);
  const ownerEnd = await withTimeout(accepting, STEP_MS, "owner to accept the raw connection");
  return { connectionId: answer.connectionId, window: answer.window, ownerEnd };
}

/**
 * A stand-in relay for client tests: a real TCP listener on 127.0.0.1 whose
 * links the test drives by hand as {@linkcode RawClient}s (the roles are
 * swapped: the raw side is the relay here).
 */
export class FakeRelay implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly #links: RawClient[] = [];

  private constructor(listener: Deno.TcpListener) {
    this.listener = listener;
  }

  /** Listens on a free port of 127.0.0.1. */
  static start(): FakeRelay {
    return new FakeRelay(Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" }));
  }

  /** The port clients connect to. */
  get port(): number {
    return this.listener.addr.port;
  }

  /** Accepts the next client link. */
  async accept(what = "a client to connect to the fake relay"): Promise<RawClient> {
    const accepting = this.listener.accept();
    accepting.catch(() => {}); // Rejects on close() if the time-out won the race.
    const link = RawClient.adopt(await withTimeout(accepting, STEP_MS, what));
    this.#links.push(link);
    return link;
  }

  /** Accepts a link, expects its Hello and answers VirtualIP(`address`). */
  async acceptJoin(address: number, what = "a client to join the fake relay"): Promise<RawClient> {
    const link = await this.accept(what);
    await link.expect(PacketType.Hello, `${what}: Hello`);
    await link.send({ type: PacketType.VirtualIP, address });
    return link;
  }

  /** Stops listening and closes every link. Idempotent. */
  async close(): Promise<void> {
    try {
      this.listener.close();
    } catch {
      // Already closed.
    }
    for (const link of this.#links) await link.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Every `statechange` of a client, in order, with a way to wait for the next of a kind. */
export interface StateLog {
  /** Every event so far. */
  readonly events: readonly StateChangeEvent[];
  /** The states so far. */
  states(): ClientState[];
  /** Waits for the next event (after the last one returned) with `state`. */
  next(state: ClientState, what?: string, ms?: number): Promise<StateChangeEvent>;
}

/** Starts recording `client`'s state changes. */
export function recordStates(client: AlphaNetClient): StateLog {
  const events: StateChangeEvent[] = [];
  let cursor = 0;
  let wake: (() => void) | null = null;
  client.addEventListener("statechange", (event) => {
    events.push(event);
    wake?.();
  });
  return {
    events,
    states: () => events.map((event) => event.state),
    async next(state, what = `state ${state}`, ms = STEP_MS): Promise<StateChangeEvent> {
      const deadline = performance.now() + ms;
      // Each pass consumes at least one event or waits for one: bounded by the events that arrive.
      while (true) {
        const found = events.findIndex((event, i) => i >= cursor && event.state === state);
        if (found >= 0) {
          cursor = found + 1;
          return events[found];
        }
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`Timed out after ${ms} ms: ${what} (saw ${this.states()})`);
        await withTimeout(new Promise<void>((resolve) => wake = resolve), left, what);
      }
    },
  };
}

/** Resolves after `ms`: for the few tests that must show something does not happen. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How often {@linkcode waitUntil} checks its condition. */
const POLL_MS = 10;

/**
 * Waits until `condition()` holds, checking every 10 ms, at most `ms` long
 * (so at most `ms / 10 + 1` checks). For state that has no event to wait on,
 * such as the relay's link count.
 */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  ms: number = STEP_MS,
): Promise<void> {
  const deadline = performance.now() + ms;
  for (let checks = 0; checks <= ms / POLL_MS + 1; checks++) {
    if (condition()) return;
    if (performance.now() >= deadline) break;
    await delay(POLL_MS);
  }
  if (!condition()) throw new Error(`Timed out after ${ms} ms: ${what}`);
}

/** Two real clients joined by one virtual connection that the owner echoes. */
export interface EchoPair {
  readonly owner: AlphaNetClient;
  readonly requester: AlphaNetClient;
  /** The requester's end of the echoed connection. */
  readonly conn: VirtualConn;
  /** Sends a fresh message and checks that it comes back unchanged. */
  assertEchoes(what: string): Promise<void>;
  /** Closes the connection and both clients. Idempotent. */
  close(): Promise<void>;
}

/** Largest number of reads the echo side of an {@linkcode EchoPair} serves. */
const ECHO_MAX_READS = 1_000_000;

/**
 * Joins two clients (fresh identities) to the relay on `port`, connects the
 * second to the first's listener on virtual port `virtualPort`, and echoes.
 */
export async function startEchoPair(
  port: number,
  options: ConnectOptions = {},
  virtualPort = 7,
): Promise<EchoPair> {
  const join = (who: string) =>
    withTimeout(connect({ port, identity: randomIdentity(), ...options }), STEP_MS, who);
  const owner = await join("the echo owner to join");
  let requester: AlphaNetClient;
  try {
    requester = await join("the echo requester to join");
  } catch (error) {
    await owner.close();
    throw error;
  }
  let conn: VirtualConn;
  let ownerEnd: VirtualConn;
  try {
    const listener = owner.listen({ port: virtualPort });
    try {
      const accepting = listener.accept();
      conn = await withTimeout(
        requester.connect({ hostname: owner.virtualIp, port: virtualPort }),
        STEP_MS,
        "the echo requester to connect",
      );
      ownerEnd = await withTimeout(accepting, STEP_MS, "the echo owner to accept");
    } finally {
      listener.close();
    }
  } catch (error) {
    await requester.close();
    await owner.close();
    throw error;
  }
  const served = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let reads = 0; reads < ECHO_MAX_READS; reads++) {
        const count = await ownerEnd.read(buffer);
        if (count === null) return;
        await ownerEnd.write(buffer.slice(0, count));
      }
    } catch {
      // The link went away under the echo: the pair's own checks report that.
    } finally {
      ownerEnd.close();
    }
  })();
  let sent = 0;
  let closing: Promise<void> | null = null;
  return {
    owner,
    requester,
    conn,
    async assertEchoes(what: string): Promise<void> {
      const message = utf8(`echo #${++sent}: ${what}`);
      await withTimeout(conn.write(message), STEP_MS, `echo write (${what})`);
      const back = await withTimeout(readExactly(conn, message.length), STEP_MS, `echo (${what})`);
      assert.equal(text(back), text(message), `the echo pair (${what})`);
    },
    close(): Promise<void> {
      closing ??= (async () => {
        conn.close();
        await withTimeout(served, STEP_MS, "the echo owner to finish");
        await requester.close();
        await owner.close();
      })();
      return closing;
    },
  };
}

/** How a raw TCP link to the relay ended, as seen by {@linkcode readLinkToEnd}. */
export interface LinkOutcome {
  /** Types of every packet received, in order. */
  readonly types: number[];
  /** The first Error frame received, if any. */
  readonly error: ErrorPacket | null;
  /** Packets received after the first Error frame (the relay must send none). */
  readonly afterError: number;
  /** "eof" for a clean close, "reset" for a reset, "closed" if the test closed it first. */
  readonly ending: "eof" | "reset" | "closed";
  /** Why the relay's bytes could not be decoded, or null (the relay must always be decodable). */
  readonly decodeError: string | null;
  /** Bytes received in all. */
  readonly bytes: number;
}

/**
 * Reads a raw link until it ends, decoding every frame, without keeping
 * payloads: for many links at once (a 512-byte buffer each). Fails if more
 * than `limit` bytes arrive, which bounds the loop.
 */
export async function readLinkToEnd(
  conn: Deno.Conn,
  limit: number = 16 * 1024 * 1024,
): Promise<LinkOutcome> {
  const decoder = new FrameDecoder();
  const buffer = new Uint8Array(512);
  const types: number[] = [];
  let error: ErrorPacket | null = null;
  let afterError = 0;
  let decodeError: string | null = null;
  let bytes = 0;
  let ending: LinkOutcome["ending"] = "eof";
  const onPacket = (packet: Packet): void => {
    types.push(packet.type);
    if (error !== null) afterError++;
    else if (packet.type === PacketType.Error) error = { ...packet };
  };
  try {
    for (let reads = 0; reads <= limit; reads++) {
      const count = await conn.read(buffer);
      if (count === null) break;
      bytes += count;
      if (bytes > limit) throw new Error(`readLinkToEnd: more than ${limit} bytes arrived`);
      if (decodeError === null) {
        try {
          decoder.push(buffer.subarray(0, count), onPacket);
        } catch (cause) {
          decodeError = String(cause);
        }
      }
    }
  } catch (cause) {
    if (cause instanceof Deno.errors.ConnectionReset) ending = "reset";
    else if (
      cause instanceof Deno.errors.BadResource || cause instanceof Deno.errors.Interrupted
    ) {
      ending = "closed";
    } else throw cause;
  }
  return { types, error, afterError, ending, decodeError, bytes };
}
