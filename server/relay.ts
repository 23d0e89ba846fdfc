/**
 * The relay: accepts clients over TCP (or TLS) and, when asked, WebSocket,
 * runs a session for each, and owns what they share: the registry, the
 * router, and the membership that joins sessions into the router and lets
 * them go.
 *
 * @module
 */

import { encode } from "../protocol/codec.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason } from "../protocol/reason.ts";
import { AddressPool } from "./address_pool.ts";
import {
  type RelayConfig,
  relayNodeName,
  type RelayOptions,
  resolveRelayConfig,
} from "./config.ts";
import { type RelayCarrier, streamCarrier } from "./carrier.ts";
import { writeAll } from "../transport/frame_writer.ts";
import {
  listenRelay,
  listenWebSocket,
  type RelayConn,
  type RelayListener,
  setNoDelay,
} from "./listen.ts";
import { Logger } from "./log.ts";
import { RateLimitedLog } from "./log_limiter.ts";
import { Membership } from "./membership.ts";
import { formatMetrics, RelayMetrics } from "./metrics.ts";
import { OpsEndpoint, type OpsSource } from "./ops_endpoint.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { type StatusSnapshot, TrafficRing } from "./status_page.ts";
import { hexOf } from "./registry_key.ts";
import { PostgresRegistry } from "./registry_postgres.ts";
import { type RegistryStore, SqliteRegistryStore } from "./registry_store.ts";
import { Router } from "./router.ts";
import { RelayCluster } from "./cluster/relay_cluster.ts";
import type { Mesh } from "./mesh/mesh.ts";
import { ClientSession, type SessionContext } from "./session.ts";
import { SourceLimits } from "./source_limits.ts";
import { WebSocketCarrier } from "./websocket_conn.ts";

/** Longest pause between two sweeps over time-outs. */
const MAX_SWEEP_INTERVAL_MS = 1000;

/** Sweeps often enough that every time-out fires within a quarter of its length. */
function sweepInterval(config: RelayConfig): number {
  const timeouts = [
    config.requestTimeoutMs,
    config.keepaliveMs,
    config.peerTimeoutMs,
    config.frameTimeoutMs,
  ];
  if (config.socketIdleTimeoutMs > 0) timeouts.push(config.socketIdleTimeoutMs);
  return Math.max(1, Math.min(MAX_SWEEP_INTERVAL_MS, ...timeouts.map((ms) => Math.ceil(ms / 4))));
}

/** Turns a TCP (or TLS) link away before any session exists for it: one Error frame, then close. */
async function refuse(carrier: RelayCarrier, reason: Reason, message: string): Promise<void> {
  // Over TLS the write waits for the client's handshake: one that never comes must not keep the link.
  const timer = setTimeout(() => void carrier.close(reason, message), REFUSAL_WRITE_MS);
  const frame = encode({ type: PacketType.Error, reason, message });
  try {
    await writeAll(carrier, frame);
  } catch {
    // The peer is gone already.
  } finally {
    clearTimeout(timer);
    await carrier.close(reason, message);
  }
}

/** How often the status page's traffic chart samples relayed bytes. */
const TRAFFIC_SAMPLE_MS = 5000;
/** Samples the chart keeps: five minutes at one per five seconds. */
const TRAFFIC_SAMPLES = 60;

/** How long a refused link may take to receive its Error frame. */
const REFUSAL_WRITE_MS = 1000;

/**
 * How long a refused WebSocket link may take to complete its upgrade and
 * receive its Error frame and close: a TLS handshake, the HTTP request and
 * the answer are a few round trips more than a TCP link's one write.
 */
const WEBSOCKET_REFUSAL_MS = 2000;

/**
 * WebSocket links being turned away at once, at most: each may hold its
 * request head (up to 8 KiB) until its deadline. Beyond, a link is closed
 * without a word.
 */
const MAX_WEBSOCKET_REFUSALS = 1024;

/**
 * A running AlphaNET relay: get one from {@linkcode Relay.start}, end it with
 * {@linkcode Relay.close} (or `await using`).
 *
 * @example Start a relay on a free port with an in-memory registry
 * ```ts
 * import { Relay } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
 * assert.notEqual(relay.addr.port, 0);
 * assert.equal(relay.onlineCount, 0);
 * ```
 */
