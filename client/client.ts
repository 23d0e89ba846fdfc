/**
 * The AlphaNET client: one TCP link to the relay, on which it opens
 * listeners and virtual connections.
 *
 * @module
 */

import {
  AddrInUse,
  AlphaNetError,
  Closed,
  ConnectionRefused,
  ConnectionReset,
  HostUnreachable,
  ProtocolError,
  RelayError,
  TimedOut,
} from "../errors.ts";
import { formatIpv4, parseIpv4 } from "../protocol/address.ts";
import {
  EPHEMERAL_PORT_FIRST,
  MAX_PORT,
  PacketType,
  PROTOCOL_VERSION,
  Reason,
  reasonName,
} from "../protocol/constants.ts";
import type { Packet, SocketConnectionRequestPacket } from "../protocol/packets.ts";
import { FrameWriter } from "../transport/frame_writer.ts";
import { readFrames } from "../transport/read_loop.ts";
import type { VirtualAddr } from "./addr.ts";
import { type ClientConfig, type ConnectOptions, resolveClientConfig } from "./options.ts";
import { RequestTable } from "./requests.ts";
import { type ConnectionHost, VirtualConn } from "./virtual_conn.ts";
import { type AcceptFilter, VirtualListener } from "./virtual_listener.ts";

/** Options of {@linkcode AlphaNetClient.listen}. */
export interface ListenOptions {
  /** Virtual port to listen on; 0 picks a free one. */
  port: number;
  /** Called for each connection request; return false to deny it. @default {undefined} (accept all) */
  accept?: AcceptFilter;
  /** Accepted connections waiting for `accept()` beyond which requests are denied. @default {128} */
  backlog?: number;
}

/** Where {@linkcode AlphaNetClient.connect} and {@linkcode AlphaNetClient.status} go. */
export interface VirtualTarget {
  /** Virtual IPv4 of the destination, dotted quad. */
  hostname: string;
  /** Virtual port of the destination, 1..65535. */
  port: number;
}

/** The answer to {@linkcode AlphaNetClient.status}: the seed's SocketStatusResponse. */
export interface SocketStatus {
  /** Whether a client owns that virtual IP and is connected. */
  readonly online: boolean;
  /** Whether that client listens on the port. */
  readonly listening: boolean;
}

const DEFAULT_BACKLOG = 128;
/** How long close() waits for the last frames to reach the relay. */
const CLOSE_FLUSH_MS = 1000;

/**
 * A client connected to an AlphaNET relay, holding its permanent virtual IP.
 * Its `listen` and `connect` mirror `Deno.listen` and `Deno.connect`.
 *
 * @example
 * ```ts ignore
 * import { connect } from "@alphanet/net";
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * console.log(net.virtualIp);
 * using listener = net.listen({ port: 80 });
 * ```
 */
export class AlphaNetClient implements AsyncDisposable {
  // Static after the handshake.
  readonly #config: ClientConfig;
  readonly #conn: Deno.TcpConn;
  readonly #writer: FrameWriter;
  readonly #host: ConnectionHost;
  #address = 0;

  // Owned by the read loop and the public methods.
  readonly #requests = new RequestTable();
  readonly #listeners = new Map<number, VirtualListener>();
  readonly #connections = new Map<number, VirtualConn>();
  readonly #outboundPorts = new Set<number>();
  #nextEphemeralPort = EPHEMERAL_PORT_FIRST;
  #lastConnectionId = 0;

  // Lifetime.
  readonly #joined = Promise.withResolvers<void>();
  readonly #done = Promise.withResolvers<Error | null>();
  #readLoop: Promise<void> = Promise.resolve();
  #failure: Error | null = null;
  #closing: Promise<void> | null = null;

