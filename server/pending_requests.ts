/**
 * The relay's table of requests in flight. A request ends with the owner's
 * answer, a time-out, or either side leaving; it is filed in both peers'
 * books, so either side's leaving finds it.
 *
 * @module
 */

import { Reason } from "../protocol/reason.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type { PeerBook } from "./peer_book.ts";
import { type PendingRequest, type RequestTerms, sendRequestFailed } from "./pending_request.ts";
import type { RoutingTable } from "./routing_table.ts";

/**
 * Every pending request of the relay in deadline order. All requests share
 * one time-out, so insertion order is deadline order and expiry only looks
 * at the front.
 */
export class PendingRequests {
  // Static after construction.
  readonly #timeoutMs: number;
  /** Where the other side's book is found when a request ends. */
  readonly #table: RoutingTable;

  // Owned by the router.
  readonly #byAge = new Set<PendingRequest>();

  /** No requests yet; each will fail after `timeoutMs` unanswered. */
  constructor(timeoutMs: number, table: RoutingTable) {
    this.#timeoutMs = timeoutMs;
    this.#table = table;
  }

  /** How many requests are in flight. */
  get size(): number {
    return this.#byAge.size;
  }

  /** Tracks a new request made at `now` in both books, under a fresh id for the owner. */
  track(
    requester: PeerBook,
    requesterRequestId: number,
    owner: PeerBook,
    terms: RequestTerms,
    now: number,
  ): PendingRequest {
    const request: PendingRequest = {
      kind: terms.kind,
      requester: requester.peer,
      requesterRequestId,
      owner: owner.peer,
      ownerRequestId: owner.issueRequestId(),
      deadline: now + this.#timeoutMs,
      ownerConnectionId: terms.ownerConnectionId,
      requesterPort: terms.requesterPort,
      ownerPort: terms.ownerPort,
      requesterWindow: terms.requesterWindow,
    };
    this.#byAge.add(request);
    requester.addOutgoing(request);
    owner.addIncoming(request);
    return request;
  }

  /**
   * Settles the request an owner's answer names and returns it, or
   * undefined for a late answer. Throws ProtocolError for an id never
   * issued to the owner or an answer of the wrong kind (`kind` null: any
   * kind, for a relay link's RequestFailed).
   */
  settle(
    owner: PeerBook,
    ownerRequestId: number,
    kind: PendingRequest["kind"] | null,
  ): PendingRequest | undefined {
    const request = owner.incoming.get(ownerRequestId);
    if (!request) {
      // Another relay may answer late for a peer it has since replaced: late, not a violation.
      if (!owner.isIssuedRequestId(ownerRequestId) && owner.peer.remote !== true) {
        throw new ProtocolError(
          `Cannot accept response: request id ${ownerRequestId} was never issued to you`,
          Reason.UnknownId,
        );
      }
      return undefined;
    }
    if (kind !== null && request.kind !== kind) {
      if (owner.peer.remote === true) return undefined;
      throw new ProtocolError(
        `Cannot accept response: request ${ownerRequestId} is a ${request.kind} request`,
        Reason.UnexpectedPacket,
      );
    }
    this.#delete(request);
    return request;
  }

  /** Drops the requests a leaving peer made and fails those made to it (Offline). */
  detach(book: PeerBook): void {
    for (const request of [...book.outgoing.values()]) this.#delete(request);
    for (const request of [...book.incoming.values()]) {
      if (this.#delete(request)) {
        sendRequestFailed(request.requester, request.requesterRequestId, Reason.Offline);
      }
    }
  }

  /** Fails (Timeout) every request whose deadline is at or before `now`. */
  expire(now: number): void {
    const expired: PendingRequest[] = [];
    for (const request of this.#byAge) {
      if (request.deadline > now) break;
      expired.push(request);
    }
    for (const request of expired) this.#delete(request);
    for (const request of expired) {
      sendRequestFailed(request.requester, request.requesterRequestId, Reason.Timeout);
    }
  }

  /** Forgets a request in the table and both books; returns false if it was already settled. */
  #delete(request: PendingRequest): boolean {
    if (!this.#byAge.delete(request)) return false;
    this.#table.bookOf(request.requester)?.removeOutgoing(request);
    this.#table.bookOf(request.owner)?.removeIncoming(request);
    return true;
  }
}
