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
   * the same. Its relayId is pinned at the first join when the options left it
   * unset, so every reconnect must reach the same relay.
   */
  #linkConfig: LinkConfig;
  readonly #reconnector: Reconnector | null;
  readonly #events: LinkEvents;
  /** The virtual IP, fixed by the first link; 0 until then. */
  #address = 0;
  /** The relay's id from the joined links' Challenges (all the same: pinned), as hex. */
  #relayId = "";

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
    this.#events = {
      joined: (link, address) => this.#onJoined(link, address),
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
      async (signal) => {
        await Link.open(this.#linkConfig, this.#events, signal);
      },
      (error) => this.#finish(error),
    );
  }

  /**
   * Checks the options, resolves the credentials (before any connection:
   * a bad option throws first), connects to the relay and waits for the
   * VirtualIP; no retry. See {@linkcode connect}.
   */
  static async open(options: ClientOptions = {}): Promise<AlphaNetClientImpl> {
    const config = resolveClientConfig(options);
    const credentials = await resolveCredentials(
      config.identity ?? undefined,
      config.joinToken ?? undefined,
    );
    const client = new AlphaNetClientImpl(config, Object.freeze({ ...config, credentials }));
    await Link.open(client.#linkConfig, client.#events);
    return client;
  }

  get virtualIp(): string {
    return formatIpv4(this.#address);
  }

  get relayId(): string {
    return this.#relayId;
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

  /** A link got its VirtualIP: adopt it if the address is ours, else refuse it (fatal). */
  #onJoined(link: Link, address: number): void {
    if (this.#state === "closing" || this.#state === "closed") {
      throw new Closed("Cannot join relay: the client is closed");
    }
    if (this.#address === 0) this.#address = address;
    else if (address !== this.#address) {
      throw new AddressChanged(formatIpv4(this.#address), formatIpv4(address));
    }
    this.#relayId = hex(link.relayId);
    // Pin the first relay: a later link's Challenge from another relay id is refused unsigned.
    if (this.#linkConfig.relayId === null) {
      this.#linkConfig = Object.freeze({ ...this.#linkConfig, relayId: this.#relayId });
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
