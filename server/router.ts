/**
 * Routes packets from joined peers: one handler per packet type, each in the
 * part of the relay that owns its state — requests in {@linkcode Requests},
 * accepted connections in {@linkcode DataPlane}. Handlers neither parse bytes
 * nor touch SQL, and see peers only through the {@linkcode Peer} seam.
 *
 * @module
 */

import type { Slab } from "../transport/slab.ts";
import { RelayMetrics } from "./metrics.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason } from "../protocol/reason.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type { Packet } from "../protocol/packets.ts";
import type { RelayConfig } from "./config.ts";
import { DataPlane } from "./data_plane.ts";
import type { Logger } from "./log.ts";
import type { PeerBook } from "./peer_book.ts";
import type { Dispatch, Peer } from "./peer.ts";
import { type Locator, Requests } from "./requests.ts";
import { RoutingTable } from "./routing_table.ts";

/**
 * What the cluster layer (`server/mesh/`) learns from the router: this
 * relay's own clients coming and going, so it can announce and withdraw
 * them, and where a request for an address no one here holds is looked up.
 */
export interface RouterCluster {
  /** A client of this relay joined at `address` at `at` (unix ms; also after a takeover). */
  joined(address: number, at: number): void;
  /** No client of this relay holds `address` any more. */
  left(address: number): void;
  /** See {@linkcode Locator}. */
  readonly locate: Locator;
}

/** The relay's routing state: who is online, what is pending, what is connected. */
export class Router {
  // Owned by the router; the table is shared with the parts below, which only read it.
  readonly #table = new RoutingTable();
  readonly #requests: Requests;
  readonly #data: DataPlane;
  /** Set once, when the relay is part of a cluster. */
  #cluster: RouterCluster | null = null;

  /** Creates an empty router. */
  constructor(
    config: Pick<
      RelayConfig,
      | "socketIdleTimeoutMs"
      | "maxConnectionsPerClient"
      | "maxPendingPerClient"
      | "requestTimeoutMs"
      | "maxBufferedBytes"
      | "maxBufferedBytesPerClient"
    >,
    log: Logger,
    metrics: RelayMetrics = new RelayMetrics(),
  ) {
    this.#data = new DataPlane(config, this.#table, metrics);
    this.#requests = new Requests(config, log, this.#table, this.#data, metrics);
  }

  /**
   * Makes this router part of a cluster: its clients are announced as they
   * come and go, and requests for addresses no one here holds are looked up.
   * Called once, before any client joins.
   */
  joinCluster(cluster: RouterCluster): void {
    this.#cluster = cluster;
    this.#requests.locate = cluster.locate;
  }

