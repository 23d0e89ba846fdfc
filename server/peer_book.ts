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
import { relayTestHooks } from "./_testing.ts";

/**
 * The largest connection or request id the relay issues on one link: ids are
 * u32 on the wire and never reused, so a link that has used them all must
 * be closed (and the client reconnects with fresh counters) rather than wrap.
 */
export const MAX_ISSUED_ID = 0xffff_ffff;

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
  /**
   * Requests of this client that found nothing (offline address, closed
   * port, refused connection) since `missesSince` (performance.now() ms):
   * many in a short time is a sweep, which the relay logs. Owned by Requests.
   */
  misses = 0;
  missesSince = 0;
  /**
   * Request ids of this client whose destination is being looked up in the
   * cluster (see `Requests.locate`): in flight like its pending requests,
   * and counted with them. Owned by Requests; null while none is.
   */
  looking: Set<number> | null = null;
  /** When the peer joined (Date.now() ms), for the status page. */
  readonly joinedAt: number = Date.now();
  /** Payload bytes this peer sent that the relay forwarded; bumped by the data plane. */
  relayedBytes = 0;
  /** Ids at or below this were never issued: 0, or where a test made the counters start. */
  readonly #firstId: number;
  #lastConnectionId: number;
  #lastRequestId: number;

  /** An empty book for a peer that has just joined. */
  constructor(peer: Peer) {
    this.peer = peer;
    this.#firstId = this.#lastConnectionId = this.#lastRequestId = peer.firstIssuedId ??
      relayTestHooks.firstIssuedId;
  }

  /**
   * Whether a connection id and a request id are both left to issue. Callers
   * check before they issue: running out is the peer's end (it is closed),
   * never an exception thrown inside another client's read turn.
   */
  get canIssueIds(): boolean {
    return this.#lastConnectionId < MAX_ISSUED_ID && this.#lastRequestId < MAX_ISSUED_ID;
  }

  /** A fresh connection id for an end of this client; throws RangeError once none is left. */
  issueConnectionId(): number {
    if (this.#lastConnectionId >= MAX_ISSUED_ID) throw exhausted("connection");
    return ++this.#lastConnectionId;
  }

  /** A fresh id for a request made to this client; throws RangeError once none is left. */
  issueRequestId(): number {
    if (this.#lastRequestId >= MAX_ISSUED_ID) throw exhausted("request");
    return ++this.#lastRequestId;
  }

  /** Whether the relay ever gave this client `id` as a request id. */
  isIssuedRequestId(id: number): boolean {
    return id > this.#firstId && id <= this.#lastRequestId;
  }

  /** Whether the relay ever gave this client `id` as a connection id. */
  isIssuedConnectionId(id: number): boolean {
    return id > this.#firstId && id <= this.#lastConnectionId;
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
    // Another relay may still send for a connection of a peer since replaced: late, not a violation.
    if (!end && !this.isIssuedConnectionId(id) && this.peer.remote !== true) {
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

function exhausted(kind: string): RangeError {
  return new RangeError(`Cannot issue ${kind} id: all ${MAX_ISSUED_ID} ids of this link are used`);
}
