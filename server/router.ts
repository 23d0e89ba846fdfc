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
import { Requests } from "./requests.ts";
import { RoutingTable } from "./routing_table.ts";

/** The relay's routing state: who is online, what is pending, what is connected. */
export class Router {
  // Owned by the router; the table is shared with the parts below, which only read it.
  readonly #table = new RoutingTable();
  readonly #requests: Requests;
  readonly #data: DataPlane;

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

  /** The books of the peers online now, read by the status page. */
  online(): IterableIterator<PeerBook> {
    return this.#table.online();
  }

  /** Peers online now. */
  get onlineCount(): number {
    return this.#table.onlineCount;
  }

  /** Requests in flight now. */
  get pendingCount(): number {
    return this.#requests.size;
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
    return (packet, slab) => this.#dispatch(book, packet, slab);
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
