/**
 * Routes packets from established client sessions: one handler per packet
 * type, each in the part of the relay that owns its state — requests in
 * {@linkcode Requests}, accepted connections in {@linkcode DataPlane}.
 * Handlers neither parse bytes nor touch SQL.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { PacketType, Reason } from "../protocol/constants.ts";
import type { Packet } from "../protocol/packets.ts";
import type { RelayConfig } from "./config.ts";
import { DataPlane } from "./data_plane.ts";
import type { Logger } from "./log.ts";
import { Requests } from "./requests.ts";
import type { ClientSession } from "./session.ts";

/** The relay's routing state: who is online, what is pending, what is connected. */
export class Router {
  readonly #online = new Map<number, ClientSession>();
  readonly #requests: Requests;
  readonly #data: DataPlane;

  /** Creates an empty router. */
  constructor(config: RelayConfig, log: Logger) {
    const data = new DataPlane(config);
    this.#data = data;
    this.#requests = new Requests(config, log, {
      sessionFor: (address) => this.#online.get(address),
      open: (ownerEnd, requesterEnd) => data.open(ownerEnd, requesterEnd),
    });
  }

  /** Clients online now. */
  get onlineCount(): number {
    return this.#online.size;
  }

  /** Requests in flight now. */
  get pendingCount(): number {
    return this.#requests.size;
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
    this.#data.detach(session, reason);
    this.#requests.detach(session);
  }

  /**
   * Removes every connection that carried no data either way for
   * `socketIdleTimeoutMs` from ActiveSockets; both ends get SocketClosed(Idle).
   */
  closeIdleConnections(now: number): void {
    this.#data.closeIdle(now, this.#online.values());
  }

  /** Fails every request whose owner did not answer in time. */
  expireRequests(now: number): void {
    this.#requests.expire(now);
  }

  /** Handles one packet from an established session. Throws ProtocolError on a violation. */
  dispatch(session: ClientSession, packet: Packet): void {
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
        return this.#requests.onStatusRequest(session, packet);
      case PacketType.SocketStatusResponse:
        return this.#requests.onStatusResponse(session, packet);
      case PacketType.EchoRequest:
        return this.#requests.onEchoRequest(session, packet);
      case PacketType.EchoReply:
        return this.#requests.onEchoReply(session, packet);
      case PacketType.SocketConnectionRequest:
        return this.#requests.onConnectionRequest(session, packet);
      case PacketType.SocketConnectionResponse:
        return this.#requests.onConnectionResponse(session, packet);
      case PacketType.ArbitraryData:
        return this.#data.onData(session, packet);
      case PacketType.WindowUpdate:
        return this.#data.onWindowUpdate(session, packet);
      case PacketType.SocketShutdown:
        return this.#data.onShutdown(session, packet);
      case PacketType.SocketClosed:
        return this.#data.onClosed(session, packet);
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
}
