/**
 * The data plane of ActiveSockets: data within credit, credit grants (with
 * the congestion hold and the buffer budget), shutdowns and closes of
 * accepted connections, the idle-connection sweep, and the closing of a
 * leaving peer's ends.
 *
 * @module
 */

import type { Slab } from "../transport/slab.ts";
import { MAX_WINDOW_BYTES } from "../protocol/constants.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason } from "../protocol/reason.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type {
  ArbitraryDataPacket,
  SocketClosedPacket,
  SocketShutdownPacket,
  WindowUpdatePacket,
} from "../protocol/packets.ts";
import type { RelayConfig } from "./config.ts";
import { BufferBudget } from "./buffer_budget.ts";
import { type ConnectionEnd, pairEnds } from "./connections.ts";
import { RelayMetrics } from "./metrics.ts";
import { CreditHold } from "./credit_hold.ts";
import type { PeerBook } from "./peer_book.ts";
import type { RoutingTable } from "./routing_table.ts";

/**
 * Moves bytes and credit between the two ends of each accepted connection.
 * Every handler gets the sender's book from the router; forwarding data is
 * one map lookup in it and a call on the other end's peer.
 */
export class DataPlane {
  // Static after construction.
  readonly #socketIdleTimeoutMs: number;
  /** Data timestamps cost a clock read per frame: taken only when idle connections are closed. */
  readonly #trackActivity: boolean;
  /** Where the other end's book is found when a connection opens or closes. */
  readonly #table: RoutingTable;
  /** Where forwarded bytes are counted. */
  readonly #metrics: RelayMetrics;

  // Owned by the router's dispatch.
  /** What the relay holds for data, per receiver and in all, against the operator's ceilings. */
  readonly budget: BufferBudget;
  readonly #hold: CreditHold;

  /** A data plane with no connections. */
  constructor(
    config: Pick<
      RelayConfig,
      "socketIdleTimeoutMs" | "maxBufferedBytes" | "maxBufferedBytesPerClient"
    >,
    table: RoutingTable,
    metrics: RelayMetrics = new RelayMetrics(),
  ) {
    this.#metrics = metrics;
    this.#socketIdleTimeoutMs = config.socketIdleTimeoutMs;
    this.#trackActivity = config.socketIdleTimeoutMs > 0;
    this.#table = table;
    this.budget = new BufferBudget(config.maxBufferedBytesPerClient, config.maxBufferedBytes);
    this.#hold = new CreditHold((sender) => this.budget.resume(sender));
  }