export class Relay implements AsyncDisposable {
  // Static after construction.
  readonly #config: RelayConfig;
  readonly #listener: RelayListener;
  /** The WebSocket carrier's listener, when `websocketPort` asks for one. */
  readonly #websocketListener: RelayListener | null;
  readonly #registry: RegistryStore;
  readonly #router: Router;
  /** The relay links and NATS presence, when the relay is part of a cluster. */
  readonly #cluster: RelayCluster | null;
  /** What every session gets: one object, rather than a `.finally()` closure per session. */
  readonly #context: SessionContext;
  readonly #sweepTimer: ReturnType<typeof setInterval>;
  /** The accept loops of the relay port and of the WebSocket port. */
  readonly #acceptLoops: Promise<void>[];
  /** Refusals a remote party can cause at will: logged within a budget. */
  readonly #refusalLog: RateLimitedLog;
  /** Counters for `/metrics`, bumped by the membership, the data plane and the requests. */
  readonly #metrics = new RelayMetrics();
  /** The operations endpoint, when `adminPort` asks for one. */
  #ops: OpsEndpoint | null = null;
  /** relayed_bytes_total sampled for the status page's chart, while the endpoint runs. */
  readonly #traffic = new TrafficRing(TRAFFIC_SAMPLES);
  #trafficTimer: ReturnType<typeof setInterval> | null = null;

  // Owned by the accept loop, the sessions' ends and close().
  /** Every open link, handshake done or not, with the promise its run() settles when it ends. */
  readonly #sessions = new Map<ClientSession, Promise<void>>();
  /** Links being turned away (ServerFull), awaited on shutdown. */
  readonly #refusals = new Set<Promise<void>>();
  /** Of those, WebSocket links (capped: see MAX_WEBSOCKET_REFUSALS). */
  #websocketRefusals = 0;
  /** Links that have not completed their handshake, oldest first: the first to go when full. */
  readonly #handshaking = new Set<ClientSession>();
  /** Links, handshakes and the request rate per source IP. */
  readonly #sources: SourceLimits;
  #closing: Promise<void> | null = null;

