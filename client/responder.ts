/**
 * The serving side of a client: what it answers when peers ask, through the
 * relay, whether it listens on a port, whether it is there at all, or to
 * open a connection to one of its listeners.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason } from "../protocol/reason.ts";
import type {
  EchoRequestPacket,
  SocketConnectionRequestPacket,
  SocketStatusRequestPacket,
} from "../protocol/packets.ts";
import type { VirtualAddr } from "./addr.ts";
import type { Link } from "./link.ts";
import type { SocketTable } from "./socket_table.ts";

/** The requests a peer sends to this client. */
export type PeerRequestPacket =
  | SocketStatusRequestPacket
  | SocketConnectionRequestPacket
  | EchoRequestPacket;

/** What answering a peer needs from the client. */
export interface ResponderHost {
  /** This client's virtual IP: every request must be addressed to it. */
  address(): number;
  /** Whether `link` is still the client's link: an accept filter may outlive it. */
  isCurrent(link: Link): boolean;
}

/** Answers peers' requests from the client's socket table. */
export class Responder {
  // Static after construction.
  readonly #sockets: SocketTable;
  /** The receive window this client announces for each connection. */
  readonly #window: number;
  readonly #host: ResponderHost;

  constructor(sockets: SocketTable, window: number, host: ResponderHost) {
    this.#sockets = sockets;
    this.#window = window;
    this.#host = host;
  }

  /**
   * Answers a request that arrived on `link`; throws ProtocolError (ending
   * the link) if the relay delivered it to the wrong client.
   */
  answer(link: Link, packet: PeerRequestPacket): void {
    if (packet.destination !== this.#host.address()) {
      const destination = formatIpv4(packet.destination);
      throw new ProtocolError(
        `Cannot accept request: destination ${destination} is not this client`,
        Reason.UnexpectedPacket,
      );
    }
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
        return link.send({
          type: PacketType.SocketStatusResponse,
          requestId: packet.requestId,
          listening: this.#sockets.listener(packet.destinationPort) !== undefined,
        });
      case PacketType.SocketConnectionRequest:
        return this.#onConnectionRequest(link, packet);
      case PacketType.EchoRequest:
        return link.send({ type: PacketType.EchoReply, requestId: packet.requestId });
      default: {
        const _never: never = packet;
      }
    }
  }

  /** Accepts into the listener's backlog if it has room and its filter agrees, else denies. */
  #onConnectionRequest(link: Link, packet: SocketConnectionRequestPacket): void {
    const listener = this.#sockets.listener(packet.destinationPort);
    const deny = () =>
      link.send({
        type: PacketType.SocketConnectionResponse,
        requestId: packet.requestId,
        connectionId: 0,
        accepted: false,
        window: 0,
      });
    if (!listener || !listener.hasRoom) return deny();
    const remote: VirtualAddr = {
      transport: "tcp",
      hostname: formatIpv4(packet.source),
      port: packet.sourcePort,
    };
    const accept = () => {
      // A request of a link that has since dropped is forgotten with it: answer nothing.
      if (!this.#host.isCurrent(link)) return;
      if (!listener.hasRoom || this.#sockets.listener(packet.destinationPort) !== listener) {
        return deny();
      }
      const conn = this.#sockets.adopt(
        packet.connectionId,
        packet.destinationPort,
        packet.window,
        remote,
        false,
      );
      link.send({
        type: PacketType.SocketConnectionResponse,
        requestId: packet.requestId,
        connectionId: packet.connectionId,
        accepted: true,
        window: this.#window,
      });
      listener.enqueue(conn);
    };
    if (!listener.filter) return accept();
    // A filter that throws or rejects denies; so does an accept that fails after it.
    Promise.resolve()
      .then(() => listener.filter!(remote))
      .then((ok) => ok === true ? accept() : deny())
      .catch(() => deny());
  }
}
