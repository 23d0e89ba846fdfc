/** A router with fake peers attached, and a connection opened the way clients open one. */

import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { type Reason, reasonName } from "../../protocol/reason.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import type { Packet } from "../../protocol/packets.ts";
import { DEFAULT_RELAY_CONFIG, type RelayConfig } from "../../server/config.ts";
import { Logger } from "../../server/log.ts";
import type { Dispatch } from "../../server/peer.ts";
import { Router } from "../../server/router.ts";
import { FakePeer } from "./_fake_peer.ts";

/** 10.0.0.1 and 10.0.0.2 as u32. */
export const ADDRESS_A = 0x0a00_0001;
export const ADDRESS_B = 0x0a00_0002;

/** A router with the default limits, `overrides` applied, logging nothing. */
export function testRouter(overrides: Partial<RelayConfig> = {}): Router {
  return new Router({ ...DEFAULT_RELAY_CONFIG, ...overrides }, new Logger("silent"));
}

/** A fake peer attached to a router, with the dispatch its frames go through. */
export interface Joined {
  readonly peer: FakePeer;
  readonly dispatch: Dispatch;
}

/** Attaches a fresh fake peer at `address`. */
export function attach(router: Router, address: number): Joined {
  const peer = new FakePeer(address);
  return { peer, dispatch: router.attach(peer) };
}

/** The one packet `peer` was sent since the last take, which must be of `type`. */
export function only<T extends Packet["type"]>(
  peer: FakePeer,
  type: T,
): Extract<Packet, { type: T }> {
  const sent = peer.take();
  assert.equal(sent.length, 1, `expected one packet, got ${JSON.stringify(sent)}`);
  assert.equal(sent[0].type, type);
  return sent[0] as Extract<Packet, { type: T }>;
}

/** Two fake peers, A and B, attached to one router. */
export interface Pair {
  readonly router: Router;
  readonly a: Joined;
  readonly b: Joined;
}

/** Attaches A and B to a fresh router with `overrides` applied. */
export function pair(overrides: Partial<RelayConfig> = {}): Pair {
  const router = testRouter(overrides);
  return { router, a: attach(router, ADDRESS_A), b: attach(router, ADDRESS_B) };
}

/** Connection ids of a connection on each side. */
export interface Connection {
  readonly requesterId: number;
  readonly ownerId: number;
  /** The window the owner was told in the request: its credit into the requester. */
  readonly ownerCredit: number;
  /** The window the requester was told in the response: its credit into the owner. */
  readonly requesterCredit: number;
}

/**
 * Opens a connection from `requester` to `owner` with a request and an
 * acceptance, as clients do; each side announces its receive window.
 */
export function connect(
  requester: Joined,
  owner: Joined,
  windows: { requester: number; owner: number },
  requestId = 1,
): Connection {
  requester.dispatch({
    type: PacketType.SocketConnectionRequest,
    requestId,
    connectionId: 0,
    source: requester.peer.address,
    sourcePort: 40_000,
    destination: owner.peer.address,
    destinationPort: 80,
    window: windows.requester,
  });
  const request = only(owner.peer, PacketType.SocketConnectionRequest);
  owner.dispatch({
    type: PacketType.SocketConnectionResponse,
    requestId: request.requestId,
    connectionId: request.connectionId,
    accepted: true,
    window: windows.owner,
  });
  const response = only(requester.peer, PacketType.SocketConnectionResponse);
  assert.equal(response.accepted, true);
  return {
    requesterId: response.connectionId,
    ownerId: request.connectionId,
    ownerCredit: request.window,
    requesterCredit: response.window,
  };
}

/** Asserts that `handle` breaks the protocol with `reason`. */
export function assertViolation(handle: () => void, reason: Reason): void {
  assert.throws(handle, (error) => {
    assert.ok(error instanceof ProtocolError, String(error));
    assert.equal(reasonName(error.reason), reasonName(reason));
    return true;
  });
}