  private constructor(conn: Deno.TcpConn, config: ClientConfig) {
    this.#conn = conn;
    this.#config = config;
    this.#writer = new FrameWriter(
      conn,
      (error) => this.#fail(new ConnectionReset("Link to the relay failed", { cause: error })),
    );
    this.#host = {
      sendData: (id, payload) => this.#writer.writeData(id, payload),
      linkRoom: () => this.#writer.room(),
      sendWindowUpdate: (id, increment) =>
        this.#send({ type: PacketType.WindowUpdate, connectionId: id, increment }),
      sendShutdown: (id) => this.#send({ type: PacketType.SocketShutdown, connectionId: id }),
      sendClosed: (id) =>
        this.#send({ type: PacketType.SocketClosed, connectionId: id, reason: Reason.Normal }),
      release: (conn) => this.#release(conn),
    };
  }

  /** Connects to the relay and waits for the VirtualIP. Use {@linkcode connect}. */
  static async open(options: ConnectOptions = {}): Promise<AlphaNetClient> {
    const config = resolveClientConfig(options);
    const conn = await Deno.connect({
      hostname: config.hostname,
      port: config.port,
      transport: "tcp",
    });
    conn.setNoDelay(true);
    const client = new AlphaNetClient(conn, config);
    await client.#join();
    return client;
  }

  /** This client's permanent virtual IPv4, dotted quad. */
  get virtualIp(): string {
    return formatIpv4(this.#address);
  }

  /** Resolves when the link to the relay ends: null after close(), else the error that ended it. */
  get closed(): Promise<Error | null> {
    return this.#done.promise;
  }

  /**
   * Listens on a virtual port. No packet is sent: the relay asks this client
   * when someone connects. Throws AddrInUse if the port is taken.
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
   * denies, TimedOut if the owner does not answer.
   */
  async connect(target: VirtualTarget): Promise<VirtualConn> {
    const destination = parseTarget("connect", target);
    const status = await this.#status(destination, target.port);
    const where = `${target.hostname}:${target.port}`;
    if (!status.online) throw new HostUnreachable(`Cannot connect to ${where}: host is offline`);
    if (!status.listening) {
      throw new ConnectionRefused(`Cannot connect to ${where}: nothing listens there`);
    }
    this.#checkOpen("connect");
    const localPort = this.#ephemeralPort();
    this.#outboundPorts.add(localPort);
    const answer = Promise.withResolvers<VirtualConn>();
    const requestId = this.#requests.open(this.#config.requestTimeoutMs, (packet) => {
      if (packet.type === PacketType.SocketConnectionResponse && packet.accepted) {
        // Registered here, in the read loop, so data right behind the answer finds it.
        answer.resolve(this.#adopt(packet.connectionId, localPort, packet.window, {
          transport: "alphanet",
          hostname: target.hostname,
          port: target.port,
        }, true));
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
    this.#send({
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

  /** The seed's SocketStatusRequest: is that virtual IP online, and does it listen on that port? */
  status(target: VirtualTarget): Promise<SocketStatus> {
    return this.#status(parseTarget("query status of", target), target.port);
  }

  /** Closes every connection and listener, then the link. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #join(): Promise<void> {
    this.#readLoop = readFrames(this.#conn, (packet) => this.#onPacket(packet))
      .then(
        () => this.#fail(new ConnectionReset("Link to the relay closed")),
        (error) =>
          this.#fail(
            error instanceof AlphaNetError
              ? error
              : new ConnectionReset("Link to the relay failed", { cause: error }),
          ),
      );
    this.#writer.writePacket({
      type: PacketType.Hello,
      version: PROTOCOL_VERSION,
      identity: this.#config.identity,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimedOut(
              `Cannot join relay: no VirtualIP within ${this.#config.handshakeTimeoutMs} ms`,
            ),
          ),
        this.#config.handshakeTimeoutMs,
      );
    });
    try {
      await Promise.race([this.#joined.promise, timeout]);
    } catch (error) {
      this.#fail(error as Error);
      await this.#readLoop;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #onPacket(packet: Packet): void {
    switch (packet.type) {
      case PacketType.VirtualIP:
        if (this.#address !== 0) throw unexpected(packet.type);
        this.#address = packet.address;
        this.#joined.resolve();
        return;
      case PacketType.Error:
        throw new RelayError(packet.reason, packet.message);
      case PacketType.Ping:
        return this.#send({ type: PacketType.Pong, nonce: packet.nonce });
      case PacketType.Pong:
        return;
      case PacketType.SocketStatusRequest:
        this.#checkDestination(packet.destination);
        return this.#send({
          type: PacketType.SocketStatusResponse,
          requestId: packet.requestId,
          listening: this.#listeners.has(packet.destinationPort),
        });
      case PacketType.SocketConnectionRequest:
        this.#checkDestination(packet.destination);
        return this.#onConnectionRequest(packet);
      case PacketType.SocketStatusResponse:
      case PacketType.RequestFailed:
        this.#requests.answer(packet.requestId, packet);
        return;
      case PacketType.SocketConnectionResponse:
        if (!this.#requests.answer(packet.requestId, packet) && packet.accepted) {
          // We gave up on this request (time-out); tell the relay to drop the connection.
          this.#host.sendClosed(packet.connectionId);
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
        throw unexpected(packet.type);
      default: {
        const _never: never = packet;
        throw unexpected((_never as Packet).type);
      }
    }
  }

  #onConnectionRequest(packet: SocketConnectionRequestPacket): void {
    const listener = this.#listeners.get(packet.destinationPort);
    const deny = () =>
      this.#send({
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
      if (
        this.#failure || this.#closing || !listener.hasRoom ||
        this.#listeners.get(packet.destinationPort) !== listener
      ) {
        return deny();
      }
      const conn = this.#adopt(
        packet.connectionId,
        packet.destinationPort,
        packet.window,
        remote,
        false,
      );
      this.#send({
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

  #adopt(
    id: number,
    localPort: number,
    sendWindow: number,
    remote: VirtualAddr,
    outbound: boolean,
  ): VirtualConn {
    const conn = new VirtualConn(this.#host, {
      id,
      localAddr: { transport: "alphanet", hostname: this.virtualIp, port: localPort },
      remoteAddr: remote,
      receiveWindow: this.#config.window,
      maxReceiveWindow: this.#config.maxWindow,
      sendWindow,
      outbound,
    });
    this.#connections.set(id, conn);
    this.#lastConnectionId = Math.max(this.#lastConnectionId, id);
    return conn;
  }

  #release(conn: VirtualConn): void {
    if (this.#connections.get(conn.id) === conn) this.#connections.delete(conn.id);
    if (conn.outbound) this.#outboundPorts.delete(conn.localAddr.port);
  }

  #status(destination: number, port: number): Promise<SocketStatus> {
    this.#checkOpen("query status");
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
    this.#send({
      type: PacketType.SocketStatusRequest,
      requestId,
      source: this.#address,
      destination,
      destinationPort: port,
    });
    return answer.promise;
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
    if (this.#closing) throw new Closed(`Cannot ${action}: the client is closed`);
  }

  #send(packet: Packet): void {
    if (this.#failure === null) this.#writer.writePacket(packet);
  }

  /** Ends the link for good: everything open fails with `error`. */
  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#joined.reject(error);
    this.#joined.promise.catch(() => {});
    this.#requests.failAll(error);
    for (const conn of [...this.#connections.values()]) conn.linkLost(error);
    this.#connections.clear();
    for (const listener of [...this.#listeners.values()]) listener.shutdown(error);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.#done.resolve(this.#closing ? null : error);
  }

  async #shutdown(): Promise<void> {
    if (this.#failure === null) {
      for (const listener of [...this.#listeners.values()]) listener.close();
      for (const conn of [...this.#connections.values()]) conn.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#writer.drained(),
        new Promise((resolve) => timer = setTimeout(resolve, CLOSE_FLUSH_MS)),
      ]);
      clearTimeout(timer);
      this.#fail(new Closed("The client is closed"));
    }
    await this.#readLoop;
  }
}

/**
 * Connects to an AlphaNET relay and resolves once it has assigned this
 * client's permanent virtual IP.
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

function parseTarget(action: string, target: VirtualTarget): number {
  const address = parseIpv4(target.hostname);
  if (address === null) {
    throw new TypeError(`Cannot ${action} "${target.hostname}": not a dotted-quad IPv4 address`);
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > MAX_PORT) {
    throw new RangeError(
      `Cannot ${action} ${target.hostname}: port ${target.port} is outside 1..${MAX_PORT}`,
    );
  }
  return address;
}

function failureError(where: string, reason: number): Error {
  if (reason === Reason.Offline) {
    return new HostUnreachable(`Cannot connect to ${where}: host is offline`);
  }
  if (reason === Reason.Timeout) {
    return new TimedOut(`Cannot connect to ${where}: the host did not answer`);
  }
  return new ConnectionRefused(`Cannot connect to ${where}: ${reasonName(reason)}`);
}

function unexpected(type: number): ProtocolError {
  return new ProtocolError(
    `Cannot accept packet: type 0x${type.toString(16)} is not valid from the relay`,
    Reason.UnexpectedPacket,
  );
}
