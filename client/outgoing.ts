/**
 * The requests a client sends to its peers through the relay — `connect`'s
 * two steps, `status` and `ping` — and how their answers map to results or
 * errors.
 *
 * @module
 */

import { ConnectionRefused, HostUnreachable, ProtocolError } from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { PacketType, Reason } from "../protocol/constants.ts";
import type {
  EchoReplyPacket,
  RequestFailedPacket,
  SocketConnectionResponsePacket,
  SocketStatusResponsePacket,
} from "../protocol/packets.ts";
import type { Link } from "./link.ts";
import type { ClientConfig } from "./options.ts";
import { RequestTable } from "./requests.ts";
import type { SocketTable } from "./sockets.ts";
import {
  failureError,
  parseHost,
  parseTarget,
  type PingTarget,
  type SocketStatus,
  type VirtualTarget,
} from "./targets.ts";
import type { VirtualConn } from "./virtual_conn.ts";

/** The packets that answer this client's requests. */
export type AnswerPacket =
  | SocketStatusResponsePacket
  | SocketConnectionResponsePacket
  | RequestFailedPacket
  | EchoReplyPacket;

/** What sending a request needs from the client. */
export interface RequesterHost {
  /** This client's virtual IP, the source of every request. */
  address(): number;
  /** The current link; while reconnecting, waits for the next one (or throws). */
  linkReady(action: string): Promise<Link>;
}

/** Sends requests and settles them with their answers; see `AlphaNetClient`'s methods. */
export class Requester {
  // Static after construction.
  readonly #config: Pick<ClientConfig, "requestTimeoutMs" | "window">;
  readonly #sockets: SocketTable;
  readonly #host: RequesterHost;

  // Owned by the read loop and the public methods.
  readonly #requests = new RequestTable();

  constructor(
    config: Pick<ClientConfig, "requestTimeoutMs" | "window">,
    sockets: SocketTable,
    host: RequesterHost,
  ) {
    this.#config = config;
    this.#sockets = sockets;
    this.#host = host;
  }

  /** See `AlphaNetClient.connect`. */
  async connect(target: VirtualTarget): Promise<VirtualConn> {
    const destination = parseTarget("connect", target);
    const status = await this.#status(destination, target.port);
    const where = `${target.hostname}:${target.port}`;
    if (!status.online) throw new HostUnreachable(`Cannot connect to ${where}: host is offline`);
    if (!status.listening) {
      throw new ConnectionRefused(`Cannot connect to ${where}: nothing listens there`);
    }
    const link = await this.#host.linkReady("connect");
    const localPort = this.#sockets.reservePort();
    const answer = Promise.withResolvers<VirtualConn>();
    const requestId = this.#requests.open(this.#config.requestTimeoutMs, (packet) => {
      if (packet.type === PacketType.SocketConnectionResponse && packet.accepted) {
        // Registered here, in the read loop, so data right behind the answer finds it.
        const conn = this.#sockets.adopt(packet.connectionId, localPort, packet.window, {
          transport: "alphanet",
          hostname: target.hostname,
          port: target.port,
        }, true);
        answer.resolve(conn);
        return;
      }
      this.#sockets.freePort(localPort);
      answer.reject(
        packet.type === PacketType.RequestFailed
          ? failureError(where, packet.reason)
          : new ConnectionRefused(`Cannot connect to ${where}: connection denied`),
      );
    }, (error) => {
      this.#sockets.freePort(localPort);
      answer.reject(error);
    });
    link.send({
      type: PacketType.SocketConnectionRequest,
      requestId,
      connectionId: 0,
      source: this.#host.address(),
      sourcePort: localPort,
      destination,
      destinationPort: target.port,
      window: this.#config.window,
    });
    return answer.promise;
  }

  /** See `AlphaNetClient.status`. */
  async status(target: VirtualTarget): Promise<SocketStatus> {
    return await this.#status(parseTarget("query status of", target), target.port);
  }

  /** See `AlphaNetClient.ping`. */
  async ping(target: PingTarget): Promise<number> {
    const destination = parseHost("ping", target.hostname);
    const link = await this.#host.linkReady("ping");
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
    link.send({
      type: PacketType.EchoRequest,
      requestId,
      source: this.#host.address(),
      destination,
    });
    return await answer.promise;
  }

  /** Settles the request `packet` answers; called from the read loop of `link`. */
  answer(link: Link, packet: AnswerPacket): void {
    const delivered = this.#requests.answer(packet.requestId, packet);
    if (!delivered && packet.type === PacketType.SocketConnectionResponse && packet.accepted) {
      // We gave up on this request (time-out); tell the relay to drop the connection.
      link.send({
        type: PacketType.SocketClosed,
        connectionId: packet.connectionId,
        reason: Reason.Normal,
      });
    }
  }

  /** Fails every request in flight with `error`. */
  failAll(error: Error): void {
    this.#requests.failAll(error);
  }

  async #status(destination: number, port: number): Promise<SocketStatus> {
    const link = await this.#host.linkReady("query status");
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
      source: this.#host.address(),
      destination,
      destinationPort: port,
    });
    return answer.promise;
  }
}
