/** A {@linkcode Peer} without a socket, for unit tests of the relay core. */

import { PacketType } from "../../protocol/packet_type.ts";
import type { Reason } from "../../protocol/reason.ts";
import type { Packet } from "../../protocol/packets.ts";
import type { Peer } from "../../server/peer.ts";

/** Records what the relay sends it; congestion and request tokens are set by the test. */
export class FakePeer implements Peer {
  /** Everything sent, data as ArbitraryData packets with copied payloads, oldest first. */
  readonly sent: Packet[] = [];
  congested = false;
  /** Request tokens left. */
  tokens = Infinity;
  /** How the relay closed it, if it did. */
  closedWith: { reason: Reason; message: string } | null = null;
  #room: PromiseWithResolvers<void> | null = null;

  constructor(public address = 0, readonly realIp = "192.0.2.1") {}

  send(packet: Packet): void {
    this.sent.push(packet);
  }
  sendWindowUpdate(connectionId: number, increment: number): void {
    this.sent.push({ type: PacketType.WindowUpdate, connectionId, increment });
  }
  sendData(connectionId: number, payload: Uint8Array): void {
    this.sent.push({ type: PacketType.ArbitraryData, connectionId, payload: payload.slice() });
  }
  room(): Promise<void> | undefined {
    return this.congested ? (this.#room ??= Promise.withResolvers()).promise : undefined;
  }
  /** Ends the congestion: whoever waits in room() goes on. */
  drain(): void {
    this.congested = false;
    this.#room?.resolve();
    this.#room = null;
  }
  takeRequestToken(): boolean {
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
  get closed(): boolean {
    return this.closedWith !== null;
  }
  close(reason: Reason, message: string): void {
    this.closedWith ??= { reason, message };
  }
  /** Takes what was sent since the last call. */
  take(): Packet[] {
    return this.sent.splice(0);
  }
}
