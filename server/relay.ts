/**
 * The relay: accepts TCP clients, runs a session for each, and owns the
 * registry and the router they share.
 *
 * @module
 */

import { Reason } from "../protocol/constants.ts";
import { AddressPool } from "./address_pool.ts";
import { type RelayConfig, type RelayOptions, resolveRelayConfig } from "./config.ts";
import { Logger } from "./log.ts";
import { Registry } from "./registry.ts";
import { Router } from "./router.ts";
import { ClientSession, type SessionContext } from "./session.ts";

/** Longest pause between two checks for timed-out requests. */
const MAX_SWEEP_INTERVAL_MS = 1000;

/**
 * A running AlphaNET relay.
 *
 * @example Start a relay on a free port with an in-memory registry
 * ```ts ignore
 * import { Relay } from "@alphanet/net/server";
 * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
 * console.log(relay.addr.port);
 * ```
 */
export class Relay implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #context: SessionContext;
  /** Every open link, handshake done or not, with the promise its run() settles when it ends. */
  readonly #sessions = new Map<ClientSession, Promise<void>>();
  readonly #sweepTimer: ReturnType<typeof setInterval>;
  readonly #acceptLoop: Promise<void>;
  #closing: Promise<void> | null = null;

  private constructor(listener: Deno.TcpListener, shared: Omit<SessionContext, "ended">) {
    this.#listener = listener;
    // One callback for every session, rather than a `.finally()` closure per session.
    this.#context = { ...shared, ended: (session) => this.#sessions.delete(session) };
    const { config, router } = shared;
    const sweepMs = Math.min(MAX_SWEEP_INTERVAL_MS, Math.ceil(config.requestTimeoutMs / 4));
    this.#sweepTimer = setInterval(() => router.expireRequests(performance.now()), sweepMs);
    this.#acceptLoop = this.#accept();
  }

  /** Opens the registry and starts listening. */
  static start(options: RelayOptions = {}): Promise<Relay> {
    const config: RelayConfig = resolveRelayConfig(options);
    const pool = config.vipRange === null
      ? AddressPool.default()
      : AddressPool.fromCidr(config.vipRange);
    const registry = Registry.open(config.db, pool);
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({
        hostname: config.hostname,
        port: config.port,
        transport: "tcp",
        tcpBacklog: config.tcpBacklog,
      } as Deno.TcpListenOptions);
    } catch (error) {
      registry.close();
      throw error;
    }
    const log = new Logger(config.logLevel);
    const router = new Router(config, log);
    return Promise.resolve(new Relay(listener, { config, log, registry, router }));
  }

  /** The address the relay listens on, with the real port. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** Clients that completed the handshake and are online. */
  get onlineCount(): number {
    return this.#context.router.onlineCount;
  }

  /** TCP links open, handshake done or not. */
  get linkCount(): number {
    return this.#sessions.size;
  }

  /** Stops accepting, tells every client the relay is shutting down, closes the registry. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        conn.setNoDelay(true);
        const session = new ClientSession(conn, this.#context);
        this.#sessions.set(session, session.run());
      }
    } catch (error) {
      if (this.#closing === null) {
        this.#context.log.log("error", "accept-failed", { error: String(error) });
      }
    }
  }

  async #shutdown(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#acceptLoop;
    clearInterval(this.#sweepTimer);
    for (const session of this.#sessions.keys()) {
      void session.close(Reason.Shutdown, "the relay is shutting down");
    }
    await Promise.all(this.#sessions.values());
    this.#context.registry.close();
  }
}
