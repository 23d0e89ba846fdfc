/**
 * The AlphaNET client: one TCP link to the relay, on which it opens
 * listeners and virtual connections.
 *
 * @module
 */

import {
  AddressChanged,
  AddrInUse,
  Closed,
  ConnectionRefused,
  ConnectionReset,
  HostUnreachable,
  ProtocolError,
  TimedOut,
} from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { EPHEMERAL_PORT_FIRST, MAX_PORT, PacketType, Reason } from "../protocol/constants.ts";
import type { Packet, SocketConnectionRequestPacket } from "../protocol/packets.ts";
import type { VirtualAddr } from "./addr.ts";
import {
  failureError,
  type ListenOptions,
  parseHost,
  parseTarget,
  type PingTarget,
  type SocketStatus,
  type VirtualTarget,
} from "./targets.ts";
import { Link, type LinkEvents, unexpected } from "./link.ts";
import { type ClientConfig, type ConnectOptions, resolveClientConfig } from "./options.ts";
import { isFatal, Reconnector } from "./reconnect.ts";
import { RequestTable } from "./requests.ts";
import { type AlphaNetClientEventMap, type ClientState, StateChangeEvent } from "./state.ts";
import { type ConnectionHost, VirtualConn } from "./virtual_conn.ts";
import { VirtualListener } from "./virtual_listener.ts";

const DEFAULT_BACKLOG = 128;
/** How long close() waits for the last frames to reach the relay. */
const CLOSE_FLUSH_MS = 1000;

/** A `connect()` or `status()` call waiting for the link to come back. */
interface LinkWaiter {
  readonly resolve: (link: Link) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

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

  // The current link, null while reconnecting or closed, and what its connections send through.
  #link: Link | null = null;
  #host: ConnectionHost | null = null;

  // Owned by the read loop and the public methods.
  readonly #requests = new RequestTable();
  readonly #listeners = new Map<number, VirtualListener>();
  readonly #connections = new Map<number, VirtualConn>();
  /** Local ports of outbound connections: the connection, or null while its request is in flight. */
  readonly #outboundPorts = new Map<number, VirtualConn | null>();
  #nextEphemeralPort = EPHEMERAL_PORT_FIRST;
  readonly #linkWaiters = new Set<LinkWaiter>();

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
    let port = options.port;
    if (!Number.isInteger(port) || port < 0 || port > MAX_PORT) {
      throw new RangeError(`Cannot listen: port ${port} is outside 0..${MAX_PORT}`);
    }
    const backlog = options.backlog ?? DEFAULT_BACKLOG;
    if (!Number.isInteger(backlog) || backlog < 1) {
      throw new RangeError(`Cannot listen: backlog ${backlog} is not a positive integer`);
    }
    if (port === 0) port = this.#ephemeralPort();
    else if (this.#listeners.has(port) || this.#outboundPorts.has(port)) {
      throw new AddrInUse(`Cannot listen on port ${port}: it is in use`);
    }
    const addr: VirtualAddr = { transport: "alphanet", hostname: this.virtualIp, port };
    const listener = new VirtualListener(addr, backlog, options.accept, (closed) => {
      if (this.#listeners.get(port) === closed) this.#listeners.delete(port);
    });
    this.#listeners.set(port, listener);
    return listener;
  }

