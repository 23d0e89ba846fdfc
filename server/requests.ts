/**
 * Status, connection and echo requests between clients: each is admitted, passed
 * to the destination's owner under an id the relay picks, and settled by the
 * owner's answer, a time-out, or either side leaving. Every source address
 * the relay writes is the sender's own assigned virtual IP.
 *
 * @module
 */

import { RelayMetrics } from "./metrics.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason, reasonName } from "../protocol/reason.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type {
  EchoReplyPacket,
  EchoRequestPacket,
  RequestFailedPacket,
  SocketConnectionRequestPacket,
  SocketConnectionResponsePacket,
  SocketStatusRequestPacket,
  SocketStatusResponsePacket,
} from "../protocol/packets.ts";
import type { RelayConfig } from "./config.ts";
import { ConnectionEnd, type Inbox } from "./connections.ts";
import type { DataPlane } from "./data_plane.ts";
import type { Logger } from "./log.ts";
import { RateLimitedLog } from "./log_limiter.ts";
import type { Peer } from "./peer.ts";
import type { PeerBook } from "./peer_book.ts";
import { type PendingRequest, sendRequestFailed } from "./pending_request.ts";
import { PendingRequests } from "./pending_requests.ts";
import type { RoutingTable } from "./routing_table.ts";

/** The limits request routing enforces, as the relay's config states them. */
export type RequestConfig = Pick<
  RelayConfig,
  "maxConnectionsPerClient" | "maxPendingPerClient" | "requestTimeoutMs"
>;

const NO_CONNECTION = { ownerConnectionId: 0, requesterPort: 0, requesterWindow: 0 } as const;

/**
 * Finds a client that is not on this relay: resolves once a peer for
 * `address` is in the routing table (a client of another relay, behind a
 * relay link), or once it is known that no relay holds it. Never rejects.
 */
export type Locator = (address: number) => Promise<void>;

/** What `#admit` returns for a request whose destination is being looked up in the cluster. */
const LOOKING_UP = "looking-up";

/** The fields of a request that admission reads. */
interface RequestHead {
  readonly requestId: number;
  readonly source: number;
  readonly destination: number;
}

/** A request's handler, run again (`located`) once its destination was looked up. */
type RequestHandler<P extends RequestHead> = (book: PeerBook, packet: P, located: boolean) => void;

/** Credit a pending connect told its owner, counted in the requester's inbox meanwhile. */
interface Reservation {
  readonly inbox: Inbox;
  readonly credit: number;
}

/**
 * A client whose requests find nothing this many times within the window is
 * sweeping addresses or ports (an honest client knows where it connects), and
 * the relay logs it: once per window, within the refusal log's budget.
 */
const SWEEP_MISSES = 64;
const SWEEP_WINDOW_MS = 10_000;

/** Requests between clients, from admission to answer. */
export class Requests {
  // Static after construction.
  readonly #config: RequestConfig;
  readonly #log: Logger;
  /** Refusals and sweeps, which a client can cause at will: logged within a budget. */
  readonly #refusals: RateLimitedLog;
  /** Where destinations are found: the router's table. */
  readonly #table: RoutingTable;
  /** Where accepted connections go. */
  readonly #data: DataPlane;
  /** Where requests are counted. */
  readonly #metrics: RelayMetrics;

  // Owned by the router.
  readonly #pending: PendingRequests;
  /**
   * Credit each pending connect gave its owner already, counted in the
   * requester's inbox until it settles. All requests share one time-out, so
   * insertion order is deadline order, as in the pending table.
   */
  readonly #reserved = new Map<PendingRequest, Reservation>();
  /**
   * Where a request for an address no peer here holds is looked up, when
   * the relay is part of a cluster; set once, before any client joins.
   */
  locate: Locator | null = null;

  /** Request routing with nothing in flight. */
  constructor(
    config: RequestConfig,
    log: Logger,
    table: RoutingTable,
    data: DataPlane,
    metrics: RelayMetrics = new RelayMetrics(),
  ) {
    this.#metrics = metrics;
    this.#config = config;
    this.#log = log;
    this.#refusals = new RateLimitedLog(log);
    this.#table = table;
    this.#data = data;
    this.#pending = new PendingRequests(config.requestTimeoutMs, table);
  }

  /** Requests in flight now. */
  get size(): number {
    return this.#pending.size;
  }

  /** Drops the requests a leaving peer made and fails those made to it. */
  detach(book: PeerBook): void {
    for (const request of book.outgoing.values()) this.#release(request);
    for (const request of book.incoming.values()) this.#release(request);
    this.#pending.detach(book);
  }

