/**
 * The AlphaNET client: one TCP link to the relay, on which it opens
 * listeners and virtual connections.
 *
 * @module
 */

import { AddressChanged, Closed, ConnectionReset, TimedOut } from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { PacketType } from "../protocol/constants.ts";
import type { Packet } from "../protocol/packets.ts";
import {
  type AlphaNetClientEventMap,
  canMove,
  type ClientLifecycle,
  type ClientState,
  StateChangeEventImpl,
  visibleState,
} from "./client_state.ts";
import { Link, type LinkEvents, unexpected } from "./link.ts";
import { type ClientConfig, type ClientOptions, resolveClientConfig } from "./options.ts";
import { isFatal, Reconnector } from "./reconnect.ts";
import { Requester } from "./requester.ts";
import { Responder } from "./responder.ts";
import type {
  SocketStatus,
  VirtualConnectOptions,
  VirtualListenOptions,
  VirtualPingOptions,
} from "./socket_options.ts";
import { SocketTable } from "./socket_table.ts";
import { TimedWaiters } from "./timed_waiters.ts";
import type { VirtualConn } from "./virtual_conn.ts";
import type { VirtualListener } from "./virtual_listener.ts";

/** How long close() waits for the last frames to reach the relay. */
const CLOSE_FLUSH_MS = 1000;

/**
 * A client connected to an AlphaNET relay, holding its permanent virtual IP.
 * Its `listen` and `connect` mirror `Deno.listen` and `Deno.connect`. Get one
 * from {@linkcode connect}.
 *
 * If the link to the relay drops, the client reconnects by itself (see the
 * `reconnect` option): open connections and requests in flight fail with
 * `ConnectionReset`, listeners stay bound and accept again once the link is
 * back, under the same virtual IP. `state` and the `statechange` event
 * report where it is; `closed` resolves when it ends for good.
 *
 * @example Serve and connect on one client
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * using listener = net.listen({ port: 7 });
 * assert.equal(listener.addr.hostname, net.virtualIp);
 * assert.deepEqual(await net.status({ hostname: net.virtualIp, port: 7 }), {
 *   online: true,
 *   listening: true,
 * });
 * ```
 */
export interface AlphaNetClient extends EventTarget, AsyncDisposable, Disposable {
  /** This client's permanent virtual IPv4, dotted quad; the same across reconnects. */
  readonly virtualIp: string;
  /** `"connected"`, `"reconnecting"` or `"closed"`; changes are dispatched as `statechange`. */
  readonly state: ClientState;
  /**
   * Resolves when the client ends for good: null after close(), else the
   * error that ended it (`Replaced`, another fatal `RelayError`,
   * `AddressChanged`, the link error when reconnect is off, or a
   * `ConnectionReset` once reconnect attempts ran out).
   */
  readonly closed: Promise<Error | null>;

