/**
 * The requests a client sends to its peers through the relay — `connect`'s
 * two steps, `status` and `ping` — and how their answers map to results or
 * errors.
 *
 * @module
 */

import {
  ConnectionRefused,
  HostUnreachable,
  ProtocolError,
  RelayError,
  TimedOut,
} from "../errors.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason, reasonName } from "../protocol/reason.ts";
import type {
  EchoReplyPacket,
  RequestFailedPacket,
  SocketConnectionResponsePacket,
  SocketStatusResponsePacket,
} from "../protocol/packets.ts";
import type { Link } from "./link.ts";
import type { ClientConfig } from "./options.ts";
import type { SocketTable } from "./socket_table.ts";
import {
  parseHost,
  parseTarget,
  type SocketStatus,
  type VirtualConnectOptions,
  type VirtualPingOptions,
} from "./socket_options.ts";
import { TimedWaiters } from "./timed_waiters.ts";
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
  readonly #requests = new TimedWaiters<AnswerPacket>();

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
  async connect(target: VirtualConnectOptions): Promise<VirtualConn> {
    const destination = parseTarget("connect to", target);
    const where = `${target.hostname}:${target.port}`;
    const status = await this.#status("connect to", where, destination, target.port);
    if (!status.online) throw new HostUnreachable(`Cannot connect to ${where}: host is offline`);
    if (!status.listening) {
      throw new ConnectionRefused(`Cannot connect to ${where}: nothing listens there`);
    }
    const link = await this.#host.linkReady(`connect to ${where}`);
    const localPort = this.#sockets.reservePort();
    const answer = Promise.withResolvers<VirtualConn>();
    const requestId = this.#open("connect to", where, (packet) => {
      if (packet.type === PacketType.SocketConnectionResponse && packet.accepted) {
        // Registered here, in the read loop, so data right behind the answer finds it.
        const conn = this.#sockets.adopt(packet.connectionId, localPort, packet.window, {
          transport: "tcp",
          hostname: target.hostname,
          port: target.port,
        }, true);
        answer.resolve(conn);
        return;
      }
      this.#sockets.freePort(localPort);
      answer.reject(
        packet.type === PacketType.RequestFailed
          ? failureError("connect to", where, packet.reason)
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
  async status(target: VirtualConnectOptions): Promise<SocketStatus> {
    const destination = parseTarget("query status of", target);
    const where = `${target.hostname}:${target.port}`;
    return await this.#status("query status of", where, destination, target.port);
  }

  /** See `AlphaNetClient.ping`. */
  async ping(target: VirtualPingOptions): Promise<number> {
    const destination = parseHost("ping", target.hostname);
    const link = await this.#host.linkReady(`ping ${target.hostname}`);
    const answer = Promise.withResolvers<number>();
    const sentAt = performance.now();
    const requestId = this.#open("ping", target.hostname, (packet) => {
      if (packet.type === PacketType.EchoReply) answer.resolve(performance.now() - sentAt);
      else if (packet.type === PacketType.RequestFailed) {
        answer.reject(failureError("ping", target.hostname, packet.reason));
      } else {
        answer.reject(
          new ProtocolError(
            `Cannot ping ${target.hostname}: unexpected answer`,
            Reason.UnexpectedPacket,
          ),
        );
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
    const delivered = this.#requests.resolve(packet.requestId, packet);
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
    this.#requests.rejectAll(error);
  }

  /** Registers a request: `onAnswer` gets its answer, `onError` a time-out or link loss. */
  #open(
    action: string,
    where: string,
    onAnswer: (packet: AnswerPacket) => void,
    onError: (error: Error) => void,
  ): number {
    const ms = this.#config.requestTimeoutMs;
    return this.#requests.add(
      ms,
      onAnswer,
      onError,
      () => new TimedOut(`Cannot ${action} ${where}: no answer within ${ms} ms`),
    );
  }

  /** A status request, for `status()` and as the first step of `connect()`. */
  async #status(
    action: string,
    where: string,
    destination: number,
    port: number,
  ): Promise<SocketStatus> {
    const link = await this.#host.linkReady(`${action} ${where}`);
    const answer = Promise.withResolvers<SocketStatus>();
    const requestId = this.#open(action, where, (packet) => {
      if (packet.type === PacketType.SocketStatusResponse) {
        answer.resolve({ online: true, listening: packet.listening });
      } else if (packet.type === PacketType.RequestFailed && packet.reason === Reason.Offline) {
        answer.resolve({ online: false, listening: false });
      } else if (packet.type === PacketType.RequestFailed) {
        answer.reject(failureError(action, where, packet.reason));
      } else {
        answer.reject(
          new ProtocolError(
            `Cannot ${action} ${where}: unexpected answer`,
            Reason.UnexpectedPacket,
          ),
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

/**
 * The error a RequestFailed answer stands for: the destination is offline or
 * did not answer, or the relay refused the request itself (rate limit, too
 * many requests or connections, ...), which is no refusal by the peer.
 */
function failureError(action: string, where: string, reason: Reason): Error {
  if (reason === Reason.Offline) {
    return new HostUnreachable(`Cannot ${action} ${where}: host is offline`);
  }
  if (reason === Reason.Timeout) {
    return new TimedOut(`Cannot ${action} ${where}: the host did not answer`);
  }
  return new RelayError(
    `Cannot ${action} ${where}: the relay refused the request: ${reasonName(reason)}`,
    reason,
  );
}