  /** Fails every request whose owner did not answer in time. */
  expire(now: number): void {
    for (const request of this.#reserved.keys()) {
      if (request.deadline > now) break;
      this.#release(request);
    }
    this.#pending.expire(now);
    this.#refusals.report(now);
  }

  /** Asks the destination's owner whether a port listens. */
  onStatusRequest(book: PeerBook, packet: SocketStatusRequestPacket, located = false): void {
    const now = performance.now();
    const owner = this.#admit(book, packet, now, located, this.onStatusRequest);
    if (owner === undefined || owner === LOOKING_UP) return;
    const request = this.#pending.track(book, packet.requestId, owner, {
      kind: "status",
      ...NO_CONNECTION,
      ownerPort: packet.destinationPort,
    }, now);
    owner.peer.send({
      type: PacketType.SocketStatusRequest,
      requestId: request.ownerRequestId,
      source: book.peer.address,
      destination: owner.peer.address,
      destinationPort: packet.destinationPort,
    });
  }

  /** Passes an owner's status answer back to the requester. */
  onStatusResponse(book: PeerBook, packet: SocketStatusResponsePacket): void {
    const request = this.#pending.settle(book, packet.requestId, "status");
    if (!request) return;
    if (!packet.listening) this.#noteMiss(request.requester, performance.now());
    request.requester.send({
      type: PacketType.SocketStatusResponse,
      requestId: request.requesterRequestId,
      listening: packet.listening,
    });
  }

  /** Asks the destination's owner for an echo. */
  onEchoRequest(book: PeerBook, packet: EchoRequestPacket, located = false): void {
    const now = performance.now();
    const owner = this.#admit(book, packet, now, located, this.onEchoRequest);
    if (owner === undefined || owner === LOOKING_UP) return;
    const request = this.#pending.track(book, packet.requestId, owner, {
      kind: "echo",
      ...NO_CONNECTION,
      ownerPort: 0,
    }, now);
    owner.peer.send({
      type: PacketType.EchoRequest,
      requestId: request.ownerRequestId,
      source: book.peer.address,
      destination: owner.peer.address,
    });
  }

  /** Passes an owner's echo back to the requester. */
  onEchoReply(book: PeerBook, packet: EchoReplyPacket): void {
    const request = this.#pending.settle(book, packet.requestId, "echo");
    if (!request) return;
    request.requester.send({ type: PacketType.EchoReply, requestId: request.requesterRequestId });
  }

  /** Asks the destination's owner to accept a connection, under the end id it would get. */
  onConnectionRequest(
    book: PeerBook,
    packet: SocketConnectionRequestPacket,
    located = false,
  ): void {
    if (packet.connectionId !== 0) {
      throw new ProtocolError(
        `Cannot accept connection request: connection id must be 0, got ${packet.connectionId}`,
        Reason.UnexpectedPacket,
      );
    }
    const now = performance.now();
    const owner = this.#admit(book, packet, now, located, this.onConnectionRequest);
    if (owner === undefined || owner === LOOKING_UP) return;
    if (book.ends.size >= this.#config.maxConnectionsPerClient) {
      return this.#refuse(book.peer, packet.requestId, Reason.TooManyConnections);
    }
    const request = this.#pending.track(book, packet.requestId, owner, {
      kind: "connect",
      ownerConnectionId: owner.issueConnectionId(),
      requesterPort: packet.sourcePort,
      ownerPort: packet.destinationPort,
      requesterWindow: packet.window,
    }, now);
    // The owner's credit is told now: counted in the requester's inbox until the connect settles.
    const inbox = this.#data.budget.inboxOf(book.peer);
    const credit = this.#data.budget.take(inbox, packet.window);
    this.#reserved.set(request, { inbox, credit });
    owner.peer.send({
      type: PacketType.SocketConnectionRequest,
      requestId: request.ownerRequestId,
      connectionId: request.ownerConnectionId,
      source: book.peer.address,
      sourcePort: packet.sourcePort,
      destination: owner.peer.address,
      destinationPort: packet.destinationPort,
      window: credit,
    });
  }

  /** Settles a connection request: the owner refused, or both ends join ActiveSockets. */
  onConnectionResponse(book: PeerBook, packet: SocketConnectionResponsePacket): void {
    const owner = book.peer;
    const request = this.#pending.settle(book, packet.requestId, "connect");
    if (!request) {
      // The request timed out or its requester left: undo an acceptance the owner made meanwhile.
      // Another relay's accept names its own end too: undone there even if no longer ours.
      if (
        packet.accepted && !book.ends.has(packet.connectionId) &&
        (book.peer.remote === true || book.isIssuedConnectionId(packet.connectionId))
      ) {
        owner.send({
          type: PacketType.SocketClosed,
          connectionId: packet.connectionId,
          reason: Reason.PeerDisconnected,
        });
      }
      return;
    }
    // Kept as the owner end's credit if the connection opens below, else given back.
    const reservation = this.#takeReservation(request);
    if (packet.connectionId !== (packet.accepted ? request.ownerConnectionId : 0)) {
      this.#giveBack(reservation);
      // The request is settled already: answer the requester before the owner is closed.
      sendRequestFailed(request.requester, request.requesterRequestId, Reason.Offline);
      throw new ProtocolError(
        `Cannot accept connection response: connection id ${packet.connectionId} does not match the request`,
        Reason.UnexpectedPacket,
      );
    }
    const requester = request.requester;
    if (!packet.accepted) {
      this.#giveBack(reservation);
      this.#noteMiss(requester, performance.now());
      return requester.send({
        type: PacketType.SocketConnectionResponse,
        requestId: request.requesterRequestId,
        connectionId: 0,
        accepted: false,
        window: 0,
      });
    }
    // A pending request's requester is joined: leaving drops the requests it made.
    const requesterBook = this.#table.bookOf(requester)!;
    // Checked again here for both sides: connects answered concurrently were not counted at request time.
    const limit = this.#config.maxConnectionsPerClient;
    if (book.ends.size >= limit || requesterBook.ends.size >= limit) {
      this.#giveBack(reservation);
      owner.send({
        type: PacketType.SocketClosed,
        connectionId: request.ownerConnectionId,
        reason: Reason.TooManyConnections,
      });
      return sendRequestFailed(requester, request.requesterRequestId, Reason.TooManyConnections);
    }
    if (!requesterBook.canIssueIds) {
      this.#giveBack(reservation);
      // The requester is closed for it; the owner's pre-assigned end is undone.
      this.#retire(requesterBook);
      return owner.send({
        type: PacketType.SocketClosed,
        connectionId: request.ownerConnectionId,
        reason: Reason.PeerDisconnected,
      });
    }
    const ownerEnd = new ConnectionEnd(
      owner,
      request.ownerConnectionId,
      request.ownerPort,
      packet.window,
    );
    const requesterEnd = new ConnectionEnd(
      requester,
      requesterBook.issueConnectionId(),
      request.requesterPort,
      request.requesterWindow,
    );
    const requesterCredit = this.#data.open(ownerEnd, requesterEnd, reservation?.credit);
    requester.send({
      type: PacketType.SocketConnectionResponse,
      requestId: request.requesterRequestId,
      connectionId: requesterEnd.id,
      accepted: true,
      window: requesterCredit,
    });
    this.#log.log("debug", "connection", {
      from: `${formatIpv4(requester.address)}:${request.requesterPort}`,
      to: `${formatIpv4(owner.address)}:${request.ownerPort}`,
    });
  }

  /**
   * A request made to a client of another relay failed there (Offline, a
   * limit): the requester gets the same reason. Only relay links send it.
   */
  onRequestFailed(book: PeerBook, packet: RequestFailedPacket): void {
    const request = this.#pending.settle(book, packet.requestId, null);
    if (!request) return;
    this.#release(request);
    if (packet.reason === Reason.Offline) this.#noteMiss(request.requester, performance.now());
    sendRequestFailed(request.requester, request.requesterRequestId, packet.reason);
  }

  /** Gives back the credit a pending connect reserved, if it still holds it. */
  #release(request: PendingRequest): void {
    this.#giveBack(this.#takeReservation(request));
  }

  /** The credit a pending connect reserved, no longer the table's to give back. */
  #takeReservation(request: PendingRequest): Reservation | undefined {
    const reservation = this.#reserved.get(request);
    this.#reserved.delete(request);
    return reservation;
  }

  #giveBack(reservation: Reservation | undefined): void {
    if (reservation) this.#data.budget.giveBack(reservation.inbox, reservation.credit);
  }

  /**
   * Checks a new request made at `now`: the source must be the sender's own
   * address and the request id new. Returns the online owner's book; or
   * answers RequestFailed and returns undefined; or, in a cluster, starts
   * looking the destination up and returns LOOKING_UP: `handler` then runs
   * the request again (`located`: its token is spent, its checks passed).
   * The handler is passed, not a closure, so a request allocates none.
   */
  #admit<P extends RequestHead>(
    book: PeerBook,
    packet: P,
    now: number,
    located: boolean,
    handler: RequestHandler<P>,
  ): PeerBook | undefined | typeof LOOKING_UP {
    const { requestId, source, destination } = packet;
    const sender = book.peer;
    if (!located) {
      this.#metrics.requests++;
      if (source !== sender.address) {
        throw new ProtocolError(
          `Cannot accept request: source ${formatIpv4(source)} is not your address ${
            formatIpv4(sender.address)
          }`,
          Reason.SpoofedAddress,
        );
      }
      if (book.outgoing.has(requestId) || book.looking?.has(requestId)) {
        throw new ProtocolError(
          `Cannot accept request: request id ${requestId} is already in flight`,
          Reason.UnexpectedPacket,
        );
      }
      if (!sender.takeRequestToken(now)) {
        this.#refuse(sender, requestId, Reason.RateLimited);
        return undefined;
      }
    }
    if (book.outgoing.size + (book.looking?.size ?? 0) >= this.#config.maxPendingPerClient) {
      this.#refuse(sender, requestId, Reason.TooManyPending);
      return undefined;
    }
    let owner = this.#table.bookAt(destination);
    if (owner === undefined && !located && this.locate !== null && sender.remote !== true) {
      this.#lookUp(book, packet, handler);
      return LOOKING_UP;
    }
    // One relay hop at most: another relay's client reaches only this relay's own clients.
    if (owner !== undefined && owner.peer.remote === true && sender.remote === true) {
      owner = undefined;
    }
    if (owner && !owner.canIssueIds) this.#retire(owner);
    if (!owner || !owner.canIssueIds) {
      this.#refuse(sender, requestId, Reason.Offline, destination);
      this.#noteMiss(book, now);
      return undefined;
    }
    return owner;
  }

  /**
   * Looks the destination of `book`'s request `packet` up in the cluster,
   * then runs `handler` on it again unless the requester left meanwhile.
   */
  #lookUp<P extends RequestHead>(book: PeerBook, packet: P, handler: RequestHandler<P>): void {
    const looking = book.looking ??= new Set();
    looking.add(packet.requestId);
    void this.locate!(packet.destination).then(() => {
      looking.delete(packet.requestId);
      if (this.#table.bookOf(book.peer) !== book) return;
      try {
        handler.call(this, book, packet, true);
      } catch (error) {
        // The checks that throw ran before the lookup; anything now is a relay bug, this client's only.
        this.#log.log("error", "internal-error", { during: "request", error: String(error) });
        void book.peer.close(Reason.Internal, "Cannot route request: internal error");
      }
    });
  }

  /**
   * Closes a peer whose link has issued its last id (ids are never reused on
   * a link): checked before issuing, so running out never throws inside
   * another client's read turn. The client reconnects with fresh counters.
   */
  #retire(book: PeerBook): void {
    this.#log.log("warn", "ids-exhausted", { vip: formatIpv4(book.peer.address) });
    void book.peer.close(
      Reason.Internal,
      "Cannot issue ids: this link has used every connection or request id; reconnect",
    );
  }

  /**
   * Counts a request of `requester` that found nothing, and logs a sweep
   * when they pile up: an address sweep (Offline) or a port scan (not
   * listening, refused) is then visible to the operator.
   */
  #noteMiss(requester: PeerBook | Peer, now: number): void {
    const book = "peer" in requester ? requester : this.#table.bookOf(requester);
    if (book === undefined) return;
    if (now - book.missesSince > SWEEP_WINDOW_MS) {
      book.misses = 0;
      book.missesSince = now;
    }
    if (++book.misses !== SWEEP_MISSES) return;
    this.#refusals.log("warn", "sweep", {
      client: book.peer.realIp,
      vip: formatIpv4(book.peer.address),
      misses: book.misses,
      withinMs: Math.round(now - book.missesSince),
    });
  }

  /**
   * Answers a request the relay will not pass on, and says so at debug
   * level: an operator chasing "why can't X reach Y" sees each refusal.
   */
  #refuse(sender: Peer, requestId: number, reason: Reason, destination?: number): void {
    sendRequestFailed(sender, requestId, reason);
    if (!this.#refusals.enabled("debug")) return;
    this.#refusals.log("debug", "request-refused", {
      from: formatIpv4(sender.address),
      ...(destination === undefined ? {} : { to: formatIpv4(destination) }),
      reason: reasonName(reason),
    });
  }
}
