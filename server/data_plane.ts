/**
 * The data plane of ActiveSockets: data within credit, credit grants (with
 * the congestion hold), shutdowns and closes of accepted connections, the
 * idle-connection sweep, and the closing of a leaving client's ends.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { MAX_WINDOW_BYTES, PacketType, Reason } from "../protocol/constants.ts";
import type {
  ArbitraryDataPacket,
  SocketClosedPacket,
  SocketShutdownPacket,
  WindowUpdatePacket,
} from "../protocol/packets.ts";
import type { RelayConfig } from "./config.ts";
import { type ConnectionEnd, grantCredit, linkEnds, unlinkEnds } from "./connections.ts";
import { CreditHold } from "./credit_hold.ts";
import type { ClientSession } from "./session.ts";

/** Moves bytes and credit between the two ends of each accepted connection. */
export class DataPlane {
  readonly #socketIdleTimeoutMs: number;
  /** Data timestamps cost a clock read per frame: taken only when idle connections are closed. */
  readonly #trackActivity: boolean;
  readonly #hold = new CreditHold();

  /** A data plane with no connections. */
  constructor(config: Pick<RelayConfig, "socketIdleTimeoutMs">) {
    this.#socketIdleTimeoutMs = config.socketIdleTimeoutMs;
    this.#trackActivity = config.socketIdleTimeoutMs > 0;
  }

  /** Makes two new ends one active connection, both counting as active now. */
  open(a: ConnectionEnd, b: ConnectionEnd): void {
    linkEnds(a, b);
    if (this.#trackActivity) a.activeAt = b.activeAt = performance.now();
  }

  /** Closes every connection of a leaving client; peers get SocketClosed. */
  detach(session: ClientSession, reason: Reason): void {
    const peerReason = reason === Reason.Shutdown ? Reason.Shutdown : Reason.PeerDisconnected;
    for (const end of [...session.ends.values()]) {
      if (unlinkEnds(end) && end.peer.session !== session) {
        end.peer.session.send({
          type: PacketType.SocketClosed,
          connectionId: end.peer.id,
          reason: peerReason,
        });
      }
    }
  }

  /**
   * Removes every connection of `sessions` that carried no data either way
   * for `socketIdleTimeoutMs` from ActiveSockets (the seed's inactive-socket
   * removal); both ends get SocketClosed(Idle).
   */
  closeIdle(now: number, sessions: Iterable<ClientSession>): void {
    const cutoff = now - this.#socketIdleTimeoutMs;
    for (const session of sessions) {
      for (const end of [...session.ends.values()]) {
        if (Math.max(end.activeAt, end.peer.activeAt) > cutoff || !unlinkEnds(end)) continue;
        for (const side of [end, end.peer]) {
          side.session.send({
            type: PacketType.SocketClosed,
            connectionId: side.id,
            reason: Reason.Idle,
          });
        }
      }
    }
  }

  /** Forwards data within the sender's credit. */
  onData(session: ClientSession, packet: ArbitraryDataPacket): void {
    const end = session.endFor(packet.connectionId);
    if (!end) return;
    if (end.writeClosed) {
      throw new ProtocolError(
        `Cannot forward data: connection ${end.id} was shut down for writing`,
        Reason.UnexpectedPacket,
      );
    }
    if (this.#trackActivity) end.activeAt = performance.now();
    end.credit -= packet.payload.length;
    if (end.credit < 0) {
      throw new ProtocolError(
        `Cannot forward data: connection ${end.id} sent ${-end.credit} bytes beyond its credit`,
        Reason.FlowControl,
      );
    }
    end.peer.session.sendData(end.peer.id, packet.payload);
  }

  /** Passes credit to the other end, or holds it while the granting client is congested. */
  onWindowUpdate(session: ClientSession, packet: WindowUpdatePacket): void {
    const end = session.endFor(packet.connectionId);
    if (!end) return;
    const sender = end.peer;
    const outstanding = sender.credit + sender.heldCredit + packet.increment;
    if (outstanding > MAX_WINDOW_BYTES) {
      throw new ProtocolError(
        `Cannot grant credit: connection ${end.id} would have ${outstanding} bytes outstanding, more than ${MAX_WINDOW_BYTES}`,
        Reason.FlowControl,
      );
    }
    if (session.congested) this.#hold.hold(session, sender, packet.increment);
    else grantCredit(sender, packet.increment);
  }

  /** Passes on a half-close, once per end. */
  onShutdown(session: ClientSession, packet: SocketShutdownPacket): void {
    const end = session.endFor(packet.connectionId);
    if (!end || end.writeClosed) return;
    end.writeClosed = true;
    end.peer.session.send({ type: PacketType.SocketShutdown, connectionId: end.peer.id });
  }

  /** Closes a connection at one end's request; the other end is told. */
  onClosed(session: ClientSession, packet: SocketClosedPacket): void {
    const end = session.endFor(packet.connectionId);
    if (!end || !unlinkEnds(end)) return;
    end.peer.session.send({
      type: PacketType.SocketClosed,
      connectionId: end.peer.id,
      reason: Reason.Normal,
    });
  }
}
