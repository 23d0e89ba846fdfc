/**
 * The seed's status, connection and echo requests: each is admitted, passed
 * to the destination's owner under an id the relay picks, and settled by the
 * owner's answer, a time-out, or either side leaving. Every source address
 * the relay writes is the sender's own assigned virtual IP.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { PacketType, Reason } from "../protocol/constants.ts";
import type {
  EchoReplyPacket,
  EchoRequestPacket,
  SocketConnectionRequestPacket,
  SocketConnectionResponsePacket,
  SocketStatusRequestPacket,
  SocketStatusResponsePacket,
} from "../protocol/packets.ts";
import type { RelayConfig } from "./config.ts";
import { ConnectionEnd } from "./connections.ts";
import type { Logger } from "./log.ts";
import { PendingRequests, sendRequestFailed } from "./pending.ts";
import type { ClientSession } from "./session.ts";

/** The limits request routing enforces, as the relay's config states them. */
export type RequestConfig = Pick<
  RelayConfig,
  "maxConnectionsPerClient" | "maxPendingPerClient" | "requestTimeoutMs"
>;

/** What request routing needs from the rest of the router. */
export interface RequestRoutes {
  /** The online session that owns `address`, if any. */
  sessionFor(address: number): ClientSession | undefined;
  /** Makes two new ends one active connection. */
  open(ownerEnd: ConnectionEnd, requesterEnd: ConnectionEnd): void;
}

const NO_CONNECTION = { ownerConnectionId: 0, requesterPort: 0, requesterWindow: 0 } as const;

/** Requests between clients, from admission to answer. */
export class Requests {
  readonly #config: RequestConfig;
  readonly #log: Logger;
  readonly #routes: RequestRoutes;
  readonly #pending: PendingRequests;

  /** Request routing with nothing in flight. */
  constructor(config: RequestConfig, log: Logger, routes: RequestRoutes) {
    this.#config = config;
    this.#log = log;
    this.#routes = routes;
    this.#pending = new PendingRequests(config.requestTimeoutMs);
  }

  /** Requests in flight now. */
  get size(): number {
    return this.#pending.size;
  }

  /** Drops the requests a leaving client made and fails those made to it. */
  detach(session: ClientSession): void {
    this.#pending.detach(session);
  }

  /** Fails every request whose owner did not answer in time. */
  expire(now: number): void {
    this.#pending.expire(now);
  }

  /** Asks the destination's owner whether a port listens. */
  onStatusRequest(session: ClientSession, packet: SocketStatusRequestPacket): void {
    const owner = this.#admit(session, packet.requestId, packet.source, packet.destination);
    if (!owner) return;
    const request = this.#pending.track(session, packet.requestId, owner, {
      kind: "status",
      ...NO_CONNECTION,
      ownerPort: packet.destinationPort,
    });
    owner.send({
      type: PacketType.SocketStatusRequest,
      requestId: request.ownerRequestId,
      source: session.address,
      destination: owner.address,
      destinationPort: packet.destinationPort,
    });
  }

  /** Passes an owner's status answer back to the requester. */
  onStatusResponse(session: ClientSession, packet: SocketStatusResponsePacket): void {
    const request = this.#pending.settle(session, packet.requestId, "status");
    if (!request) return;
    request.requester.send({
      type: PacketType.SocketStatusResponse,
      requestId: request.requesterRequestId,
      listening: packet.listening,
    });
  }

  /** Asks the destination's owner for an echo. */
  onEchoRequest(session: ClientSession, packet: EchoRequestPacket): void {
    const owner = this.#admit(session, packet.requestId, packet.source, packet.destination);
    if (!owner) return;
    const request = this.#pending.track(session, packet.requestId, owner, {
      kind: "echo",
      ...NO_CONNECTION,
      ownerPort: 0,
    });
    owner.send({
      type: PacketType.EchoRequest,
      requestId: request.ownerRequestId,
      source: session.address,
      destination: owner.address,
    });
  }

  /** Passes an owner's echo back to the requester. */
  onEchoReply(session: ClientSession, packet: EchoReplyPacket): void {
    const request = this.#pending.settle(session, packet.requestId, "echo");
    if (!request) return;
    request.requester.send({ type: PacketType.EchoReply, requestId: request.requesterRequestId });
  }

  /** Asks the destination's owner to accept a connection, under the end id it would get. */
  onConnectionRequest(session: ClientSession, packet: SocketConnectionRequestPacket): void {
    if (packet.connectionId !== 0) {
      throw new ProtocolError(
        `Cannot accept connection request: connection id must be 0, got ${packet.connectionId}`,
        Reason.UnexpectedPacket,
      );
    }
    const owner = this.#admit(session, packet.requestId, packet.source, packet.destination);
    if (!owner) return;
    if (session.ends.size >= this.#config.maxConnectionsPerClient) {
      return sendRequestFailed(session, packet.requestId, Reason.TooManyConnections);
    }
    const request = this.#pending.track(session, packet.requestId, owner, {
      kind: "connect",
      ownerConnectionId: owner.issueConnectionId(),
      requesterPort: packet.sourcePort,
      ownerPort: packet.destinationPort,
      requesterWindow: packet.window,
    });
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

  /** Settles a connection request: the owner refused, or both ends join ActiveSockets. */
  onConnectionResponse(session: ClientSession, packet: SocketConnectionResponsePacket): void {
    const request = this.#pending.settle(session, packet.requestId, "connect");
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
      sendRequestFailed(request.requester, request.requesterRequestId, Reason.Offline);
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
      return sendRequestFailed(requester, request.requesterRequestId, Reason.TooManyConnections);
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
    this.#routes.open(ownerEnd, requesterEnd);
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

  /**
   * Checks a new request: the source must be the sender's own address and
   * the request id new. Returns the online owner, or answers RequestFailed
   * and returns undefined.
   */
  #admit(
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
      sendRequestFailed(session, requestId, Reason.RateLimited);
      return undefined;
    }
    if (session.outgoing.size >= this.#config.maxPendingPerClient) {
      sendRequestFailed(session, requestId, Reason.TooManyPending);
      return undefined;
    }
    const owner = this.#routes.sessionFor(destination);
    if (!owner) {
      sendRequestFailed(session, requestId, Reason.Offline);
      return undefined;
    }
    return owner;
  }
}