  /**
   * Makes two new ends one active connection in their peers' books, both
   * active now. Each gets what fits of the other's window as credit, the
   * rest held until room appears. `aCredit` is what `a` was given already
   * and counted in `b`'s inbox: the owner's credit, told in the request.
   * Returns the credit `b` was given.
   */
  open(a: ConnectionEnd, b: ConnectionEnd, aCredit?: number): number {
    pairEnds(a, b);
    a.inbox = this.budget.inboxOf(a.peer);
    b.inbox = this.budget.inboxOf(b.peer);
    a.credit = aCredit ?? this.budget.take(b.inbox, b.receiveWindow);
    b.credit = this.budget.take(a.inbox, a.receiveWindow);
    this.#table.bookOf(a.peer)?.addEnd(a);
    this.#table.bookOf(b.peer)?.addEnd(b);
    if (this.#trackActivity) a.activeAt = b.activeAt = performance.now();
    // The rest of each announced window is owed: it moves on as the receiver's queue drains.
    for (const [end, window] of [[a, b.receiveWindow], [b, a.receiveWindow]] as const) {
      end.heldCredit = window - end.credit;
      this.budget.resume(end);
    }
    return b.credit;
  }

  /** Closes every connection of a leaving peer; the other ends get SocketClosed. */
  detach(book: PeerBook, reason: Reason): void {
    const otherReason = reason === Reason.Shutdown ? Reason.Shutdown : Reason.PeerDisconnected;
    // First: what the leaver's own inbox held is out of the total, and nothing is released into it.
    this.budget.close(book.peer);
    for (const end of [...book.ends.values()]) {
      if (this.#unlink(book, end) && end.other.peer !== book.peer) {
        end.other.peer.send({
          type: PacketType.SocketClosed,
          connectionId: end.other.id,
          reason: otherReason,
        });
      }
    }
  }

  /**
   * Removes every connection of `books` that carried no data either way
   * for `socketIdleTimeoutMs` from ActiveSockets; both ends get
   * SocketClosed(Idle).
   */
  closeIdle(now: number, books: Iterable<PeerBook>): void {
    const cutoff = now - this.#socketIdleTimeoutMs;
    for (const book of books) {
      for (const end of [...book.ends.values()]) {
        if (Math.max(end.activeAt, end.other.activeAt) > cutoff || !this.#unlink(book, end)) {
          continue;
        }
        for (const side of [end, end.other]) {
          side.peer.send({
            type: PacketType.SocketClosed,
            connectionId: side.id,
            reason: Reason.Idle,
          });
        }
      }
    }
  }

  /** Forwards data within the sender's credit, in place when it came in a `slab`. */
  onData(book: PeerBook, packet: ArbitraryDataPacket, slab: Slab | null = null): void {
    const end = book.endFor(packet.connectionId);
    if (!end) return;
    if (end.state === "writeClosed") {
      throw new ProtocolError(
        `Cannot forward data: connection ${end.id} was shut down for writing`,
        Reason.UnexpectedPacket,
      );
    }
    if (this.#trackActivity) end.activeAt = performance.now();
    const length = packet.payload.length;
    if (length > end.credit) {
      throw new ProtocolError(
        `Cannot forward data: connection ${end.id} sent ${
          length - end.credit
        } bytes beyond its credit`,
        Reason.FlowControl,
      );
    }
    end.credit -= length;
    this.budget.sent(end, length);
    this.#metrics.relayedBytes += length;
    book.relayedBytes += length;
    end.other.peer.sendData(end.other.id, packet.payload, slab);
  }

  /** Passes credit to the other end, or holds it while the granting peer is congested. */
  onWindowUpdate(book: PeerBook, packet: WindowUpdatePacket): void {
    const end = book.endFor(packet.connectionId);
    if (!end) return;
    const sender = end.other;
    const outstanding = sender.credit + sender.heldCredit + packet.increment;
    if (outstanding > MAX_WINDOW_BYTES) {
      throw new ProtocolError(
        `Cannot grant credit: connection ${end.id} would have ${outstanding} bytes outstanding, more than ${MAX_WINDOW_BYTES}`,
        Reason.FlowControl,
      );
    }
    if (book.peer.congested) this.#hold.hold(book.peer, sender, packet.increment);
    else this.budget.grant(sender, packet.increment);
  }

  /** Passes on a half-close, once per end. */
  onShutdown(book: PeerBook, packet: SocketShutdownPacket): void {
    const end = book.endFor(packet.connectionId);
    if (!end || end.state !== "open") return;
    end.state = "writeClosed";
    end.other.peer.send({ type: PacketType.SocketShutdown, connectionId: end.other.id });
  }

  /**
   * Closes a connection at one end's request; the other end is told, with
   * `reason`: Normal for a client's close, the original reason when another
   * relay passes on a close it made (a client of its own left, an idle sweep).
   */
  onClosed(book: PeerBook, packet: SocketClosedPacket, reason: Reason = Reason.Normal): void {
    const end = book.endFor(packet.connectionId);
    if (!end || !this.#unlink(book, end)) return;
    end.other.peer.send({
      type: PacketType.SocketClosed,
      connectionId: end.other.id,
      reason,
    });
  }

  /**
   * Takes a connection out of ActiveSockets and both books, `book` being
   * `end`'s own; false if it was already out.
   */
  #unlink(book: PeerBook, end: ConnectionEnd): boolean {
    if (end.state === "closed") return false;
    end.state = end.other.state = "closed";
    this.budget.forget(end);
    this.budget.forget(end.other);
    book.removeEnd(end);
    this.#table.bookOf(end.other.peer)?.removeEnd(end.other);
    return true;
  }
}
