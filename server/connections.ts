/**
 * The relay's ActiveSockets: accepted virtual connections as pairs of ends,
 * each end owned by one client session under an id local to that session.
 * Per-session ids let a client only ever name its own ends, and let one
 * client connect to itself.
 *
 * @module
 */

import { PacketType } from "../protocol/constants.ts";
import type { ClientSession } from "./session.ts";

/** One side of an active virtual connection. */
export class ConnectionEnd {
  /**
   * Bytes this end may still send: the peer's announced window, less data
   * sent, plus the peer's grants. Grants may exceed what was sent (a
   * receiver growing its window), up to MAX_WINDOW_BYTES outstanding.
   */
  credit = 0;
  /** This end said it writes no more (SocketShutdown). */
  writeClosed = false;
  /** When this end last sent data (performance.now() ms); only kept with an idle time-out. */
  activeAt = 0;
  /** Credit the peer granted that the relay holds back while the peer's link is congested. */
  heldCredit = 0;
  /** The other side; set right after both ends exist. */
  peer!: ConnectionEnd;

  /** Creates an end; `receiveWindow` is what this end announced it can buffer. */
  constructor(
    readonly session: ClientSession,
    readonly id: number,
    readonly port: number,
    readonly receiveWindow: number,
  ) {}
}

/** Joins two new ends into a connection and registers them with their sessions. */
export function linkEnds(a: ConnectionEnd, b: ConnectionEnd): void {
  a.peer = b;
  b.peer = a;
  a.credit = b.receiveWindow;
  b.credit = a.receiveWindow;
  a.session.addEnd(a);
  b.session.addEnd(b);
}

/** Passes credit to an end's client: the relay's count and the WindowUpdate move together. */
export function grantCredit(end: ConnectionEnd, increment: number): void {
  end.credit += increment;
  end.session.send({ type: PacketType.WindowUpdate, connectionId: end.id, increment });
}

/** Whether `end` is still part of an active connection. */
export function isLinked(end: ConnectionEnd): boolean {
  return end.session.ends.get(end.id) === end;
}

/** Removes a connection from both sessions; returns false if it was already gone. */
export function unlinkEnds(end: ConnectionEnd): boolean {
  if (!end.session.removeEnd(end)) return false;
  end.peer.session.removeEnd(end.peer);
  return true;
}
