/**
 * The AlphaNET client: one TCP link to the relay, on which it opens
 * listeners and virtual connections.
 *
 * @module
 */

import { AddressChanged, Closed, ConnectionReset } from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { PacketType } from "../protocol/constants.ts";
import type { Packet } from "../protocol/packets.ts";
import { Link, type LinkEvents, unexpected } from "./link.ts";
import { LinkWaiters } from "./link_waiters.ts";
import { type ClientConfig, type ConnectOptions, resolveClientConfig } from "./options.ts";
import { Requester } from "./outgoing.ts";
import { isFatal, Reconnector } from "./reconnect.ts";
import { Responder } from "./serving.ts";
import { SocketTable } from "./sockets.ts";
import { type AlphaNetClientEventMap, type ClientState, StateChangeEvent } from "./state.ts";
import type { ListenOptions, PingTarget, SocketStatus, VirtualTarget } from "./targets.ts";
import type { VirtualConn } from "./virtual_conn.ts";
import type { VirtualListener } from "./virtual_listener.ts";

/** How long close() waits for the last frames to reach the relay. */
const CLOSE_FLUSH_MS = 1000;

/**
 * A client connected to an AlphaNET relay, holding its permanent virtual IP.
 * Its `listen` and `connect` mirror `Deno.listen` and `Deno.connect`.
 *
 * If the link to the relay drops, the client reconnects by itself (see the
 * `reconnect` option): open connections and requests in flight fail with
 * ConnectionReset, listeners stay bound and accept again once the link is
 * back, under the same virtual IP. `state` and the `statechange` event
 * report where it is; `closed` resolves when it ends for good.
 *
 * @example
 * ```ts ignore
 * import { connect } from "@alphanet/net";
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * console.log(net.virtualIp);
 * net.addEventListener("statechange", (event) => console.log(event.state));
 * using listener = net.listen({ port: 80 });
 * ```
 */
export class AlphaNetClient extends EventTarget implements AsyncDisposable {
  // Static.
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
  readonly #linkWaiters = new LinkWaiters();

  // Lifetime.
  /** "connected" from the start: nobody sees the client before its first link joined. */
  #state: ClientState = "connected";
  readonly #done = Promise.withResolvers<Error | null>();
  /** Why the client is closed: the fatal error, or Closed after close(). */
  #failure: Error | null = null;
  #closeRequested = false;
  #closing: Promise<void> | null = null;

  private constructor(config: ClientConfig) {
    super();
    this.#config = config;
    this.#events = {
      joined: (link, address) => this.#onJoined(link, address),
      packet: (link, packet) => this.#onPacket(link, packet),
      ended: (link, error) => this.#onLinkEnded(link, error),
    };
    this.#sockets = new SocketTable(config);
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

