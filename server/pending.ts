/**
 * Requests in flight between a requester and a destination owner. The
 * requester names a request by its own id; the relay gives the owner a
 * fresh id of its own, so neither can guess or answer the other's. A
 * request ends with the owner's answer, a time-out, or either side leaving.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { PacketType, Reason } from "../protocol/constants.ts";
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

/** What a request carries besides who made it, to whom, and when it expires. */
export type RequestTerms = Pick<
  PendingRequest,
  "kind" | "ownerConnectionId" | "requesterPort" | "ownerPort" | "requesterWindow"
>;

/** Tells a requester its request `requestId` failed. */
export function sendRequestFailed(
  requester: ClientSession,
  requestId: number,
  reason: Reason,
): void {
  requester.send({ type: PacketType.RequestFailed, requestId, reason });
}

/**
 * Every pending request of the relay in deadline order. All requests share
 * one time-out, so insertion order is deadline order and expiry only looks
 * at the front.
 */
export class PendingRequests {
  readonly #timeoutMs: number;
  readonly #byAge = new Set<PendingRequest>();

  /** No requests yet; each will fail after `timeoutMs` unanswered. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** How many requests are in flight. */
  get size(): number {
    return this.#byAge.size;
  }

  /** Tracks a new request in both sessions, under a fresh id for the owner. */
  track(
    requester: ClientSession,
    requesterRequestId: number,
    owner: ClientSession,
    terms: RequestTerms,
  ): PendingRequest {
    const request: PendingRequest = {
      kind: terms.kind,
      requester,
      requesterRequestId,
      owner,
      ownerRequestId: owner.issueRequestId(),
      deadline: performance.now() + this.#timeoutMs,
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
   * issued to the owner or an answer of the wrong kind.
   */
  settle(
    owner: ClientSession,
    ownerRequestId: number,
    kind: PendingRequest["kind"],
  ): PendingRequest | undefined {
    const request = owner.incoming.get(ownerRequestId);
    if (!request) {
      if (!owner.isIssuedRequestId(ownerRequestId)) {
        throw new ProtocolError(
          `Cannot accept response: request id ${ownerRequestId} was never issued to you`,
          Reason.UnknownId,
        );
      }
      return undefined;
    }
    if (request.kind !== kind) {
      throw new ProtocolError(
        `Cannot accept response: request ${ownerRequestId} is a ${request.kind} request`,
        Reason.UnexpectedPacket,
      );
    }
    this.#delete(request);
    return request;
  }

  /** Drops the requests a leaving client made and fails those made to it (Offline). */
  detach(session: ClientSession): void {
    for (const request of [...session.outgoing.values()]) this.#delete(request);
    for (const request of [...session.incoming.values()]) {
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

  /** Forgets a request; returns false if it was already settled. */
  #delete(request: PendingRequest): boolean {
    if (!this.#byAge.delete(request)) return false;
    request.requester.removeOutgoing(request);
    request.owner.removeIncoming(request);
    return true;
  }
}