  /**
   * The last line of defence: a rejection nobody handled is a relay bug, and
   * one bug must cost a log line, not every client's link. Installed while
   * the relay runs, when `guardRejections` asks for it.
   */
  readonly #onUnhandledRejection = (event: PromiseRejectionEvent): void => {
    event.preventDefault();
    const reason = event.reason;
    this.#context.log.log("error", "unhandled-rejection", {
      error: reason instanceof Error ? (reason.stack ?? String(reason)) : String(reason),
    });
  };

  /**
   * The same for an exception thrown outside any promise, e.g. from a timer
   * of a dependency: npm:postgres 3.4.9 throws one when a database connection
   * dies mid-transaction. The call that used it fails on its own deadline.
   */
  readonly #onUncaughtError = (event: ErrorEvent): void => {
    event.preventDefault();
    const error = event.error;
    this.#context.log.log("error", "uncaught-error", {
      error: error instanceof Error
        ? (error.stack ?? String(error))
        : String(error ?? event.message),
    });
  };

  private constructor(
    config: RelayConfig,
    listener: RelayListener,
    websocketListener: RelayListener | null,
    log: Logger,
    registry: RegistryStore,
    cluster: RelayCluster | null,
  ) {
    this.#config = config;
    this.#listener = listener;
    this.#websocketListener = websocketListener;
    this.#registry = registry;
    this.#router = new Router(config, log, this.#metrics);
    this.#cluster = cluster;
    // Before any client joins: every join is announced to the cluster.
    cluster?.join(this.#router);
    this.#refusalLog = new RateLimitedLog(log);
    this.#sources = new SourceLimits(config);
    this.#context = {
      config,
      log,
      host: new Membership(log, registry, this.#router, {
        refusals: this.#refusalLog,
        newIdentities: this.#sources,
        ipIdentities: config.ipIdentities,
        join: config.join,
        metrics: this.#metrics,
      }),
      joined: (session) => {
        if (this.#handshaking.delete(session)) this.#sources.handshakeDone(session.source);
      },
      ended: (session) => {
        this.#sessions.delete(session);
        this.#sources.release(session.source, this.#handshaking.delete(session));
      },
    };
    if (config.guardRejections) {
      globalThis.addEventListener("unhandledrejection", this.#onUnhandledRejection);
      globalThis.addEventListener("error", this.#onUncaughtError);
    }
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepInterval(config));
    this.#acceptLoops = [this.#accept(listener, false)];
    if (websocketListener !== null) this.#acceptLoops.push(this.#accept(websocketListener, true));
  }

  /**
   * Opens the registry and starts listening. Throws `RangeError` on a bad
   * option, and the registry's or `Deno.listen`'s error if either cannot
   * open (an address in use, a registry another relay holds).
   *
   * @example A relay for a test: loopback, a free port, no file
   * ```ts
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * const relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
   * assert.equal(relay.addr.hostname, "127.0.0.1");
   * await relay.close();
   * ```
   *
   * @param options Any subset of the settings; the rest take their defaults.
   * @returns The running relay.
   */
  static async start(options: RelayOptions = {}): Promise<Relay> {
    const config: RelayConfig = resolveRelayConfig(options);
    const pool = config.vipRange === null
      ? AddressPool.default()
      : AddressPool.fromCidr(config.vipRange);
    // A SQLite file is held before anything listens: a second relay on it changes nothing.
    const sqlite = config.registry === null
      ? SqliteRegistryStore.open(config.db, pool, {
        exclusive: true,
        addressTtlMs: config.addressTtlMs,
      })
      : null;
    let listener: RelayListener;
    let websocketListener: RelayListener | null = null;
    try {
      listener = listenRelay(config);
    } catch (error) {
      await sqlite?.close();
      throw error;
    }
    let registry: RegistryStore | null = sqlite;
    let mesh: Mesh | null = null;
    let cluster: RelayCluster | null = null;
    const log = new Logger(config.logLevel, config.logFormat);
    try {
      if (config.websocketPort !== null) websocketListener = listenWebSocket(config);
      mesh = await RelayCluster.listen(config, log);
      // PostgreSQL, shared: this relay's online marks carry its node name, known once it listens.
      registry ??= await PostgresRegistry.open(config.registry!, pool, {
        node: relayNodeName(config, listener.addr.port, mesh?.addr.port ?? null),
        addressTtlMs: config.addressTtlMs,
        log,
      });
      // Nothing is online here before the relay listens, even after a crash.
      await registry.markAllOffline();
      // The NATS subjects are the network's: its id comes from the shared registry.
      if (mesh !== null) {
        cluster = await RelayCluster.connect(mesh, config, hexOf(registry.relayId), log);
      }
    } catch (error) {
      listener.close();
      websocketListener?.close();
      if (cluster === null) await mesh?.close();
      await registry?.close();
      throw error;
    }
    const relay = new Relay(config, listener, websocketListener, log, registry, cluster);
    if (config.adminPort === null) return relay;
    try {
      relay.#ops = OpsEndpoint.start(relay.#opsSource(), config.adminHostname, config.adminPort);
      relay.#trafficTimer = setInterval(
        () => relay.#traffic.sample(relay.#metrics.relayedBytes),
        TRAFFIC_SAMPLE_MS,
      );
      // Never what keeps the process alive; #shutdown clears it.
      Deno.unrefTimer(relay.#trafficTimer);
    } catch (error) {
      // A relay its operator cannot watch as asked does not start.
      await relay.close();
      throw error;
    }
    return relay;
  }

  /**
   * The address of the operations endpoint (`/livez`, `/readyz`,
   * `/metrics`), with the real port; null when `adminPort` was not given.
   *
   * @example No endpoint unless asked for
   * ```ts
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
   * assert.equal(relay.adminAddr, null);
   * ```
   */
  get adminAddr(): Deno.NetAddr | null {
    return this.#ops?.addr ?? null;
  }

  /**
   * The address of the relay-link port, with the real port, when the relay
   * is part of a cluster (`nats`, `meshPort`, `meshKey`); null otherwise.
   *
   * @example A lone relay has no relay-link port
   * ```ts
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
   * assert.equal(relay.meshAddr, null);
   * ```
   */
  get meshAddr(): Deno.NetAddr | null {
    return this.#cluster?.mesh.addr ?? null;
  }

  /** What the operations endpoint reads: readiness and the metrics text. */
  #opsSource(): OpsSource {
    return {
      ready: async () => {
        if (this.#closing !== null) return false;
        try {
          await this.#registry.get(0); // an indexed read of an address never assigned
          return true;
        } catch {
          return false;
        }
      },
      metricsText: () =>
        formatMetrics(this.#metrics, {
          clientsOnline: this.#router.onlineCount,
          connectionsOpen: this.#router.connectionsOpen,
          bufferedBytes: this.#router.bufferedBytes,
          bufferedBytesLimit: this.#config.maxBufferedBytes,
          ...(this.#cluster === null ? {} : {
            cluster: {
              links: this.#cluster.mesh.linkCount,
              remoteClients: this.#router.remoteCount,
              natsConnected: this.#cluster.presence.connected,
            },
          }),
        }),
      status: () => this.#status(),
    };
  }

  /** The status page's snapshot: online clients by virtual IP, connections, traffic, refusals. */
  #status(): StatusSnapshot {
    // Every peer of this relay is one of its sessions; the fallback only satisfies the type.
    const fallback = this.#config.tls === null ? "tcp" : "tls";
    const clients = [...this.#router.online()]
      .sort((a, b) => a.peer.address - b.peer.address)
      .map((book) => ({
        virtualIp: formatIpv4(book.peer.address),
        carrier: book.peer instanceof ClientSession ? book.peer.carrier : fallback,
        since: new Date(book.joinedAt).toISOString(),
        bytesRelayed: book.relayedBytes,
      } as const));
    const refusals = [...this.#metrics.refusals].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
    return {
      now: new Date().toISOString(),
      clients,
      connectionsOpen: this.#router.connectionsOpen,
      sampleIntervalSeconds: TRAFFIC_SAMPLE_MS / 1000,
      traffic: this.#traffic.values(),
      refusals: Object.fromEntries(refusals),
    };
  }

  /**
   * The address the relay listens on, with the real port (the one picked
   * when started with port 0).
   *
   * @example Tell clients where to connect
   * ```ts
   * import { connect } from "@alphanet/net";
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
   * const { hostname, port } = relay.addr;
   * await using net = await connect({ hostname, port });
   * assert.equal(net.state, "connected");
   * ```
   */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /**
   * The address of the WebSocket carrier (`ws://HOST:PORT/`, or `wss://`
   * when the relay serves TLS), with the real port; null when
   * `websocketPort` was not given.
   *
   * @example Serve WebSocket clients beside TCP ones
   * ```ts
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * await using relay = await Relay.start({
   *   hostname: "127.0.0.1",
   *   port: 0,
   *   websocketPort: 0,
   *   db: ":memory:",
   * });
   * assert.notEqual(relay.websocketAddr?.port, 0);
   * const url = `ws://127.0.0.1:${relay.websocketAddr!.port}/`;
   * assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/$/);
   * ```
   */
  get websocketAddr(): Deno.NetAddr | null {
    return this.#websocketListener?.addr ?? null;
  }

  /**
   * Clients that completed the handshake and are online.
   *
   * @example Count a client in
   * ```ts
   * import { connect } from "@alphanet/net";
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
   * await using _net = await connect({ hostname: "127.0.0.1", port: relay.addr.port });
   * assert.equal(relay.onlineCount, 1);
   * ```
   */
  get onlineCount(): number {
    return this.#router.onlineCount;
  }

  /**
   * The relay's id as 64 lowercase hex digits: the id every Challenge
   * carries, made once per registry file (new at every start with
   * `db: ":memory:"`). Clients see it as `AlphaNetClient.relayId`; an
   * operator can publish it for clients to pin.
   *
   * @example The id a client sees is the relay's
   * ```ts
   * import { connect } from "@alphanet/net";
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
   * await using net = await connect({ hostname: "127.0.0.1", port: relay.addr.port });
   * assert.match(relay.relayId, /^[0-9a-f]{64}$/);
   * assert.equal(net.relayId, relay.relayId);
   * ```
   */
  get relayId(): string {
    return hexOf(this.#registry.relayId);
  }

  /**
   * Links open (TCP and WebSocket), handshake done or not: at least
   * {@linkcode Relay.onlineCount}.
   *
   * @example No links before anyone connects
   * ```ts
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
   * assert.equal(relay.linkCount, 0);
   * ```
   */
  get linkCount(): number {
    return this.#sessions.size;
  }

  /**
   * Stops accepting, tells every client the relay is shutting down (an Error
   * frame with reason `Shutdown`), closes the registry. Idempotent.
   *
   * @example Close with a client on it
   * ```ts
   * import { connect } from "@alphanet/net";
   * import { Relay } from "@alphanet/net/server";
   * import assert from "node:assert/strict";
   *
   * const relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
   * await using _net = await connect({ hostname: "127.0.0.1", port: relay.addr.port });
   * await relay.close();
   * assert.equal(relay.linkCount, 0);
   * ```
   *
   * @returns A promise that resolves once every link and the registry are closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /**
   * Same as {@linkcode Relay.close}, for `await using`.
   *
   * @returns A promise that resolves once the relay is closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * The periodic pass over all state that time can expire: requests nobody
   * answered, clients gone silent, connections gone idle.
   */
  #sweep(): void {
    const now = performance.now();
    try {
      this.#router.expireRequests(now);
      for (const session of this.#sessions.keys()) session.checkLiveness(now);
      if (this.#config.socketIdleTimeoutMs > 0) this.#router.closeIdleConnections(now);
      this.#refusalLog.report(now);
    } catch (error) {
      // A timer callback that throws would end the process; the next sweep tries again.
      this.#context.log.log("error", "internal-error", { during: "sweep", error: String(error) });
    }
  }

  /**
   * Accepts links from `listener` until it closes: relay-port links when
   * `websocket` is false, WebSocket links when true. Both kinds count against
   * the same limits, per source IP and relay-wide.
   */
  async #accept(listener: RelayListener, websocket: boolean): Promise<void> {
    try {
      for await (const conn of listener) {
        const ip = conn.remoteAddr.hostname;
        const source = this.#sources.admit(ip);
        if (typeof source === "string") {
          this.#turnAway(this.#carrierFor(conn, websocket), ip, source);
          continue;
        }
        setNoDelay(conn);
        const carrier = this.#carrierFor(conn, websocket);
        if (this.#sessions.size >= this.#config.maxClients && !this.#evictOldestHandshake()) {
          this.#sources.release(source, true);
          this.#turnAway(carrier, ip, "Cannot join: the relay has as many clients as it allows");
          continue;
        }
        this.#context.log.log("debug", "link", { client: ip, carrier: carrier.kind });
        const session = new ClientSession(carrier, this.#context, source);
        this.#handshaking.add(session);
        this.#sessions.set(session, session.run());
      }
    } catch (error) {
      if (this.#closing === null) {
        this.#context.log.log("error", "accept-failed", { error: String(error) });
      }
    }
  }

  /**
   * Makes room for a new link in a full relay by closing the oldest link
   * still in its handshake: links that never say Hello can thus never keep
   * joined clients, or new ones that do say it, out. False if every link
   * has joined (the new one is then refused).
   */
  #evictOldestHandshake(): boolean {
    const oldest = this.#handshaking.values().next();
    if (oldest.done) return false;
    const session = oldest.value;
    this.#handshaking.delete(session);
    this.#sources.handshakeDone(session.source);
    // Counted as a refusal when its close reaches the membership (a link that never joined).
    this.#refusalLog.log("warn", "link-evicted", { client: session.realIp, reason: "ServerFull" });
    void session.close(
      Reason.ServerFull,
      "Cannot join: the relay is full and your link had not completed its handshake",
    );
    return true;
  }

  /** An accepted connection as the carrier its port serves. */
  #carrierFor(conn: RelayConn, websocket: boolean): RelayCarrier {
    const tls = this.#config.tls !== null;
    if (websocket) return new WebSocketCarrier(conn, tls ? "wss" : "ws", this.#context.log);
    return streamCarrier(
      conn,
      tls ? "tls" : "tcp",
      () =>
        this.#context.log.log("debug", "tls-on-plain-relay", { client: conn.remoteAddr.hostname }),
    );
  }

  /** Refuses a link before any session exists for it (ServerFull), and logs it within a budget. */
  #turnAway(carrier: RelayCarrier, ip: string, message: string): void {
    let refusal: Promise<void>;
    if (carrier instanceof WebSocketCarrier) {
      if (this.#websocketRefusals >= MAX_WEBSOCKET_REFUSALS) {
        // Each holds up to a request head: past the cap, no word rather than more memory.
        void carrier.close(Reason.PeerDisconnected, "");
      } else {
        this.#websocketRefusals++;
        const error = encode({ type: PacketType.Error, reason: Reason.ServerFull, message });
        refusal = carrier.refuse(Reason.ServerFull, message, error, WEBSOCKET_REFUSAL_MS)
          .finally(() => {
            this.#websocketRefusals--;
            this.#refusals.delete(refusal);
          });
        this.#refusals.add(refusal);
      }
    } else {
      refusal = refuse(carrier, Reason.ServerFull, message)
        .finally(() => this.#refusals.delete(refusal));
      this.#refusals.add(refusal);
    }
    this.#metrics.refused("ServerFull");
    this.#refusalLog.log("warn", "link-refused", {
      client: ip,
      carrier: carrier.kind,
      reason: "ServerFull",
      message,
    });
  }

  async #shutdown(): Promise<void> {
    for (const listener of [this.#listener, this.#websocketListener]) {
      try {
        listener?.close();
      } catch {
        // Already closed.
      }
    }
    await Promise.all(this.#acceptLoops);
    clearInterval(this.#sweepTimer);
    if (this.#trafficTimer !== null) clearInterval(this.#trafficTimer);
    // First out of the cluster: other relays find this one's clients nowhere from now on.
    await this.#cluster?.close();
    for (const session of this.#sessions.keys()) {
      void session.close(Reason.Shutdown, "the relay is shutting down");
    }
    await Promise.all([...this.#sessions.values(), ...this.#refusals]);
    await this.#registry.close();
    await this.#ops?.close();
    globalThis.removeEventListener("unhandledrejection", this.#onUnhandledRejection);
    globalThis.removeEventListener("error", this.#onUncaughtError);
  }
}
