/**
 * The congestion hold: while the relay cannot write to a client as fast as
 * data comes for it, credit that client grants waits, so senders slow down
 * instead of the relay queueing their windows (TCP backpressure carried end
 * to end, and only for connections into the congested client).
 *
 * @module
 */

import { type ConnectionEnd, grantCredit } from "./connections.ts";
import type { Peer } from "./peer.ts";

/** The part of a peer whose outgoing queue decides when held credit moves on. */
export type CongestibleLink = Pick<Peer, "congested" | "room">;

/** Credit held back per congested receiver, by the senders' ends it is owed to. */
export class CreditHold {
  // Owned by the data plane.
  readonly #held = new Map<CongestibleLink, Set<ConnectionEnd>>();
  /** Moves an end's held credit on once its receiver has room. */
  readonly #resume: (sender: ConnectionEnd) => void;

  /** A hold that passes on, by default, all that was held; `resume` may pass on less. */
  constructor(resume: (sender: ConnectionEnd) => void = grantHeld) {
    this.#resume = resume;
  }

  /**
   * Keeps credit `receiver` granted to `sender` until the receiver's queue
   * is down to half the congestion mark, then passes on all that was held.
   */
  hold(receiver: CongestibleLink, sender: ConnectionEnd, increment: number): void {
    sender.heldCredit += increment;
    let senders = this.#held.get(receiver);
    if (senders === undefined) {
      senders = new Set();
      this.#held.set(receiver, senders);
      const drained = receiver.room();
      if (drained) void drained.then(() => this.#release(receiver));
      else queueMicrotask(() => this.#release(receiver));
    }
    senders.add(sender);
  }

  #release(receiver: CongestibleLink): void {
    const senders = this.#held.get(receiver);
    this.#held.delete(receiver);
    for (const sender of senders ?? []) this.#resume(sender);
  }
}

function grantHeld(sender: ConnectionEnd): void {
  const increment = sender.heldCredit;
  sender.heldCredit = 0;
  if (increment > 0 && sender.state !== "closed") grantCredit(sender, increment);
}
