/**
 * A client of another relay, as this relay's router sees it: a
 * {@linkcode Peer} whose frames cross a relay link.
 *
 * Both relays run their own router over the connection: each treats the
 * other's client as a client of its own, with its own ids, credit, budgets
 * and limits. The link carries the frames one relay's router sends such a
 * peer ("relay to client"); the other relay turns each into the frame its
 * own client would have sent ("client to relay") and routes it. Ids cross
 * translated: a request this peer makes here gets an id of this peer's own,
 * mapped back to the other relay's id when the answer leaves; a connection
 * end's id is swapped for the other relay's id of the same connection
 * (learnt from the Routed envelope's `aux` when it opens), by the sender, so
 * the receiver routes data frames without a lookup of its own.
 *
 * @module
 */

import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import type { Packet } from "../../protocol/packets.ts";
import { DATA_FRAME_OVERHEAD_BYTES } from "../../protocol/codec.ts";
import type { Dispatch, Peer } from "../peer.ts";
import { MAX_ISSUED_ID } from "../peer_book.ts";
import { MeshProtocolError, type Routed } from "./mesh_frames.ts";

/** What a remote peer needs of its relay link. */
export interface RemotePeerLink {
  /** The other relay's node id. */
  readonly node: string;
  /** The other relay's address, for logs. */
  readonly remoteIp: string;
  /** Whether the link's queue is over its mark. */
  readonly congested: boolean;
  /** Undefined unless congested, else resolves once the queue is back down. */
  room(): Promise<void> | undefined;
  /**
   * Queues a Routed frame; `data` > 0 for a data frame, whose bytes
   * `owner.dataWritten` is told of once written.
   */
  route(from: number, to: number, aux: number, packet: Packet, owner: RemotePeer | null): void;
  /** The peer closed on this relay's side (a takeover, ids used up): forget it. */
  forget(peer: RemotePeer, reason: Reason): void;
}

/** A request this peer made here, while this relay's router handles it. */
interface Asked {
  /** The client of this relay it was made to. */
  readonly other: number;
  /** Its id on the other relay. */
  readonly theirRequestId: number;
  /** A connect's end id on the other relay (0 for status and echo). */
  readonly theirConnectionId: number;
}

/** One end of this peer's here, and the same connection on the other relay. */
interface EndPair {
  /** The client of this relay at the other end. */
  readonly other: number;
  /** The other relay's id of the end. */
  readonly theirEndId: number;
}

/** A client of another relay, behind one relay link. */
export class RemotePeer implements Peer {
  /** Always true: see {@linkcode Peer.remote}. */
  readonly remote = true;
  /** See {@linkcode Peer.firstIssuedId}: below 2^31, so at least 2^31 ids remain. */
  readonly firstIssuedId: number = crypto.getRandomValues(new Uint32Array(1))[0] >>> 1;
  /** The client's virtual IPv4, as its relay assigned it. */
  address: number;
  /** Set by the relay's buffer budget while it counts what it holds for this client. */
  dataWritten: ((bytes: number) => void) | undefined = undefined;

  // Static after construction.
  readonly #link: RemotePeerLink;

  // Owned by the link's read turn and the router.
  #dispatch: Dispatch | null = null;
  #closed = false;
  readonly #asked = new Map<number, Asked>();
  readonly #ends = new Map<number, EndPair>();
  #lastRequestId = 0;

  /** A peer for the client at `address` behind `link`; {@linkcode attach} makes it routable. */
  constructor(link: RemotePeerLink, address: number) {
    this.#link = link;
    this.address = address;
  }

  /** The other relay's address: a remote client's own IP is its relay's to know. */
  get realIp(): string {
    return this.#link.remoteIp;
  }

  /** The node id of the relay that holds the client. */
  get relayNode(): string {
    return this.#link.node;
  }

  /** Where this peer's frames go once the router took it in. */
  attach(dispatch: Dispatch): void {
    this.#dispatch = dispatch;
  }

  /** Whether this relay is done with the peer. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The link's congestion: every client behind it shares its queue. */
  get congested(): boolean {
    return this.#link.congested;
  }

  /** See {@linkcode RemotePeerLink.room}. */
  room(): Promise<void> | undefined {
    return this.#link.room();
  }

  /** Its own relay rate-limits the client: requests that reach this relay have passed. */
  takeRequestToken(): boolean {
    return true;
  }

