/**
 * Requests in flight between a requester and a destination owner. The
 * requester names a request by its own id; the relay gives the owner a
 * fresh id of its own, so neither can guess or answer the other's.
 *
 * @module
 */

import type { ClientSession } from "./session.ts";

/** A request waiting for the owner's answer. */
export interface PendingRequest {
  readonly kind: "status" | "connect" | "echo";
  readonly requester: ClientSession;
  readonly requesterRequestId: number;
  readonly owner: ClientSession;
  readonly ownerRequestId: number;
  /** Monotonic time (ms) after which the request fails with Timeout. */
  readonly deadline: number;
  /** connect: the id the owner's end will have if it accepts. */
  readonly ownerConnectionId: number;
  /** connect: the requester's virtual port. */
  readonly requesterPort: number;
  /** connect: the owner's virtual port. */
  readonly ownerPort: number;
  /** connect: the requester's announced receive window. */
  readonly requesterWindow: number;
}

/**
 * Every pending request of the relay in deadline order. All requests share
 * one time-out, so insertion order is deadline order and expiry only looks
 * at the front.
 */
export class PendingRequests {
  readonly #byAge = new Set<PendingRequest>();

  /** Tracks a new request in both sessions. */
  add(request: PendingRequest): void {
    this.#byAge.add(request);
    request.requester.addOutgoing(request);
    request.owner.addIncoming(request);
  }

  /** Forgets a request; returns false if it was already settled. */
  delete(request: PendingRequest): boolean {
    if (!this.#byAge.delete(request)) return false;
    request.requester.removeOutgoing(request);
    request.owner.removeIncoming(request);
    return true;
  }

  /** Removes and returns the requests whose deadline is at or before `now`. */
  takeExpired(now: number): PendingRequest[] {
    const expired: PendingRequest[] = [];
    for (const request of this.#byAge) {
      if (request.deadline > now) break;
      expired.push(request);
    }
    for (const request of expired) this.delete(request);
    return expired;
  }

  /** How many requests are in flight. */
  get size(): number {
    return this.#byAge.size;
  }
}