  /**
   * Opens a virtual connection in the seed's two steps: a status request,
   * then a connection request. Rejects with HostUnreachable if no client
   * owns that address, ConnectionRefused if nothing listens or the owner
   * denies, TimedOut if the owner does not answer, ConnectionReset if the
   * link drops meanwhile. While reconnecting, it first waits up to
   * `requestTimeoutMs` for the link (then TimedOut).
   */
  async connect(target: VirtualTarget): Promise<VirtualConn> {
    const destination = parseTarget("connect", target);
    const status = await this.#status(destination, target.port);
    const where = `${target.hostname}:${target.port}`;
    if (!status.online) throw new HostUnreachable(`Cannot connect to ${where}: host is offline`);
    if (!status.listening) {
      throw new ConnectionRefused(`Cannot connect to ${where}: nothing listens there`);
    }
    const link = await this.#linkReady("connect");
    const localPort = this.#ephemeralPort();
    this.#outboundPorts.set(localPort, null);
    const answer = Promise.withResolvers<VirtualConn>();
    const requestId = this.#requests.open(this.#config.requestTimeoutMs, (packet) => {
      if (packet.type === PacketType.SocketConnectionResponse && packet.accepted) {
        // Registered here, in the read loop, so data right behind the answer finds it.
        const conn = this.#adopt(packet.connectionId, localPort, packet.window, {
          transport: "alphanet",
          hostname: target.hostname,
          port: target.port,
        }, true);
        this.#outboundPorts.set(localPort, conn);
        answer.resolve(conn);
        return;
      }
      this.#outboundPorts.delete(localPort);
      answer.reject(
        packet.type === PacketType.RequestFailed
          ? failureError(where, packet.reason)
          : new ConnectionRefused(`Cannot connect to ${where}: connection denied`),
      );
    }, (error) => {
      this.#outboundPorts.delete(localPort);
      answer.reject(error);
    });
    link.send({
      type: PacketType.SocketConnectionRequest,
      requestId,
      connectionId: 0,
      source: this.#address,
      sourcePort: localPort,
      destination,
      destinationPort: target.port,
      window: this.#config.window,
    });
    return answer.promise;
  }

  /**
   * The seed's SocketStatusRequest: is that virtual IP online, and does it
   * listen on that port? While reconnecting, it first waits for the link
   * like {@linkcode AlphaNetClient.connect}.
   */
  async status(target: VirtualTarget): Promise<SocketStatus> {
    return await this.#status(parseTarget("query status of", target), target.port);
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
  async ping(target: PingTarget): Promise<number> {
    const destination = parseHost("ping", target.hostname);
    const link = await this.#linkReady("ping");
    const answer = Promise.withResolvers<number>();
    const sentAt = performance.now();
    const requestId = this.#requests.open(this.#config.requestTimeoutMs, (packet) => {
      if (packet.type === PacketType.EchoReply) answer.resolve(performance.now() - sentAt);
      else if (packet.type === PacketType.RequestFailed) {
        answer.reject(failureError(target.hostname, packet.reason));
      } else {
        answer.reject(new ProtocolError("Cannot ping: unexpected answer", Reason.UnexpectedPacket));
      }
    }, answer.reject);
    link.send({ type: PacketType.EchoRequest, requestId, source: this.#address, destination });
    return await answer.promise;
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
    this.#host = {
      sendData: (id, payload) => link.sendData(id, payload),
      linkRoom: () => link.room(),
      sendWindowUpdate: (id, increment) =>
        link.send({ type: PacketType.WindowUpdate, connectionId: id, increment }),
      sendShutdown: (id) => link.send({ type: PacketType.SocketShutdown, connectionId: id }),
      sendClosed: (id) =>
        link.send({ type: PacketType.SocketClosed, connectionId: id, reason: Reason.Normal }),
      release: (conn) => this.#release(conn),
    };
    for (const waiter of this.#linkWaiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(link);
    }
    this.#linkWaiters.clear();
    this.#setState("connected", null);
  }

  /** The current link ended by itself: fail what used it, then reconnect or close. */
  #onLinkEnded(link: Link, error: Error): void {
    if (link !== this.#link) return;
    this.#link = null;
    this.#host = null;
    if (this.#closeRequested) return; // close() finishes the job.
    this.#dropLinkState(error);
    if (this.#reconnector === null || isFatal(error)) return this.#finish(error);
    this.#setState("reconnecting", error);
    this.#reconnector.start(error);
  }

  /** Fails requests and connections of a lost link; listeners stay, minus their dead backlog. */
  #dropLinkState(error: Error): void {
    this.#requests.failAll(
      new ConnectionReset(`Cannot complete request: the link to the relay was lost`, {
        cause: error,
      }),
    );
    for (const conn of this.#connections.values()) conn.linkLost(error);
    this.#connections.clear();
    for (const [port, conn] of this.#outboundPorts) {
      if (conn !== null) this.#outboundPorts.delete(port);
    }
    for (const listener of this.#listeners.values()) listener.dropQueued();
  }

  /** Ends the client for good: null after close(), else the error. */
  #finish(error: Error | null): void {
    if (this.#state === "closed") return;
    const reason = error ?? new Closed("The client is closed");
    this.#failure = reason;
    this.#requests.failAll(reason);
    for (const conn of this.#connections.values()) conn.linkLost(reason);
    this.#connections.clear();
    this.#outboundPorts.clear();
    for (const listener of [...this.#listeners.values()]) listener.shutdown(reason);
    for (const waiter of this.#linkWaiters) {
      clearTimeout(waiter.timer);
      waiter.reject(reason);
    }
    this.#linkWaiters.clear();
    this.#done.resolve(error);
    this.#setState("closed", error);
  }

  #setState(state: ClientState, error: Error | null): void {
    if (this.#state === state) return;
    this.#state = state;
    this.dispatchEvent(new StateChangeEvent(state, error));
  }

  #onPacket(link: Link, packet: Packet): void {
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
        this.#checkDestination(packet.destination);
        return link.send({
          type: PacketType.SocketStatusResponse,
          requestId: packet.requestId,
          listening: this.#listeners.has(packet.destinationPort),
        });
      case PacketType.SocketConnectionRequest:
        this.#checkDestination(packet.destination);
        return this.#onConnectionRequest(link, packet);
      case PacketType.EchoRequest:
        this.#checkDestination(packet.destination);
        return link.send({ type: PacketType.EchoReply, requestId: packet.requestId });
      case PacketType.SocketStatusResponse:
      case PacketType.RequestFailed:
      case PacketType.EchoReply:
        this.#requests.answer(packet.requestId, packet);
        return;
      case PacketType.SocketConnectionResponse:
        if (!this.#requests.answer(packet.requestId, packet) && packet.accepted) {
          // We gave up on this request (time-out); tell the relay to drop the connection.
          link.send({
            type: PacketType.SocketClosed,
            connectionId: packet.connectionId,
            reason: Reason.Normal,
          });
        }
        return;
      case PacketType.ArbitraryData:
        this.#connections.get(packet.connectionId)?.receive(packet.payload);
        return;
      case PacketType.WindowUpdate:
        this.#connections.get(packet.connectionId)?.grant(packet.increment);
        return;
      case PacketType.SocketShutdown:
        this.#connections.get(packet.connectionId)?.remoteShutdown();
        return;
      case PacketType.SocketClosed: {
        const conn = this.#connections.get(packet.connectionId);
        if (!conn) return;
        this.#connections.delete(packet.connectionId);
        conn.remoteClosed(packet.reason);
        return;
      }
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

  #onConnectionRequest(link: Link, packet: SocketConnectionRequestPacket): void {
    const listener = this.#listeners.get(packet.destinationPort);
    const deny = () =>
      link.send({
        type: PacketType.SocketConnectionResponse,
        requestId: packet.requestId,
        connectionId: 0,
        accepted: false,
        window: 0,
      });
    if (!listener || !listener.hasRoom) return deny();
    const remote: VirtualAddr = {
      transport: "alphanet",
      hostname: formatIpv4(packet.source),
      port: packet.sourcePort,
    };
    const accept = () => {
      // A request of a link that has since dropped is forgotten with it: answer nothing.
      if (this.#link !== link) return;
      if (!listener.hasRoom || this.#listeners.get(packet.destinationPort) !== listener) {
        return deny();
      }
      const conn = this.#adopt(
        packet.connectionId,
        packet.destinationPort,
        packet.window,
        remote,
        false,
      );
      link.send({
        type: PacketType.SocketConnectionResponse,
        requestId: packet.requestId,
        connectionId: packet.connectionId,
        accepted: true,
        window: this.#config.window,
      });
      listener.enqueue(conn);
    };
    if (!listener.filter) return accept();
    Promise.resolve()
      .then(() => listener.filter!(remote))
      .then((ok) => ok === true ? accept() : deny(), () => deny());
  }

  /** Registers a connection of the current link (called from its read loop). */
  #adopt(
    id: number,
    localPort: number,
    sendWindow: number,
    remote: VirtualAddr,
    outbound: boolean,
  ): VirtualConn {
    const conn = new VirtualConn(this.#host!, {
      id,
      localAddr: { transport: "alphanet", hostname: this.virtualIp, port: localPort },
      remoteAddr: remote,
      receiveWindow: this.#config.window,
      maxReceiveWindow: this.#config.maxWindow,
      sendWindow,
      outbound,
    });
    this.#connections.set(id, conn);
    return conn;
  }

  #release(conn: VirtualConn): void {
    if (this.#connections.get(conn.id) === conn) this.#connections.delete(conn.id);
    const port = conn.localAddr.port;
    if (conn.outbound && this.#outboundPorts.get(port) === conn) this.#outboundPorts.delete(port);
  }

  async #status(destination: number, port: number): Promise<SocketStatus> {
    const link = await this.#linkReady("query status");
    const answer = Promise.withResolvers<SocketStatus>();
    const requestId = this.#requests.open(this.#config.requestTimeoutMs, (packet) => {
      if (packet.type === PacketType.SocketStatusResponse) {
        answer.resolve({ online: true, listening: packet.listening });
      } else if (packet.type === PacketType.RequestFailed && packet.reason === Reason.Offline) {
        answer.resolve({ online: false, listening: false });
      } else if (packet.type === PacketType.RequestFailed) {
        answer.reject(failureError(`${formatIpv4(destination)}:${port}`, packet.reason));
      } else {
        answer.reject(
          new ProtocolError("Cannot read status: unexpected answer", Reason.UnexpectedPacket),
        );
      }
    }, answer.reject);
    link.send({
      type: PacketType.SocketStatusRequest,
      requestId,
      source: this.#address,
      destination,
      destinationPort: port,
    });
    return answer.promise;
  }

  /**
   * The current link; while reconnecting, waits up to `requestTimeoutMs` for
   * the next one. Throws if the client is closed (or closes meanwhile).
   */
  #linkReady(action: string): Promise<Link> {
    this.#checkOpen(action);
    if (this.#link !== null) return Promise.resolve(this.#link);
    const ms = this.#config.requestTimeoutMs;
    return new Promise<Link>((resolve, reject) => {
      const waiter: LinkWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#linkWaiters.delete(waiter);
          reject(
            new TimedOut(`Cannot ${action}: the link to the relay did not come back in ${ms} ms`),
          );
        }, ms),
      };
      this.#linkWaiters.add(waiter);
    });
  }

  #ephemeralPort(): number {
    const span = MAX_PORT - EPHEMERAL_PORT_FIRST + 1;
    for (let tries = 0; tries < span; tries++) {
      const port = this.#nextEphemeralPort;
      this.#nextEphemeralPort = port === MAX_PORT ? EPHEMERAL_PORT_FIRST : port + 1;
      if (!this.#listeners.has(port) && !this.#outboundPorts.has(port)) return port;
    }
    throw new AddrInUse("Cannot pick a local port: every ephemeral port is in use");
  }

  #checkDestination(destination: number): void {
    if (destination !== this.#address) {
      throw new ProtocolError(
        `Cannot accept request: destination ${formatIpv4(destination)} is not this client`,
        Reason.UnexpectedPacket,
      );
    }
  }

  #checkOpen(action: string): void {
    if (this.#failure) throw this.#failure;
    if (this.#closeRequested) throw new Closed(`Cannot ${action}: the client is closed`);
  }

  async #shutdown(): Promise<void> {
    const link = this.#link;
    if (link !== null) {
      for (const listener of [...this.#listeners.values()]) listener.close();
      for (const conn of [...this.#connections.values()]) conn.close();
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
