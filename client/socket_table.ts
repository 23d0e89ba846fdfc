/**
 * The local ends of a client's virtual sockets: listeners by port, the
 * ephemeral ports of outbound connections, and open connections by id.
 * Ports of listeners and of outbound connections share one space, as on a
 * real host: a port taken by either is in use for both.
 *
 * @module
 */

import type { Slab } from "../transport/slab.ts";
import { AddrInUse } from "../errors.ts";
import { EPHEMERAL_PORT_FIRST, MAX_PORT } from "../protocol/constants.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason } from "../protocol/reason.ts";
import type {
  ArbitraryDataPacket,
  SocketClosedPacket,
  SocketShutdownPacket,
  WindowUpdatePacket,
} from "../protocol/packets.ts";
import type { VirtualAddr } from "./addr.ts";
import type { Link } from "./link.ts";
import { type ClientConfig, WINDOW_GROWTH_BYTES } from "./options.ts";

/**
 * Slab views a client may hold unread, all connections together (4 MiB of
 * slabs at most): a relay that sends frames a reader leaves unread, or
 * spreads them over many slabs, gets copies past it, not more pinned slabs.
 */
const MAX_HELD_SLABS = 16;
import type { VirtualListenOptions } from "./socket_options.ts";
import { type ConnectionHost, VirtualConnImpl } from "./virtual_conn_impl.ts";
import { VirtualListenerImpl } from "./virtual_listener_impl.ts";

const DEFAULT_BACKLOG = 128;

/** The packets addressed to an open connection. */
export type ConnectionPacket =
  | ArbitraryDataPacket
  | WindowUpdatePacket
  | SocketShutdownPacket
  | SocketClosedPacket;

/**
 * The client's sockets; owned by its read loop and its public methods. It
 * also counts the open sockets that keep the process alive (not unref'd), so
 * the client knows when it may let go of its link.
 */
export class SocketTable {
  // Static after construction.
  readonly #config: Pick<ClientConfig, "window" | "maxWindow">;
  readonly #refsChanged: () => void;

  // Set by attach(): the virtual IP stays across links, the host is null while there is no link.
  #hostname = "";
  #host: ConnectionHost | null = null;

  readonly #listeners = new Map<number, VirtualListenerImpl>();
  /** Local ports of outbound connections: the connection, or null while its request is in flight. */
  readonly #outboundPorts = new Map<number, VirtualConnImpl | null>();
  #nextEphemeralPort = EPHEMERAL_PORT_FIRST;
  readonly #connections = new Map<number, VirtualConnImpl>();
  /**
   * Unread payloads kept as views of a link slab, all connections together:
   * each pins up to a whole 256 KiB slab, so past the cap they are copied.
   */
  #heldSlabs = 0;
  /** What the open connections' receive windows grew by, together (see #growWindow). */
  #windowGrowth = 0;
  /** Listeners and connections in the maps above that are ref'd. */
  #refs = 0;

  /** `refsChanged` runs whenever {@linkcode SocketTable.refs} changes. */
  constructor(config: Pick<ClientConfig, "window" | "maxWindow">, refsChanged: () => void) {
    this.#config = config;
    this.#refsChanged = refsChanged;
  }

  /** How many open listeners and connections keep the process alive. */
  get refs(): number {
    return this.#refs;
  }

