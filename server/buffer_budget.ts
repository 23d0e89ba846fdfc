/**
 * Buffer budgets: a ceiling on the data the relay can be made to hold, per
 * receiving client and relay-wide. A receiver's exposure is the credit the
 * relay has given senders into it (which they may send at any time) plus the
 * data queued to it and not yet written. Credit is given only while the
 * exposure stays under both ceilings; the rest is held (an end's
 * `heldCredit`) until queued data is written out. The relay only ever gives
 * less credit than the receiver allowed, never more, so no client notices
 * but through pace.
 *
 * Every end keeps a floor of credit whatever the ceilings, so a connection
 * always makes progress: the relay's data memory is at most
 * min(relay ceiling, sum of per-client ceilings) plus one floor per sending end.
 *
 * @module
 */

import { DATA_FRAME_OVERHEAD_BYTES } from "../protocol/codec.ts";
import { MIN_WINDOW_BYTES } from "../protocol/constants.ts";
import { type ConnectionEnd, grantCredit, Inbox } from "./connections.ts";
import type { Peer } from "./peer.ts";

/** Credit every sending end may have outstanding whatever the ceilings: the smallest window. */
export const FLOOR_CREDIT_BYTES = MIN_WINDOW_BYTES;

/** The relay's two ceilings and its total exposure across every inbox. */
export class BufferBudget {
  // Static after construction.
  readonly #perClient: number;
  readonly #total: number;

  // Owned by the data plane.
  readonly #inboxes = new Map<Peer, Inbox>();
  /** Inboxes whose waiting credit the relay-wide ceiling holds back. */
  readonly #blocked = new Set<Inbox>();
  #used = 0;

  /** A budget of `perClientBytes` per receiving client and `totalBytes` in all. */
  constructor(perClientBytes: number, totalBytes: number) {
    this.#perClient = perClientBytes;
    this.#total = totalBytes;
  }

  /** Credit outstanding plus data queued and not yet written, relay-wide. */
  get used(): number {
    return this.#used;
  }

  /** The inbox of `peer`, created (and hooked to its carrier's writes) on first use. */
  inboxOf(peer: Peer): Inbox {
    let inbox = this.#inboxes.get(peer);
    if (inbox === undefined) {
      const created = inbox = new Inbox(peer);
      this.#inboxes.set(peer, created);
      peer.dataWritten = (bytes) => this.#written(created, bytes);
    }
    return inbox;
  }

  /**
   * Gives a new sender into `inbox` credit for a `window` the receiver
   * announced: all of it when it fits under both ceilings, else what fits,
   * never less than the floor (nor more than the window). Returns what was given.
   */
  take(inbox: Inbox, window: number): number {
    const given = Math.min(window, Math.max(FLOOR_CREDIT_BYTES, this.#room(inbox)));
    this.#add(inbox, given);
    return given;
  }

  /** Takes back credit that will never be used (a refused connect, a closed end): room for what waits. */
  giveBack(inbox: Inbox, credit: number): void {
    this.#add(inbox, -credit);
    if (inbox.waiting.size > 0) this.#release(inbox);
    this.#releaseBlocked(inbox);
  }

  /** Counts `length` payload bytes `sender` sent as queued to its receiver. */
  sent(sender: ConnectionEnd, length: number): void {
    const inbox = sender.other.inbox;
    inbox.credit -= length;
    inbox.queued += length + DATA_FRAME_OVERHEAD_BYTES;
    sender.mark = inbox.queued;
    if (!inbox.closed) this.#used += DATA_FRAME_OVERHEAD_BYTES;
  }

  /** Passes a receiver's grant on to `sender` when it fits, else holds it until room appears. */
  grant(sender: ConnectionEnd, increment: number): void {
    const inbox = sender.other.inbox;
    if (sender.heldCredit === 0 && increment <= this.#room(inbox)) {
      this.#add(inbox, increment);
      return grantCredit(sender, increment);
    }
    sender.heldCredit += increment;
    this.resume(sender);
  }

  /** Gives `sender` what fits of the credit held for it, and waits with the rest. */
  resume(sender: ConnectionEnd): void {
    if (sender.state === "closed" || sender.heldCredit === 0) return;
    const inbox = sender.other.inbox;
    inbox.waiting.add(sender);
    this.#release(inbox);
  }

  /** Takes a closing end's unused credit (and what was held for it) out of its receiver's exposure. */
  forget(end: ConnectionEnd): void {
    this.giveBack(end.other.inbox, end.credit);
    end.credit = end.heldCredit = 0;
  }

  /** Takes a leaving client's inbox out of the relay's total; its writes count no more. */
  close(peer: Peer): void {
    const inbox = this.#inboxes.get(peer);
    if (inbox === undefined) return;
    this.#inboxes.delete(peer);
    this.#blocked.delete(inbox);
    this.#used -= inbox.exposure;
    inbox.closed = true;
    inbox.waiting.clear();
    peer.dataWritten = undefined;
    this.#releaseBlocked(inbox);
  }

  #add(inbox: Inbox, credit: number): void {
    inbox.credit += credit;
    if (!inbox.closed) this.#used += credit;
  }

  #room(inbox: Inbox): number {
    return Math.min(this.#perClient - inbox.exposure, this.#total - this.#used);
  }

  #written(inbox: Inbox, bytes: number): void {
    if (inbox.closed) return;
    inbox.written += bytes;
    this.#used -= bytes;
    if (inbox.waiting.size > 0) this.#release(inbox);
    this.#releaseBlocked(inbox);
  }

  /**
   * Releases `inbox` once its link has room again. A client's own link
   * writes this client's data, so its writes come back here anyway; a
   * relay link is shared, and may drain of this client's data while other
   * clients keep it congested: without this, its senders would wait for good.
   */
  #releaseOnRoom(inbox: Inbox): void {
    if (inbox.awaitingRoom || inbox.waiting.size === 0) return;
    const room = inbox.peer.room();
    if (room === undefined) return;
    inbox.awaitingRoom = true;
    void room.then(() => {
      inbox.awaitingRoom = false;
      if (inbox.waiting.size > 0) this.#release(inbox);
    });
  }

  /** Room relay-wide may let other receivers' held credit move on too. */
  #releaseBlocked(except: Inbox): void {
    for (const blocked of this.#blocked) {
      if (this.#used >= this.#total) break;
      if (blocked !== except) this.#release(blocked);
    }
  }

  /**
   * Passes on held credit in the order its senders started waiting, as far
   * as the ceilings allow; an end whose data has all been written is topped
   * up to the floor regardless. Nothing moves while the receiver is
   * congested: the congestion hold resumes its senders once it has room.
   */
  #release(inbox: Inbox): void {
    if (inbox.closed) return;
    if (inbox.peer.congested) return this.#releaseOnRoom(inbox);
    for (const sender of inbox.waiting) {
      if (sender.state === "closed" || sender.heldCredit === 0) {
        inbox.waiting.delete(sender);
        continue;
      }
      let give = Math.min(sender.heldCredit, Math.max(0, this.#room(inbox)));
      if (sender.mark <= inbox.written && sender.credit + give < FLOOR_CREDIT_BYTES) {
        give = Math.min(sender.heldCredit, FLOOR_CREDIT_BYTES - sender.credit);
      }
      if (give > 0) {
        sender.heldCredit -= give;
        this.#add(inbox, give);
        grantCredit(sender, give);
      }
      if (sender.heldCredit === 0) inbox.waiting.delete(sender);
    }
    if (inbox.waiting.size > 0 && this.#used >= this.#total) this.#blocked.add(inbox);
    else this.#blocked.delete(inbox);
  }
}