  /**
   * Connects to the relay and waits for the VirtualIP. Use {@linkcode connect}.
   * Does not retry: a relay that is not there fails at once.
   */
  static async open(options: ConnectOptions = {}): Promise<AlphaNetClient> {
    const client = new AlphaNetClient(resolveClientConfig(options));
    await Link.open(client.#config, client.#events);
    return client;
  }

  /** This client's permanent virtual IPv4, dotted quad; the same across reconnects. */
  get virtualIp(): string {
    return formatIpv4(this.#address);
  }

  /** `"connected"`, `"reconnecting"` or `"closed"`; changes are dispatched as `statechange`. */
  get state(): ClientState {
    return this.#state;
  }

  /**
   * Resolves when the client ends for good: null after close(), else the
   * error that ended it (`Replaced`, another fatal `RelayError`,
   * `AddressChanged`, the link error when reconnect is off, or a
   * `ConnectionReset` once reconnect attempts ran out).
   */
  get closed(): Promise<Error | null> {
    return this.#done.promise;
  }

  /** Adds a listener; `statechange` listeners get a {@linkcode StateChangeEvent}. */
  override addEventListener<K extends keyof AlphaNetClientEventMap>(
    type: K,
    listener: (this: AlphaNetClient, event: AlphaNetClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Adds a listener for any event type. */
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

  /** Removes a listener added with {@linkcode AlphaNetClient.addEventListener}. */
  override removeEventListener<K extends keyof AlphaNetClientEventMap>(
    type: K,
    listener: (this: AlphaNetClient, event: AlphaNetClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /** Removes a listener for any event type. */
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

  /**
   * Listens on a virtual port. No packet is sent: the relay asks this client
   * when someone connects. Works while reconnecting too (the listener
   * accepts once the link is back). Throws AddrInUse if the port is taken.
   */
  listen(options: ListenOptions): VirtualListener {
    this.#checkOpen("listen");
    return this.#sockets.listen(options);
  }

  /**
   * Opens a virtual connection in the seed's two steps: a status request,
   * then a connection request. Rejects with HostUnreachable if no client
   * owns that address, ConnectionRefused if nothing listens or the owner
   * denies, TimedOut if the owner does not answer, ConnectionReset if the
   * link drops meanwhile. While reconnecting, it first waits up to
   * `requestTimeoutMs` for the link (then TimedOut).
   */
  connect(target: VirtualTarget): Promise<VirtualConn> {
    return this.#requester.connect(target);
  }

  /**
   * The seed's SocketStatusRequest: is that virtual IP online, and does it
   * listen on that port? While reconnecting, it first waits for the link
   * like {@linkcode AlphaNetClient.connect}.
   */
  status(target: VirtualTarget): Promise<SocketStatus> {
    return this.#requester.status(target);
  }

  /**
   * Round-trip time to another client through the relay, in milliseconds:
   * the relay forwards an EchoRequest, which every client answers on its own.
   * Rejects with HostUnreachable if no client owns that address, TimedOut if
   * it does not answer.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@alphanet/net";
   * await using net = await connect();
   * console.log(`${await net.ping({ hostname: "83.12.4.200" })} ms`);
   * ```
   */
  ping(target: PingTarget): Promise<number> {
    return this.#requester.ping(target);
  }

  /** Closes every connection and listener, then the link; stops reconnecting. Idempotent. */
  close(): Promise<void> {
    this.#closeRequested = true;
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A link got its VirtualIP: adopt it if the address is ours, else refuse it (fatal). */
  #onJoined(link: Link, address: number): void {
    if (this.#closeRequested || this.#state === "closed") {
      throw new Closed("Cannot join relay: the client is closed");
    }
    if (this.#address === 0) this.#address = address;
    else if (address !== this.#address) {
      throw new AddressChanged(formatIpv4(this.#address), formatIpv4(address));
    }
    this.#link = link;
    this.#sockets.attach(link, this.virtualIp);
    this.#linkWaiters.resolveAll(link);
    this.#setState("connected", null);
  }

  /** The current link ended by itself: fail what used it, then reconnect or close. */
  #onLinkEnded(link: Link, error: Error): void {
    if (link !== this.#link) return;
    this.#link = null;
    this.#sockets.detach();
    if (this.#closeRequested) return; // close() finishes the job.
    // Requests and connections die with the link; listeners stay, minus their dead backlog.
    this.#requester.failAll(
      new ConnectionReset(`Cannot complete request: the link to the relay was lost`, {
        cause: error,
      }),
    );
    this.#sockets.linkLost(error);
    if (this.#reconnector === null || isFatal(error)) return this.#finish(error);
    this.#setState("reconnecting", error);
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
    this.#setState("closed", error);
  }

  #setState(state: ClientState, error: Error | null): void {
    if (this.#state === state) return;
    this.#state = state;
    this.dispatchEvent(new StateChangeEvent(state, error));
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
    return this.#linkWaiters.wait(action, this.#config.requestTimeoutMs);
  }

  #checkOpen(action: string): void {
    if (this.#failure) throw this.#failure;
    if (this.#closeRequested) throw new Closed(`Cannot ${action}: the client is closed`);
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
 * @example
 * ```ts ignore
 * import { connect } from "@alphanet/net";
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * console.log(`my virtual IP is ${net.virtualIp}`);
 * ```
 */
export function connect(options: ConnectOptions = {}): Promise<AlphaNetClient> {
  return AlphaNetClient.open(options);
}
