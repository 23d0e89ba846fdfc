/**
 * The client behind {@linkcode AlphaNetClient}: one TCP link to the relay,
 * on which it opens listeners and virtual connections.
 *
 * @module
 */

import type { Slab } from "../transport/slab.ts";
import { AddressChanged, Closed, ConnectionReset, TimedOut } from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { PacketType } from "../protocol/packet_type.ts";
import type { Packet } from "../protocol/packets.ts";
import type { AlphaNetClient } from "./alphanet_client.ts";
import {
  type AlphaNetClientEventMap,
  canMove,
  type ClientLifecycle,
  type ClientState,
  StateChangeEventImpl,
  visibleState,
} from "./client_state.ts";
import { resolveCredentials } from "./credentials.ts";
import { VirtualFetcher } from "./http_fetch.ts";
import type { VirtualHttpServer, VirtualServeHandler, VirtualServeOptions } from "./http_server.ts";
import { type ServeHost, serveHttp } from "./http_server_impl.ts";
import { hex, Link, type LinkConfig, type LinkEvents, unexpected } from "./link.ts";
import { type ClientConfig, type ClientOptions, resolveClientConfig } from "./options.ts";
import { isFatal, Reconnector } from "./reconnect.ts";
import { passOrder } from "./relays.ts";
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

/** The implementation of {@linkcode AlphaNetClient}. */
export class AlphaNetClientImpl extends EventTarget implements AlphaNetClient {
  // Static after construction.
  readonly #config: ClientConfig;
  /**
   * The link settings, with the credentials resolved once: every link proves
   * the same. Each link goes to one of `config.relays`, pinned as `#pins` says.
   */
  readonly #linkConfig: LinkConfig;
  readonly #reconnector: Reconnector | null;
  /** What every link tells the client; `joined` is per relay (see #joinAny). */
  readonly #events: Omit<LinkEvents, "joined">;

  // Owned by #onJoined: where the links went and what they were given.
  /**
   * The relay id each of `config.relays` must show, hex: the `relayId`
   * option for all, else the id each showed at its first join (null before),
   * so a reconnect to a relay never reaches another relay under its name.
   */
  readonly #pins: (string | null)[];
  /**
   * The address each relay id (one registry) gave this client: a relay with
   * that id must give it again. At most one id per relay, as each is pinned.
   */
  readonly #addresses = new Map<string, number>();
  /** The virtual IP of the current (or last) link; 0 until the first join. */
  #address = 0;
  /** The id of the relay of the current (or last) link, as hex. */
  #relayId = "";
  /** Which of `config.relays` the current (or last) link went to. */
  #relayIndex = 0;

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
  /** The fatal error that closed the client; null while open and after close(). */
  #failure: Error | null = null;
  /** close()'s teardown, set with "closing", so close() is idempotent. */
  #closing: Promise<void> | null = null;
  readonly #done = Promise.withResolvers<Error | null>();
  /** Whether the client itself keeps the process alive (see unref). */
  #refd = true;

  // HTTP on top of the sockets: what close() stops at once (servers), and fetch's connections.
  readonly #httpClosers = new Set<() => void>();
  #fetcher: VirtualFetcher | null = null;

