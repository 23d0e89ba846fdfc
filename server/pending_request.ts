/**
 * A request in flight between a requester and a destination's owner. The
 * requester names it by its own id; the relay gives the owner a fresh id of
 * its own, so neither can guess or answer the other's. It refers to peers,
 * not to their books, so the books can index it without an import cycle.
 *
 * @module
 */

import { PacketType } from "../protocol/packet_type.ts";
import type { Reason } from "../protocol/reason.ts";
import type { Peer } from "./peer.ts";

/** A request waiting for the owner's answer. */
export interface PendingRequest {
  readonly kind: "status" | "connect" | "echo";
  readonly requester: Peer;
  readonly requesterRequestId: number;
  readonly owner: Peer;
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
export function sendRequestFailed(requester: Peer, requestId: number, reason: Reason): void {
  requester.send({ type: PacketType.RequestFailed, requestId, reason });
}