  /** Virtual connections open now: counted on scrape, so the data path keeps no count. */
  get connectionsOpen(): number {
    let ends = 0;
    for (const book of this.#table.online()) ends += book.ends.size;
    return Math.floor(ends / 2);
  }

  /** Bytes the relay holds for data now, relay-wide. */
  get bufferedBytes(): number {
    return this.#data.budget.used;
  }

  /** The books of this relay's own clients online now, read by the status page. */
  *online(): IterableIterator<PeerBook> {
    for (const book of this.#table.online()) if (book.peer.remote !== true) yield book;
  }

  /** Peers online now. */
  get onlineCount(): number {
    return this.#table.onlineCount;
  }

  /** Clients of other relays this router routes to now, over relay links. */
  get remoteCount(): number {
    return this.#table.remoteCount;
  }

  /** Requests in flight now. */
  get pendingCount(): number {
    return this.#requests.size;
  }

  /** When the peer online at `address` joined (unix ms), if any. */
  joinedAt(address: number): number | undefined {
    return this.#table.bookAt(address)?.joinedAt;
  }

  /** The peer online at `address`, if any. */
  peerAt(address: number): Peer | undefined {
    return this.#table.bookAt(address)?.peer;
  }

  /**
   * Makes a joined `peer` the owner of its address (a peer it replaces stays
   * routable until its close detaches it) and returns where its frames go:
   * bound to its book, so routing a frame looks nothing up.
   */
  attach(peer: Peer): Dispatch {
    const book = this.#table.add(peer);
    this.#cluster?.joined(peer.address, book.joinedAt);
    return (packet, slab) => this.#dispatch(book, packet, slab);
  }

  /**
   * Adds a client of another relay, reached over a relay link, at its
   * address, unless a peer holds that address here already (null): a
   * client of this relay always wins. Its frames go through the returned
   * dispatch, which also takes what only a relay sends (RequestFailed, and
   * SocketClosed reasons passed on as they are).
   */
  attachRemote(peer: Peer): Dispatch | null {
    if (this.#table.bookAt(peer.address) !== undefined) return null;
    const book = this.#table.add(peer);
    return (packet, slab) => this.#dispatchRemote(book, packet, slab);
  }

  /**
   * Removes a closing peer: its connections close (the other ends get
   * SocketClosed), requests it made are dropped, and requests made to it
   * fail. Returns false for a peer that never joined, or already left.
   */
  detach(peer: Peer, reason: Reason): boolean {
    const book = this.#table.bookOf(peer);
    if (book === undefined) return false;
    // Each step runs even if one before it failed: a half-detached peer would stay routable.
    try {
      this.#data.detach(book, reason);
    } finally {
      try {
        this.#requests.detach(book);
      } finally {
        this.#table.remove(book);
      }
    }
    if (peer.remote !== true && this.#table.bookAt(peer.address) === undefined) {
      this.#cluster?.left(peer.address);
    }
    return true;
  }

  /**
   * Removes every connection that carried no data either way for
   * `socketIdleTimeoutMs` from ActiveSockets; both ends get SocketClosed(Idle).
   */
  closeIdleConnections(now: number): void {
    this.#data.closeIdle(now, this.#table.online());
  }

  /** Fails every request whose owner did not answer in time. */
  expireRequests(now: number): void {
    this.#requests.expire(now);
  }

  /** Handles one packet from a client of another relay: what only a relay sends, then the rest. */
  #dispatchRemote(book: PeerBook, packet: Packet, slab: Slab | null = null): void {
    switch (packet.type) {
      case PacketType.RequestFailed:
        return this.#requests.onRequestFailed(book, packet);
      case PacketType.SocketClosed:
        return this.#data.onClosed(book, packet, packet.reason);
      default:
        return this.#dispatch(book, packet, slab);
    }
  }

  /** Handles one packet from a joined peer. Throws ProtocolError on a violation. */
  #dispatch(book: PeerBook, packet: Packet, slab: Slab | null = null): void {
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
        return this.#requests.onStatusRequest(book, packet);
      case PacketType.SocketStatusResponse:
        return this.#requests.onStatusResponse(book, packet);
      case PacketType.EchoRequest:
        return this.#requests.onEchoRequest(book, packet);
      case PacketType.EchoReply:
        return this.#requests.onEchoReply(book, packet);
      case PacketType.SocketConnectionRequest:
        return this.#requests.onConnectionRequest(book, packet);
      case PacketType.SocketConnectionResponse:
        return this.#requests.onConnectionResponse(book, packet);
      case PacketType.ArbitraryData:
        return this.#data.onData(book, packet, slab);
      case PacketType.WindowUpdate:
        return this.#data.onWindowUpdate(book, packet);
      case PacketType.SocketShutdown:
        return this.#data.onShutdown(book, packet);
      case PacketType.SocketClosed:
        return this.#data.onClosed(book, packet);
      case PacketType.Ping:
        return book.peer.send({ type: PacketType.Pong, nonce: packet.nonce });
      case PacketType.Pong:
        return; // liveness is refreshed by any frame; nothing else to do
      case PacketType.Error:
        // The client says goodbye with a reason; nothing to answer.
        return void book.peer.close(Reason.PeerDisconnected, `client error: ${packet.message}`);
      case PacketType.Hello:
      case PacketType.Proof:
      case PacketType.Challenge:
      case PacketType.VirtualIP:
      case PacketType.RequestFailed:
        throw new ProtocolError(
          `Cannot accept packet: type 0x${
            packet.type.toString(16)
          } is not valid from an established client`,
          Reason.UnexpectedPacket,
        );
      default: {
        const _never: never = packet;
        throw new ProtocolError(`Cannot accept packet: ${_never}`, Reason.UnexpectedPacket);
      }
    }
  }
}
