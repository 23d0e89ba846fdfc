/**
 * What the relay records about one peer for routing: its connection ends,
 * the requests it made and those made to it, and the ids the relay issued
 * it. A client can only name ids issued to it, so an unknown id is a
 * violation while one that has since closed is a frame that crossed the close.
 *
 * @module
 */

import { Reason } from "../protocol/reason.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type { ConnectionEnd } from "./connections.ts";
import type { PendingRequest } from "./pending_request.ts";
import type { Peer } from "./peer.ts";

/** What a peer without connections or requests reads instead of a map of its own. */
const NONE: ReadonlyMap<number, never> = new Map<number, never>();

/**
 * One peer's ends, requests and issued ids. The routing table keeps one per
 * joined peer; the router hands it to every handler of that peer's frames,
 * so routing a frame never looks the book up.
 */
export class PeerBook {
  /** The peer the book is about: static after construction. */
  readonly peer: Peer;

  // Owned by the router. Most clients stay idle, so each map is created on first use.
  #ends: Map<number, ConnectionEnd> | null = null;
  #outgoing: Map<number, PendingRequest> | null = null;
  #incoming: Map<number, PendingRequest> | null = null;
  #lastConnectionId = 0;
  #lastRequestId = 0;

  /** An empty book for a peer that has just joined. */
  constructor(peer: Peer) {
    this.peer = peer;
  }

  /** A fresh connection id for an end of this client. */
  issueConnectionId(): number {
    return ++this.#lastConnectionId;
  }

  /** A fresh id for a request made to this client. */
  issueRequestId(): number {
    return ++this.#lastRequestId;
  }

  /** Whether the relay ever gave this client `id` as a request id. */
  isIssuedRequestId(id: number): boolean {
    return id >= 1 && id <= this.#lastRequestId;
  }

  /** Whether the relay ever gave this client `id` as a connection id. */
  isIssuedConnectionId(id: number): boolean {
    return id >= 1 && id <= this.#lastConnectionId;
  }

  /** Active connection ends of this client, by this client's connection id. */
  get ends(): ReadonlyMap<number, ConnectionEnd> {
    return this.#ends ?? NONE;
  }

  /** Requests this client made, by its own request id. */
  get outgoing(): ReadonlyMap<number, PendingRequest> {
    return this.#outgoing ?? NONE;
  }

  /** Requests made to this client, by the id the relay gave them. */
  get incoming(): ReadonlyMap<number, PendingRequest> {
    return this.#incoming ?? NONE;
  }

  /**
   * The active end `id` names, or undefined for an end that has closed (a
   * frame that crossed the close is dropped). An id never issued is a violation.
   */
  endFor(id: number): ConnectionEnd | undefined {
    const end = this.#ends?.get(id);
    if (!end && !this.isIssuedConnectionId(id)) {
      throw new ProtocolError(
        `Cannot use connection ${id}: it was never issued to you`,
        Reason.UnknownId,
      );
    }
    return end;
  }

  /** Registers an end of this client (routing only). */
  addEnd(end: ConnectionEnd): void {
    (this.#ends ??= new Map()).set(end.id, end);
  }

  /** Unregisters an end; false if it was not registered (routing only). */
  removeEnd(end: ConnectionEnd): boolean {
    return this.#ends?.delete(end.id) ?? false;
  }

  /** Registers a request this client made (routing only). */
  addOutgoing(request: PendingRequest): void {
    (this.#outgoing ??= new Map()).set(request.requesterRequestId, request);
  }

  /** Unregisters a request this client made (routing only). */
  removeOutgoing(request: PendingRequest): void {
    this.#outgoing?.delete(request.requesterRequestId);
  }

  /** Registers a request made to this client (routing only). */
  addIncoming(request: PendingRequest): void {
    (this.#incoming ??= new Map()).set(request.ownerRequestId, request);
  }

  /** Unregisters a request made to this client (routing only). */
  removeIncoming(request: PendingRequest): void {
    this.#incoming?.delete(request.ownerRequestId);
  }
}