  /** Translates a frame of this relay's router for the client and puts it on the link. */
  send(packet: Packet): void {
    if (this.#closed) return;
    const to = this.address;
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
      case PacketType.EchoRequest:
      case PacketType.SocketConnectionRequest:
        // Made by a client of this relay: the other relay maps the ids.
        return this.#link.route(packet.source, to, 0, packet, this);
      case PacketType.SocketStatusResponse:
      case PacketType.EchoReply:
      case PacketType.RequestFailed: {
        const asked = this.#settle(packet.requestId);
        if (asked === undefined) return;
        return this.#link.route(asked.other, to, 0, {
          ...packet,
          requestId: asked.theirRequestId,
        }, this);
      }
      case PacketType.SocketConnectionResponse: {
        const asked = this.#settle(packet.requestId);
        if (asked === undefined) return;
        if (packet.accepted) {
          this.#ends.set(packet.connectionId, {
            other: asked.other,
            theirEndId: asked.theirConnectionId,
          });
        }
        return this.#link.route(asked.other, to, packet.accepted ? packet.connectionId : 0, {
          ...packet,
          requestId: asked.theirRequestId,
          connectionId: packet.accepted ? asked.theirConnectionId : 0,
        }, this);
      }
      case PacketType.SocketShutdown: {
        const pair = this.#ends.get(packet.connectionId);
        if (pair === undefined) return;
        return this.#link.route(pair.other, to, 0, {
          ...packet,
          connectionId: pair.theirEndId,
        }, this);
      }
      case PacketType.SocketClosed: {
        const pair = this.#ends.get(packet.connectionId);
        if (pair === undefined) return;
        this.#ends.delete(packet.connectionId);
        return this.#link.route(pair.other, to, 0, {
          ...packet,
          connectionId: pair.theirEndId,
        }, this);
      }
      case PacketType.WindowUpdate:
        return this.sendWindowUpdate(packet.connectionId, packet.increment);
      case PacketType.ArbitraryData:
        return this.sendData(packet.connectionId, packet.payload);
      default:
        // Liveness and the handshake are the link's own; nothing else reaches a client.
        return;
    }
  }

  /** Queues data on the client's end `connectionId`, under the other relay's id of it. */
  sendData(connectionId: number, payload: Uint8Array): void {
    if (this.#closed) return;
    const pair = this.#ends.get(connectionId);
    if (pair === undefined) return;
    this.#link.route(pair.other, this.address, 0, {
      type: PacketType.ArbitraryData,
      connectionId: pair.theirEndId,
      payload,
    }, this);
  }

  /** Queues a credit grant to the client's end `connectionId`. */
  sendWindowUpdate(connectionId: number, increment: number): void {
    if (this.#closed) return;
    const pair = this.#ends.get(connectionId);
    if (pair === undefined) return;
    this.#link.route(pair.other, this.address, 0, {
      type: PacketType.WindowUpdate,
      connectionId: pair.theirEndId,
      increment,
    }, this);
  }

  /**
   * Turns a frame the other relay sent this client into the frame the client
   * would have sent this relay, and routes it. Throws
   * {@linkcode MeshProtocolError} for a frame no relay sends a client, and the
   * router's ProtocolError for one that breaks its rules: either closes the link.
   */
  deliver(routed: Routed): void {
    const dispatch = this.#dispatch;
    if (dispatch === null || this.#closed) return;
    const packet = routed.packet;
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
      case PacketType.EchoRequest:
      case PacketType.SocketConnectionRequest: {
        if (packet.source !== this.address || packet.destination !== routed.to) {
          throw new MeshProtocolError("a request's addresses differ from its envelope's");
        }
        const requestId = this.#nextRequestId();
        if (requestId === null) return;
        const connectionId = packet.type === PacketType.SocketConnectionRequest
          ? packet.connectionId
          : 0;
        this.#asked.set(requestId, {
          other: routed.to,
          theirRequestId: packet.requestId,
          theirConnectionId: connectionId,
        });
        return packet.type === PacketType.SocketConnectionRequest
          ? dispatch({ ...packet, requestId, connectionId: 0 })
          : dispatch({ ...packet, requestId });
      }
      case PacketType.SocketConnectionResponse:
        if (packet.accepted) {
          if (routed.aux === 0) throw new MeshProtocolError("an accept names no end");
          this.#ends.set(packet.connectionId, { other: routed.to, theirEndId: routed.aux });
        }
        return dispatch(packet);
      case PacketType.SocketClosed:
        this.#ends.delete(packet.connectionId);
        return dispatch(packet);
      case PacketType.SocketStatusResponse:
      case PacketType.EchoReply:
      case PacketType.RequestFailed:
      case PacketType.ArbitraryData:
      case PacketType.WindowUpdate:
      case PacketType.SocketShutdown:
        return dispatch(packet);
      default:
        throw new MeshProtocolError(
          `frame type 0x${packet.type.toString(16)} is not one a relay sends a client`,
        );
    }
  }

  /**
   * Ends this relay's side of the client: called by the router (a client of
   * this relay took the address over, ids ran out). The other relay is told
   * that the connections and requests it routed here are gone.
   */
  close(reason: Reason): void {
    if (this.#closed) return;
    this.#link.forget(this, reason);
  }

  /**
   * Marks the peer closed; with `tell`, the other relay learns that each
   * connection and request it routed here is gone (a close of this relay's
   * own making, not the link's end or the other relay's word).
   */
  shut(tell: boolean): void {
    if (this.#closed) return;
    if (tell) {
      for (const pair of this.#ends.values()) {
        this.#link.route(pair.other, this.address, 0, {
          type: PacketType.SocketClosed,
          connectionId: pair.theirEndId,
          reason: Reason.PeerDisconnected,
        }, null);
      }
      for (const asked of this.#asked.values()) {
        this.#link.route(asked.other, this.address, 0, {
          type: PacketType.RequestFailed,
          requestId: asked.theirRequestId,
          reason: Reason.Offline,
        }, null);
      }
    }
    this.#closed = true;
    this.#ends.clear();
    this.#asked.clear();
  }

  /**
   * Forgets the requests this peer made to the client at `address` of this
   * relay: the other relay dropped this peer's counterpart there, so no
   * answer has anyone to go to. This relay's router answers into nothing.
   */
  forgetRequestsTo(address: number): void {
    for (const [requestId, asked] of this.#asked) {
      if (asked.other === address) this.#asked.delete(requestId);
    }
  }

  /** Data frames' bytes as the budget counts them: told by the link once written. */
  static dataBytes(payloadLength: number): number {
    return payloadLength + DATA_FRAME_OVERHEAD_BYTES;
  }

  #settle(requestId: number): Asked | undefined {
    const asked = this.#asked.get(requestId);
    this.#asked.delete(requestId);
    return asked;
  }

  /** A fresh id for a request of this client here; null (and the peer closed) once none is left. */
  #nextRequestId(): number | null {
    if (this.#lastRequestId >= MAX_ISSUED_ID) {
      this.close(Reason.Internal);
      return null;
    }
    return ++this.#lastRequestId;
  }
}
