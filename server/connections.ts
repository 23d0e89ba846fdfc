/**
 * The relay's ActiveSockets: accepted virtual connections as pairs of ends,
 * each end owned by one peer under an id local to that peer. Per-peer ids
 * let a client only ever name its own ends, and let one client connect to
 * itself. The peers' books index the ends (see `PeerBook`); an end knows
 * its own state, so asking whether it is still linked costs no lookup.
 * Beside them, each receiving client's {@linkcode Inbox}: what the relay has
 * exposed itself to for it (the buffer budget's record, kept here because
 * ends and inboxes refer to each other).
 *
 * @module
 */

import type { Peer } from "./peer.ts";

/**
 * An end's life: `open`, then `writeClosed` once its client sent
 * SocketShutdown (data from it is then a violation), then `closed` once the
 * connection left ActiveSockets (frames naming it are dropped).
 */
export type EndState = "open" | "writeClosed" | "closed";

/** One side of an active virtual connection. */
export class ConnectionEnd {
  // Owned by the data plane.
  /**
   * Bytes this end may still send: the other end's announced window, less
   * data sent, plus the other end's grants. Grants may exceed what was sent
   * (a receiver growing its window), up to MAX_WINDOW_BYTES outstanding.
   */
  credit = 0;
  state: EndState = "open";
  /** When this end last sent data (performance.now() ms); only kept with an idle time-out. */
  activeAt = 0;
  /**
   * Credit the other end allowed that the relay has not given yet: held while
   * its link is congested, or while its buffer budget is spent.
   */
  heldCredit = 0;
  /** Where this end's data stands in the other end's queue: its inbox's `queued` after it. */
  mark = 0;
  /** What the relay holds for this end's own client; set when the connection opens. */
  inbox!: Inbox;
  /** The other side; set by {@linkcode pairEnds} right after both ends exist. */
  other!: ConnectionEnd;

  /** Creates an end; `receiveWindow` is what this end announced it can buffer. */
  constructor(
    readonly peer: Peer,
    readonly id: number,
    readonly port: number,
    readonly receiveWindow: number,
  ) {}
}

/** Makes two new ends the sides of one connection, each with the other's window as credit. */
export function pairEnds(a: ConnectionEnd, b: ConnectionEnd): void {
  a.other = b;
  b.other = a;
  a.credit = b.receiveWindow;
  b.credit = a.receiveWindow;
}

/** Passes credit to an end's client: the relay's count and the WindowUpdate move together. */
export function grantCredit(end: ConnectionEnd, increment: number): void {
  end.credit += increment;
  end.peer.sendWindowUpdate(end.id, increment);
}

/** What the relay has exposed itself to for one receiving client. */
export class Inbox {
  /** The receiving client: static after construction. */
  readonly peer: Peer;

  // Owned by the budget and the data plane.
  /** Credit given to senders into this client, and reserved for connects it has pending. */
  credit = 0;
  /** Data frame bytes ever queued to this client (counted when forwarded). */
  queued = 0;
  /** Data frame bytes ever written out to this client (counted by its carrier). */
  written = 0;
  /** Sender ends into this client owed credit the relay holds back. */
  readonly waiting = new Set<ConnectionEnd>();
  /** Set when the client leaves: its counts are out of the relay's total. */
  closed = false;
  /** Whether a release waits for the client's link to have room (see `BufferBudget`). */
  awaitingRoom = false;

  /** An inbox with nothing given or queued. */
  constructor(peer: Peer) {
    this.peer = peer;
  }

  /** Credit outstanding plus data queued and not yet written. */
  get exposure(): number {
    return this.credit + this.queued - this.written;
  }
}