  /**
   * Adds a listener; `statechange` listeners get a `StateChangeEvent`.
   *
   * @param type The event type.
   * @param listener Called with each event of that type.
   * @param options Standard listener options.
   */
  addEventListener<K extends keyof AlphaNetClientEventMap>(
    type: K,
    listener: (this: AlphaNetClient, event: AlphaNetClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Adds a listener for any event type.
   *
   * @param type The event type.
   * @param listener Called with each event of that type.
   * @param options Standard listener options.
   */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Removes a listener added with `addEventListener`.
   *
   * @param type The event type.
   * @param listener The listener to remove.
   * @param options Standard listener options.
   */
  removeEventListener<K extends keyof AlphaNetClientEventMap>(
    type: K,
    listener: (this: AlphaNetClient, event: AlphaNetClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Removes a listener for any event type.
   *
   * @param type The event type.
   * @param listener The listener to remove.
   * @param options Standard listener options.
   */
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;

  /**
   * Listens on a virtual port. Nothing is sent: the relay asks this client
   * when someone connects. Works while reconnecting too (the listener
   * accepts once the link is back).
   *
   * @param options The port, and optionally an accept filter and a backlog.
   * @returns The listener; throws `AddrInUse` if the port is taken,
   * `RangeError` on a bad port or backlog, `Closed` once the client is closed.
   */
  listen(options: VirtualListenOptions): VirtualListener;
  /**
   * Opens a virtual connection in two steps: a status request, then a
   * connection request. Rejects with `HostUnreachable` if no client owns that
   * address, `ConnectionRefused` if nothing listens or the owner denies,
   * `TimedOut` if the owner does not answer, `RelayError` if the relay
   * refuses the request (rate limit, too many requests or connections), and
   * `ConnectionReset` if the link drops meanwhile. While reconnecting, it
   * first waits up to `requestTimeoutMs` for the link (then `TimedOut`).
   *
   * @param options The virtual IP and port to connect to.
   * @returns The open connection.
   */
  connect(options: VirtualConnectOptions): Promise<VirtualConn>;
  /**
   * Asks whether a virtual IP is online and listens on a port, without
   * connecting. While reconnecting, it first waits for the link like
   * `connect()`. Rejects like `connect()`'s first step, except that an
   * offline host is an answer (`online: false`), not an error.
   *
   * @param options The virtual IP and port to ask about.
   * @returns Whether the host is online and whether it listens on the port.
   */
  status(options: VirtualConnectOptions): Promise<SocketStatus>;
  /**
   * Measures the round-trip time to another client through the relay: the
   * relay forwards an EchoRequest, which every client answers on its own.
   * Rejects with `HostUnreachable` if no client owns that address,
   * `TimedOut` if it does not answer, `RelayError` if the relay refuses.
   *
   * @example Ping this client itself
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const ms = await net.ping({ hostname: net.virtualIp });
   * assert.ok(ms >= 0);
   * ```
   *
   * @param options The virtual IP to ping.
   * @returns The round-trip time in milliseconds.
   */
  ping(options: VirtualPingOptions): Promise<number>;
  /** Lets the client keep the process alive again (the default); see {@linkcode AlphaNetClient.unref}. */
  ref(): void;
  /**
   * Stops the client itself from keeping the process alive. Its TCP link to
   * the relay (the pending read, the keepalive and reconnect timers) is what
   * keeps a process alive; the client lets go of it once the client, every
   * listener and every open connection are unref'd. A call in progress
   * (`connect`, `status`, `ping`, a reconnect attempt) still holds the
   * process until it settles.
   */
  unref(): void;
  /**
   * Closes every connection and listener, then the link; stops
   * reconnecting. Idempotent.
   *
   * @returns A promise that resolves once everything is closed.
   */
  close(): Promise<void>;
  /**
   * Same as {@linkcode AlphaNetClient.close}, for `await using`.
   *
   * @returns A promise that resolves once everything is closed.
   */
  [Symbol.asyncDispose](): Promise<void>;
  /** Starts {@linkcode AlphaNetClient.close} without waiting for it, for `using`. */
  [Symbol.dispose](): void;
}

/** The implementation of {@linkcode AlphaNetClient}. */
export class AlphaNetClientImpl extends EventTarget implements AlphaNetClient {
  // Static after construction.
  readonly #config: ClientConfig;
  readonly #reconnector: Reconnector | null;
  readonly #events: LinkEvents;
  /** The virtual IP, fixed by the first link; 0 until then. */
  #address = 0;

  // The current link, null while reconnecting or closed.
  #link: Link | null = null;

  // Owned by the read loop and the public methods.
  readonly #sockets: SocketTable;
  readonly #requester: Requester;
  readonly #responder: Responder;
  /** Calls waiting for the link to come back. */
  readonly #linkWaiters = new TimedWaiters<Link>();

  // Lifecycle: one state (transitions in client_state.ts); "connected" from the start, as nobody
  // sees the client before its first link joined. The rest is what the states report.
  #state: ClientLifecycle = "connected";
  /** Why the client is closed: the fatal error, or Closed after close(); set with "closed". */
  #failure: Error | null = null;
  /** close()'s teardown, set with "closing", so close() is idempotent. */
  #closing: Promise<void> | null = null;
  readonly #done = Promise.withResolvers<Error | null>();
  /** Whether the client itself keeps the process alive (see unref). */
  #refd = true;

  private constructor(config: ClientConfig) {
    super();
    this.#config = config;
    this.#events = {
      joined: (link, address) => this.#onJoined(link, address),
      packet: (link, packet) => this.#onPacket(link, packet),
      ended: (link, error) => this.#onLinkEnded(link, error),
    };
    this.#sockets = new SocketTable(config, () => this.#applyRef());
    this.#requester = new Requester(config, this.#sockets, {
      address: () => this.#address,
      linkReady: (action) => this.#linkReady(action),
    });
    this.#responder = new Responder(this.#sockets, config.window, {
      address: () => this.#address,
      isCurrent: (link) => this.#link === link,
    });
    this.#reconnector = config.reconnect === null ? null : new Reconnector(
      config.reconnect,
      async (signal) => {
        await Link.open(this.#config, this.#events, signal);
      },
      (error) => this.#finish(error),
    );
  }

  /** Connects to the relay and waits for the VirtualIP; no retry. See {@linkcode connect}. */
  static async open(options: ClientOptions = {}): Promise<AlphaNetClientImpl> {
    const client = new AlphaNetClientImpl(resolveClientConfig(options));
    await Link.open(client.#config, client.#events);
    return client;
  }

  get virtualIp(): string {
    return formatIpv4(this.#address);
  }

  get state(): ClientState {
    return visibleState(this.#state);
  }

  get closed(): Promise<Error | null> {
    return this.#done.promise;
  }

  override addEventListener<K extends keyof AlphaNetClientEventMap>(
    type: K,
    listener: (this: AlphaNetClient, event: AlphaNetClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
  }

  override removeEventListener<K extends keyof AlphaNetClientEventMap>(
    type: K,
    listener: (this: AlphaNetClient, event: AlphaNetClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
  }

  listen(options: VirtualListenOptions): VirtualListener {
    this.#checkOpen("listen");
    return this.#sockets.listen(options);
  }

  connect(options: VirtualConnectOptions): Promise<VirtualConn> {
    return this.#requester.connect(options);
  }

  status(options: VirtualConnectOptions): Promise<SocketStatus> {
    return this.#requester.status(options);
  }

  ping(options: VirtualPingOptions): Promise<number> {
    return this.#requester.ping(options);
  }

  ref(): void {
    this.#refd = true;
    this.#applyRef();
  }

  unref(): void {
    this.#refd = false;
    this.#applyRef();
  }

  close(): Promise<void> {
    if (this.#closing === null) {
      if (this.#state !== "closed") this.#moveTo("closing", null);
      this.#closing = this.#shutdown();
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [Symbol.dispose](): void {
    void this.close();
  }

  /**
   * The one place the state changes: checks the transition, then reports
   * every visible change as a `statechange` ("closing" reads as "closed",
   * whose event comes at the end of the teardown).
   */
  #moveTo(to: ClientLifecycle, error: Error | null): void {
    const from = this.#state;
    if (from === to) return;
    if (!canMove(from, to)) throw new Error(`Cannot move the client from ${from} to ${to}`);
    this.#state = to;
    if (to !== "closing") this.dispatchEvent(new StateChangeEventImpl(to, error));
  }

  /** A link got its VirtualIP: adopt it if the address is ours, else refuse it (fatal). */
  #onJoined(link: Link, address: number): void {
    if (this.#state === "closing" || this.#state === "closed") {
      throw new Closed("Cannot join relay: the client is closed");
    }
    if (this.#address === 0) this.#address = address;
    else if (address !== this.#address) {
      throw new AddressChanged(formatIpv4(this.#address), formatIpv4(address));
    }
    this.#link = link;
    link.setRef(this.#keepsAlive());
    this.#sockets.attach(link, this.virtualIp);
    this.#linkWaiters.resolveAll(link);
    this.#moveTo("connected", null);
  }

  /** The current link ended by itself: fail what used it, then reconnect or close. */
  #onLinkEnded(link: Link, error: Error): void {
    if (link !== this.#link) return;
    this.#link = null;
    this.#sockets.detach();
    if (this.#state === "closing" || this.#state === "closed") return; // close() finishes the job.
    // Requests and connections die with the link; listeners stay, minus their dead backlog.
    this.#requester.failAll(
      new ConnectionReset(`Cannot complete request: the link to the relay was lost`, {
        cause: error,
      }),
    );
    this.#sockets.linkLost(error);
    if (this.#reconnector === null || isFatal(error)) return this.#finish(error);
    this.#moveTo("reconnecting", error);
    this.#reconnector.start(error);
  }

  /** Ends the client for good: null after close(), else the error. */
  #finish(error: Error | null): void {
    if (this.#state === "closed") return;
    const reason = error ?? new Closed("The client is closed");
    this.#failure = reason;
    this.#requester.failAll(reason);
    this.#sockets.shutdown(reason);
    this.#linkWaiters.rejectAll(reason);
    this.#done.resolve(error);
    this.#moveTo("closed", error);
  }

  /** Routes a packet to its owner: the serving side, the requests in flight, or a connection. */
  #onPacket(link: Link, packet: Packet): void {
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
      case PacketType.SocketConnectionRequest:
      case PacketType.EchoRequest:
        return this.#responder.answer(link, packet);
      case PacketType.SocketStatusResponse:
      case PacketType.SocketConnectionResponse:
      case PacketType.RequestFailed:
      case PacketType.EchoReply:
        return this.#requester.answer(link, packet);
      case PacketType.ArbitraryData:
      case PacketType.WindowUpdate:
      case PacketType.SocketShutdown:
      case PacketType.SocketClosed:
        return this.#sockets.route(packet);
      case PacketType.Hello:
      case PacketType.VirtualIP:
      case PacketType.Error:
      case PacketType.Ping:
      case PacketType.Pong:
        // The link handles these itself.
        throw unexpected(packet.type);
      default: {
        const _never: never = packet;
        throw unexpected((_never as Packet).type);
      }
    }
  }

  /**
   * The current link; while reconnecting, waits up to `requestTimeoutMs` for
   * the next one. Throws if the client is closed (or closes meanwhile).
   */
  #linkReady(action: string): Promise<Link> {
    this.#checkOpen(action);
    if (this.#link !== null) return Promise.resolve(this.#link);
    const ms = this.#config.requestTimeoutMs;
    return this.#linkWaiters.wait(
      ms,
      () => new TimedOut(`Cannot ${action}: the link to the relay did not come back in ${ms} ms`),
    );
  }

  #checkOpen(action: string): void {
    if (this.#failure) throw this.#failure;
    if (this.#state === "closing") throw new Closed(`Cannot ${action}: the client is closed`);
  }

  /** Whether anything asks the link to keep the process alive: the client, a socket. */
  #keepsAlive(): boolean {
    return this.#refd || this.#sockets.refs > 0;
  }

  #applyRef(): void {
    const keep = this.#keepsAlive();
    this.#link?.setRef(keep);
    this.#reconnector?.setRef(keep);
  }

  async #shutdown(): Promise<void> {
    const link = this.#link;
    if (link !== null) {
      this.#sockets.closeAll();
      await link.close(CLOSE_FLUSH_MS);
    }
    await this.#reconnector?.cancel();
    this.#finish(null);
  }
}

/**
 * Connects to an AlphaNET relay and resolves once it has assigned this
 * client's permanent virtual IP. Fails at once if the relay cannot be
 * reached (no retry); once connected, the client reconnects by itself.
 *
 * @example Join a relay and learn the virtual IP
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using net = await connect({
 *   hostname: "127.0.0.1",
 *   port: 1337,
 *   identity: "a secret of at least 16 bytes",
 * });
 * assert.match(net.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
 * assert.equal(net.state, "connected");
 * ```
 *
 * @param options Where the relay is and how the client behaves; every field has a default.
 * @returns The connected client; rejects with the TCP error (such as
 * `Deno.errors.ConnectionRefused`), a `RelayError` the relay answered with,
 * or `TimedOut` if no virtual IP came within `handshakeTimeoutMs`.
 */
export function connect(options: ClientOptions = {}): Promise<AlphaNetClient> {
  return AlphaNetClientImpl.open(options);
}