  private constructor(config: ClientConfig, linkConfig: LinkConfig) {
    super();
    this.#config = config;
    this.#linkConfig = linkConfig;
    this.#pins = config.relays.map(() => config.relayId);
    this.#events = {
      packet: (link, packet, slab) => this.#onPacket(link, packet, slab),
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
      (signal) => this.#joinAny(this.#relayIndex, signal),
      (error) => this.#finish(error),
    );
  }

  /**
   * Checks the options, resolves the credentials (before any connection:
   * a bad option throws first), connects to the relay (one pass over the
   * relays) and waits for the VirtualIP; no retry. See {@linkcode connect}.
   */
  static async open(options: ClientOptions = {}): Promise<AlphaNetClientImpl> {
    const config = resolveClientConfig(options);
    const credentials = await resolveCredentials(
      config.identity ?? undefined,
      config.joinToken ?? undefined,
    );
    const client = new AlphaNetClientImpl(config, Object.freeze({ ...config, credentials }));
    await client.#joinAny(null);
    return client;
  }

  /**
   * One pass over the relays (see `passOrder`): resolves once a link joined.
   * A fatal error ends the pass at once (the relays of one list are meant to
   * be one cluster, which would refuse alike); with one relay its error is
   * thrown as it is, else an AggregateError of each relay's, in the order tried.
   */
  async #joinAny(after: number | null, signal?: AbortSignal): Promise<void> {
    const relays = this.#config.relays;
    const failures: { index: number; error: Error }[] = [];
    for (const index of passOrder(relays.length, after)) {
      const config: LinkConfig = Object.freeze({
        ...this.#linkConfig,
        hostname: relays[index].hostname,
        port: relays[index].port,
        relayId: this.#pins[index],
      });
      const events: LinkEvents = {
        ...this.#events,
        joined: (link, address) => this.#onJoined(link, address, index),
      };
      try {
        await Link.open(config, events, signal);
        return;
      } catch (error) {
        if (relays.length === 1 || isFatal(error) || signal?.aborted) throw error;
        failures.push({ index, error: error as Error });
      }
    }
    throw new AggregateError(
      failures.map(({ error }) => error),
      `Cannot join any of the ${relays.length} relays: ` +
        failures.map(({ index, error }) => `${relays[index].name}: ${error.message}`).join("; "),
    );
  }

  get virtualIp(): string {
    return formatIpv4(this.#address);
  }

  get relayId(): string {
    return this.#relayId;
  }

  get relay(): string {
    return this.#config.relays[this.#relayIndex].name;
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

  serve(options: VirtualServeOptions, handler: VirtualServeHandler): Promise<VirtualHttpServer> {
    try {
      this.#checkOpen("serve");
    } catch (error) {
      return Promise.reject(error);
    }
    const host: ServeHost = {
      virtualIp: this.virtualIp,
      listen: (listenOptions) => this.listen(listenOptions),
      track: (closeNow) => {
        this.#httpClosers.add(closeNow);
        return () => this.#httpClosers.delete(closeNow);
      },
    };
    return serveHttp(host, options, handler);
  }

  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    try {
      this.#checkOpen("fetch");
    } catch (error) {
      return Promise.reject(error);
    }
    this.#fetcher ??= new VirtualFetcher({ connect: (target) => this.connect(target) });
    return this.#fetcher.fetch(input, init);
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

  /**
   * A link to relay `index` got its VirtualIP: adopt it if it is the address
   * that relay id gave before (or the first it gives), else refuse it (fatal).
   */
  #onJoined(link: Link, address: number, index: number): void {
    if (this.#state === "closing" || this.#state === "closed") {
      throw new Closed("Cannot join relay: the client is closed");
    }
    const relayId = hex(link.relayId);
    const known = this.#addresses.get(relayId);
    if (known !== undefined && address !== known) {
      throw new AddressChanged(formatIpv4(known), formatIpv4(address));
    }
    this.#addresses.set(relayId, address);
    // Pin the relay: a later link's Challenge from another relay id is refused unsigned.
    this.#pins[index] ??= relayId;
    this.#address = address;
    this.#relayId = relayId;
    this.#relayIndex = index;
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
    this.#failure = error;
    this.#closeHttp();
    const closed = (action: string): Error =>
      error ?? new Closed(`Cannot ${action}: the client is closed`);
    this.#requester.failAll(closed("complete request"));
    this.#sockets.shutdown(closed("accept"));
    this.#linkWaiters.rejectAll(closed("complete request"));
    this.#done.resolve(error);
    this.#moveTo("closed", error);
  }

  /** Routes a packet to its owner: the serving side, the requests in flight, or a connection. */
  #onPacket(link: Link, packet: Packet, slab: Slab | null): void {
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
        return this.#sockets.route(packet, slab);
      case PacketType.Hello:
      case PacketType.Challenge:
      case PacketType.Proof:
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

  /** Throws what ended the client, if it ended: its fatal error, or Closed after close(). */
  #checkOpen(action: string): void {
    if (this.#failure) throw this.#failure;
    if (this.#state === "closing" || this.#state === "closed") {
      throw new Closed(`Cannot ${action}: the client is closed`);
    }
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

  /** Stops every HTTP server and closes fetch's connections, at once. */
  #closeHttp(): void {
    for (const closeNow of this.#httpClosers) closeNow();
    this.#fetcher?.close();
  }

  async #shutdown(): Promise<void> {
    this.#closeHttp();
    const link = this.#link;
    if (link !== null) {
      this.#sockets.closeAll();
      await link.close(CLOSE_FLUSH_MS);
    }
    await this.#reconnector?.cancel();
    this.#finish(null);
  }
}
