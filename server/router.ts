/**
 * Routes packets between client sessions: the seed's status and connection
 * requests, ActiveSockets, data within credit and closes. One handler per
 * packet type; handlers neither parse bytes nor touch SQL. Every source
 * address the relay writes is the sender's own assigned virtual IP.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { MAX_WINDOW_BYTES, PacketType, Reason } from "../protocol/constants.ts";
import type {
  ArbitraryDataPacket,
  EchoReplyPacket,
  EchoRequestPacket,
  Packet,
  SocketClosedPacket,
  SocketConnectionRequestPacket,
  SocketConnectionResponsePacket,
  SocketShutdownPacket,
  SocketStatusRequestPacket,
  SocketStatusResponsePacket,
  WindowUpdatePacket,
} from "../protocol/packets.ts";
import type { RelayConfig } from "./config.ts";
import { ConnectionEnd, grantCredit, linkEnds, unlinkEnds } from "./connections.ts";
import type { Logger } from "./log.ts";
import { type PendingRequest, PendingRequests } from "./pending.ts";
import type { ClientSession } from "./session.ts";

/** The relay's routing state: who is online, what is pending, what is connected. */
export class Router {
  readonly #config: RelayConfig;
  readonly #log: Logger;
  readonly #online = new Map<number, ClientSession>();
  readonly #pending = new PendingRequests();
  /** Data timestamps cost a clock read per frame: taken only when idle connections are closed. */
  readonly #trackActivity: boolean;

  /** Creates an empty router. */
  constructor(config: RelayConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    this.#trackActivity = config.socketIdleTimeoutMs > 0;
  }

  /** Clients online now. */
  get onlineCount(): number {
    return this.#online.size;
  }

  /** Requests in flight now. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** The online session that owns `address`, if any. */
  sessionFor(address: number): ClientSession | undefined {
    return this.#online.get(address);
  }

  /** Makes `session` the owner of its address, returning the session it replaces. */
  attach(session: ClientSession): ClientSession | undefined {
    const previous = this.#online.get(session.address);
    this.#online.set(session.address, session);
    return previous;
  }

  /**
   * Removes a closing session: its connections close (peers get
   * SocketClosed), requests it made are dropped, and requests made to it fail.
   */
  detach(session: ClientSession, reason: Reason): void {
    if (this.#online.get(session.address) === session) this.#online.delete(session.address);
    const peerReason = reason === Reason.Shutdown ? Reason.Shutdown : Reason.PeerDisconnected;
    for (const end of [...session.ends.values()]) {
      if (unlinkEnds(end) && end.peer.session !== session) {
        end.peer.session.send({
          type: PacketType.SocketClosed,
          connectionId: end.peer.id,
          reason: peerReason,
        });
      }
    }
    for (const request of [...session.outgoing.values()]) this.#pending.delete(request);
    for (const request of [...session.incoming.values()]) this.#fail(request, Reason.Offline);
  }

  /**
   * Removes every connection that carried no data either way for
   * `socketIdleTimeoutMs` from ActiveSockets (the seed's inactive-socket
   * removal); both ends get SocketClosed(Idle).
   */
  closeIdleConnections(now: number): void {
    const cutoff = now - this.#config.socketIdleTimeoutMs;
    for (const session of this.#online.values()) {
      for (const end of [...session.ends.values()]) {
        if (Math.max(end.activeAt, end.peer.activeAt) > cutoff || !unlinkEnds(end)) continue;
        for (const side of [end, end.peer]) {
          side.session.send({
            type: PacketType.SocketClosed,
            connectionId: side.id,
            reason: Reason.Idle,
          });
        }
      }
    }
  }

  /** Fails every request whose owner did not answer in time. */
  expireRequests(now: number): void {
    for (const request of this.#pending.takeExpired(now)) {
      this.#reply(request, Reason.Timeout);
    }
  }

  /** Handles one packet from an established session. Throws ProtocolError on a violation. */
  dispatch(session: ClientSession, packet: Packet): void {
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
        return this.#onStatusRequest(session, packet);
      case PacketType.SocketStatusResponse:
        return this.#onStatusResponse(session, packet);
      case PacketType.EchoRequest:
        return this.#onEchoRequest(session, packet);
      case PacketType.EchoReply:
        return this.#onEchoReply(session, packet);
      case PacketType.SocketConnectionRequest:
        return this.#onConnectionRequest(session, packet);
      case PacketType.SocketConnectionResponse:
        return this.#onConnectionResponse(session, packet);
      case PacketType.ArbitraryData:
        return this.#onData(session, packet);
      case PacketType.WindowUpdate:
        return this.#onWindowUpdate(session, packet);
      case PacketType.SocketShutdown:
        return this.#onShutdown(session, packet);
      case PacketType.SocketClosed:
        return this.#onClosed(session, packet);
      case PacketType.Ping:
        return session.send({ type: PacketType.Pong, nonce: packet.nonce });
      case PacketType.Pong:
        return; // liveness is refreshed by any frame; nothing else to do
      case PacketType.Error:
        // The client says goodbye with a reason; nothing to answer.
        return void session.close(Reason.PeerDisconnected, `client error: ${packet.message}`);
      case PacketType.Hello:
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

  #onStatusRequest(session: ClientSession, packet: SocketStatusRequestPacket): void {
    const owner = this.#admitRequest(session, packet.requestId, packet.source, packet.destination);
    if (!owner) return;
    const request = this.#track(
      session,
      packet.requestId,
      owner,
      "status",
      0,
      0,
      packet.destinationPort,
      0,
    );
    owner.send({
      type: PacketType.SocketStatusRequest,
      requestId: request.ownerRequestId,
      source: session.address,
      destination: owner.address,
      destinationPort: packet.destinationPort,
    });
  }