  /**
   * A link joined as `hostname`: connections adopted from now on send
   * through it. A new hostname (a relay of another registry) moves the
   * listeners' addresses with it.
   */
  attach(link: Link, hostname: string): void {
    if (hostname !== this.#hostname) {
      for (const listener of this.#listeners.values()) listener.rehome(hostname);
    }
    this.#hostname = hostname;
    this.#host = {
      sendData: (id, payload) => link.sendData(id, payload),
      linkRoom: () => link.room(),
      sendWindowUpdate: (id, increment) => link.sendWindowUpdate(id, increment),
      growWindow: (conn, wanted) => this.#growWindow(conn, wanted),
      holdSlab: () => this.#holdSlab(),
      releaseSlab: () => void this.#heldSlabs--,
      sendShutdown: (id) => link.send({ type: PacketType.SocketShutdown, connectionId: id }),
      sendClosed: (id) =>
        link.send({ type: PacketType.SocketClosed, connectionId: id, reason: Reason.Normal }),
      release: (conn) => this.#release(conn),
      refChanged: (conn) => {
        if (this.#connections.get(conn.id) === conn) this.#countRef(conn.refd ? 1 : -1);
      },
    };
  }

  /** The link is gone: nothing may be adopted until the next attach(). */
  detach(): void {
    this.#host = null;
  }

  /** Binds a listener; see `AlphaNetClient.listen`. */
  listen(options: VirtualListenOptions): VirtualListenerImpl {
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
    const addr: VirtualAddr = { transport: "tcp", hostname: this.#hostname, port };
    const listener = new VirtualListenerImpl(addr, backlog, options.accept, {
      closed: (closed) => {
        if (this.#listeners.get(port) !== closed) return;
        this.#listeners.delete(port);
        if (closed.refd) this.#countRef(-1);
      },
      refChanged: (changed) => {
        if (this.#listeners.get(port) === changed) this.#countRef(changed.refd ? 1 : -1);
      },
    });
    this.#listeners.set(port, listener);
    this.#countRef(1);
    return listener;
  }

  /** The listener bound to `port`, if any. */
  listener(port: number): VirtualListenerImpl | undefined {
    return this.#listeners.get(port);
  }

  /** Takes an ephemeral port for a connection request about to be sent. */
  reservePort(): number {
    const port = this.#ephemeralPort();
    this.#outboundPorts.set(port, null);
    return port;
  }

  /** Gives back a port of reservePort() whose request failed. */
  freePort(port: number): void {
    this.#outboundPorts.delete(port);
  }

  /**
   * Registers a connection of the current link (called from its read loop).
   * An outbound one takes over its reserved `localPort`.
   */
  adopt(
    id: number,
    localPort: number,
    sendWindow: number,
    remote: VirtualAddr,
    outbound: boolean,
  ): VirtualConnImpl {
    const conn = new VirtualConnImpl(this.#host!, {
      id,
      localAddr: { transport: "tcp", hostname: this.#hostname, port: localPort },
      remoteAddr: remote,
      receiveWindow: this.#config.window,
      maxReceiveWindow: this.#config.maxWindow,
      sendWindow,
      outbound,
    });
    this.#connections.set(id, conn);
    this.#countRef(1);
    if (outbound) this.#outboundPorts.set(localPort, conn);
    return conn;
  }

  /** Hands a packet to its connection; one for a connection already gone is dropped. */
  route(packet: ConnectionPacket, slab: Slab | null = null): void {
    switch (packet.type) {
      case PacketType.ArbitraryData:
        this.#connections.get(packet.connectionId)?.receive(packet.payload, slab);
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
        this.#forget(conn);
        conn.remoteClosed(packet.reason);
        return;
      }
      default: {
        const _never: never = packet;
      }
    }
  }

  /** The link was lost: its connections are dead; listeners stay, minus their dead backlog. */
  linkLost(error: Error): void {
    for (const conn of this.#forgetAll()) conn.linkLost(error);
    for (const [port, conn] of this.#outboundPorts) {
      if (conn !== null) this.#outboundPorts.delete(port);
    }
    for (const listener of this.#listeners.values()) listener.dropQueued();
  }

  /** Closes every listener and connection, telling the relay (before a clean close). */
  closeAll(): void {
    for (const listener of [...this.#listeners.values()]) listener.close();
    for (const conn of [...this.#connections.values()]) conn.close();
  }

  /** The client ended for good: everything fails with `reason`. */
  shutdown(reason: Error): void {
    for (const conn of this.#forgetAll()) conn.linkLost(reason);
    this.#outboundPorts.clear();
    for (const listener of [...this.#listeners.values()]) listener.shutdown(reason);
  }

  #release(conn: VirtualConnImpl): void {
    if (this.#connections.get(conn.id) === conn) this.#forget(conn);
    const port = conn.localAddr.port;
    if (conn.outbound && this.#outboundPorts.get(port) === conn) this.#outboundPorts.delete(port);
  }

  /**
   * Window growth for one connection, within what all of them together may
   * add: one bulk stream grows to its `maxWindow`, while many share the
   * same allowance instead of each filling the relay's queues with its own.
   */
  #growWindow(conn: VirtualConnImpl, wanted: number): number {
    if (this.#connections.get(conn.id) !== conn) return 0;
    const allowance = Math.max(WINDOW_GROWTH_BYTES, this.#config.maxWindow - this.#config.window);
    const growth = Math.max(0, Math.min(wanted, allowance - this.#windowGrowth));
    this.#windowGrowth += growth;
    return growth;
  }

  /** Counts one more slab view held, if the client is under its cap. */
  #holdSlab(): boolean {
    if (this.#heldSlabs >= MAX_HELD_SLABS) return false;
    this.#heldSlabs++;
    return true;
  }

  /** Removes an open connection from the table. */
  #forget(conn: VirtualConnImpl): void {
    this.#connections.delete(conn.id);
    this.#windowGrowth -= conn.windowGrowth;
    if (conn.refd) this.#countRef(-1);
  }

  /** Removes every open connection from the table and returns them. */
  #forgetAll(): VirtualConnImpl[] {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    this.#windowGrowth = 0;
    const refd = all.filter((conn) => conn.refd).length;
    if (refd > 0) this.#countRef(-refd);
    return all;
  }

  #countRef(delta: number): void {
    this.#refs += delta;
    this.#refsChanged();
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
}