  #onEchoRequest(session: ClientSession, packet: EchoRequestPacket): void {
    const owner = this.#admitRequest(session, packet.requestId, packet.source, packet.destination);
    if (!owner) return;
    const request = this.#track(session, packet.requestId, owner, "echo", 0, 0, 0, 0);
    owner.send({
      type: PacketType.EchoRequest,
      requestId: request.ownerRequestId,
      source: session.address,
      destination: owner.address,
    });
  }

  #onEchoReply(session: ClientSession, packet: EchoReplyPacket): void {
    const request = this.#answered(session, packet.requestId, "echo");
    if (!request) return;
    request.requester.send({ type: PacketType.EchoReply, requestId: request.requesterRequestId });
  }

  #onStatusResponse(session: ClientSession, packet: SocketStatusResponsePacket): void {
    const request = this.#answered(session, packet.requestId, "status");
    if (!request) return;
    request.requester.send({
      type: PacketType.SocketStatusResponse,
      requestId: request.requesterRequestId,
      listening: packet.listening,
    });
  }

  #onConnectionRequest(session: ClientSession, packet: SocketConnectionRequestPacket): void {
    if (packet.connectionId !== 0) {
      throw new ProtocolError(
        `Cannot accept connection request: connection id must be 0, got ${packet.connectionId}`,
        Reason.UnexpectedPacket,
      );
    }
    const owner = this.#admitRequest(session, packet.requestId, packet.source, packet.destination);
    if (!owner) return;
    if (session.ends.size >= this.#config.maxConnectionsPerClient) {
      return this.#replyTo(session, packet.requestId, Reason.TooManyConnections);
    }
    const request = this.#track(
      session,
      packet.requestId,
      owner,
      "connect",
      owner.issueConnectionId(),
      packet.sourcePort,
      packet.destinationPort,
      packet.window,
    );
    owner.send({
      type: PacketType.SocketConnectionRequest,
      requestId: request.ownerRequestId,
      connectionId: request.ownerConnectionId,
      source: session.address,
      sourcePort: packet.sourcePort,
      destination: owner.address,
      destinationPort: packet.destinationPort,
      window: packet.window,
    });
  }

  #onConnectionResponse(session: ClientSession, packet: SocketConnectionResponsePacket): void {
    const request = this.#answered(session, packet.requestId, "connect");
    if (!request) {
      // The request timed out or its requester left: undo an acceptance the owner made meanwhile.
      if (
        packet.accepted && session.isIssuedConnectionId(packet.connectionId) &&
        !session.ends.has(packet.connectionId)
      ) {
        session.send({
          type: PacketType.SocketClosed,
          connectionId: packet.connectionId,
          reason: Reason.PeerDisconnected,
        });
      }
      return;
    }
    if (packet.connectionId !== (packet.accepted ? request.ownerConnectionId : 0)) {
      // The request is settled already: answer the requester before the owner is closed.
      this.#reply(request, Reason.Offline);
      throw new ProtocolError(
        `Cannot accept connection response: connection id ${packet.connectionId} does not match the request`,
        Reason.UnexpectedPacket,
      );
    }
    const requester = request.requester;
    if (!packet.accepted) {
      return requester.send({
        type: PacketType.SocketConnectionResponse,
        requestId: request.requesterRequestId,
        connectionId: 0,
        accepted: false,
        window: 0,
      });
    }
    // Checked again here for both sides: connects answered concurrently were not counted at request time.
    const limit = this.#config.maxConnectionsPerClient;
    if (session.ends.size >= limit || requester.ends.size >= limit) {
      session.send({
        type: PacketType.SocketClosed,
        connectionId: request.ownerConnectionId,
        reason: Reason.TooManyConnections,
      });
      return this.#replyTo(requester, request.requesterRequestId, Reason.TooManyConnections);
    }
    const ownerEnd = new ConnectionEnd(
      session,
      request.ownerConnectionId,
      request.ownerPort,
      packet.window,
    );
    const requesterEnd = new ConnectionEnd(
      requester,
      requester.issueConnectionId(),
      request.requesterPort,
      request.requesterWindow,
    );
    linkEnds(ownerEnd, requesterEnd);
    if (this.#trackActivity) ownerEnd.activeAt = requesterEnd.activeAt = performance.now();
    requester.send({
      type: PacketType.SocketConnectionResponse,
      requestId: request.requesterRequestId,
      connectionId: requesterEnd.id,
      accepted: true,
      window: packet.window,
    });
    this.#log.log("debug", "connection", {
      from: `${formatIpv4(requester.address)}:${request.requesterPort}`,
      to: `${formatIpv4(session.address)}:${request.ownerPort}`,
    });
  }

  #onData(session: ClientSession, packet: ArbitraryDataPacket): void {
    const end = session.endFor(packet.connectionId);
    if (!end) return;
    if (end.writeClosed) {
      throw new ProtocolError(
        `Cannot forward data: connection ${end.id} was shut down for writing`,
        Reason.UnexpectedPacket,
      );
    }
    if (this.#trackActivity) end.activeAt = performance.now();
    end.credit -= packet.payload.length;
    if (end.credit < 0) {
      throw new ProtocolError(
        `Cannot forward data: connection ${end.id} sent ${-end.credit} bytes beyond its credit`,
        Reason.FlowControl,
      );
    }
    end.peer.session.sendData(end.peer.id, packet.payload);
  }

  #onWindowUpdate(session: ClientSession, packet: WindowUpdatePacket): void {
    const end = session.endFor(packet.connectionId);
    if (!end) return;
    const sender = end.peer;
    const outstanding = sender.credit + sender.heldCredit + packet.increment;
    if (outstanding > MAX_WINDOW_BYTES) {
      throw new ProtocolError(
        `Cannot grant credit: connection ${end.id} would have ${outstanding} bytes outstanding, more than ${MAX_WINDOW_BYTES}`,
        Reason.FlowControl,
      );
    }
    // While the relay cannot write to this client as fast as data comes for it, new credit
    // waits: senders slow down instead of the relay queueing their windows (TCP backpressure
    // carried end to end, and only for connections into the congested client).
    if (session.congested) session.holdGrant(sender, packet.increment);
    else grantCredit(sender, packet.increment);
  }

  #onShutdown(session: ClientSession, packet: SocketShutdownPacket): void {
    const end = session.endFor(packet.connectionId);
    if (!end || end.writeClosed) return;
    end.writeClosed = true;
    end.peer.session.send({ type: PacketType.SocketShutdown, connectionId: end.peer.id });
  }

  #onClosed(session: ClientSession, packet: SocketClosedPacket): void {
    const end = session.endFor(packet.connectionId);
    if (!end || !unlinkEnds(end)) return;
    end.peer.session.send({
      type: PacketType.SocketClosed,
      connectionId: end.peer.id,
      reason: Reason.Normal,
    });
  }

  /**
   * Checks a new request: the source must be the sender's own address and
   * the request id new. Returns the online owner, or answers RequestFailed
   * and returns undefined.
   */
  #admitRequest(
    session: ClientSession,
    requestId: number,
    source: number,
    destination: number,
  ): ClientSession | undefined {
    if (source !== session.address) {
      throw new ProtocolError(
        `Cannot accept request: source ${formatIpv4(source)} is not your address ${
          formatIpv4(session.address)
        }`,
        Reason.SpoofedAddress,
      );
    }
    if (session.outgoing.has(requestId)) {
      throw new ProtocolError(
        `Cannot accept request: request id ${requestId} is already in flight`,
        Reason.UnexpectedPacket,
      );
    }
    if (!session.takeRequestToken(performance.now())) {
      this.#replyTo(session, requestId, Reason.RateLimited);
      return undefined;
    }
    if (session.outgoing.size >= this.#config.maxPendingPerClient) {
      this.#replyTo(session, requestId, Reason.TooManyPending);
      return undefined;
    }
    const owner = this.#online.get(destination);
    if (!owner) {
      this.#replyTo(session, requestId, Reason.Offline);
      return undefined;
    }
    return owner;
  }

  #track(
    requester: ClientSession,
    requesterRequestId: number,
    owner: ClientSession,
    kind: PendingRequest["kind"],
    ownerConnectionId: number,
    requesterPort: number,
    ownerPort: number,
    requesterWindow: number,
  ): PendingRequest {
    const request: PendingRequest = {
      kind,
      requester,
      requesterRequestId,
      owner,
      ownerRequestId: owner.issueRequestId(),
      deadline: performance.now() + this.#config.requestTimeoutMs,
      ownerConnectionId,
      requesterPort,
      ownerPort,
      requesterWindow,
    };
    this.#pending.add(request);
    return request;
  }

  /** The pending request an owner's answer settles, or undefined for a late answer. */
  #answered(
    owner: ClientSession,
    ownerRequestId: number,
    kind: PendingRequest["kind"],
  ): PendingRequest | undefined {
    const request = owner.incoming.get(ownerRequestId);
    if (!request) {
      if (!owner.isIssuedRequestId(ownerRequestId)) {
        throw new ProtocolError(
          `Cannot accept response: request id ${ownerRequestId} was never issued to you`,
          Reason.UnknownId,
        );
      }
      return undefined;
    }
    if (request.kind !== kind) {
      throw new ProtocolError(
        `Cannot accept response: request ${ownerRequestId} is a ${request.kind} request`,
        Reason.UnexpectedPacket,
      );
    }
    this.#pending.delete(request);
    return request;
  }

  #fail(request: PendingRequest, reason: Reason): void {
    if (this.#pending.delete(request)) this.#reply(request, reason);
  }

  #reply(request: PendingRequest, reason: Reason): void {
    this.#replyTo(request.requester, request.requesterRequestId, reason);
  }

  #replyTo(requester: ClientSession, requestId: number, reason: Reason): void {
    requester.send({ type: PacketType.RequestFailed, requestId, reason });
  }
}
