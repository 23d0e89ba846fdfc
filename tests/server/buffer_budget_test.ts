import assert from "node:assert/strict";
import { DATA_FRAME_OVERHEAD_BYTES } from "../../protocol/codec.ts";
import { PacketType } from "../../protocol/packet_type.ts";
import type { Packet } from "../../protocol/packets.ts";
import { Reason } from "../../protocol/reason.ts";
import { FLOOR_CREDIT_BYTES } from "../../server/buffer_budget.ts";
import type { Peer } from "../../server/peer.ts";
import type { RelayConfig } from "../../server/config.ts";
import {
  attach,
  connect,
  type Connection,
  type Joined,
  only,
  testRouter,
} from "./_router_fixture.ts";

const KiB = 1024;

let nextRequestId = 1;

/** Opens a connection with a fresh request id (the fixture's `connect`). */
function open(
  requester: Joined,
  owner: Joined,
  windows: { requester: number; owner: number },
): Connection {
  return connect(requester, owner, windows, nextRequestId++);
}

function peers(overrides: Partial<RelayConfig>, count: number): Joined[] {
  const router = testRouter(overrides);
  return Array.from({ length: count }, (_, i) => attach(router, 0x0a00_0001 + i));
}

function send(from: Joined, connectionId: number, length: number): void {
  from.dispatch({ type: PacketType.ArbitraryData, connectionId, payload: new Uint8Array(length) });
}

/** What the carrier reports after writing `payload` bytes of data in `frames` frames. */
function written(to: Joined, payload: number, frames = 1): void {
  (to.peer as Peer).dataWritten?.(payload + frames * DATA_FRAME_OVERHEAD_BYTES);
}

function grants(packets: Packet[]): { connectionId: number; increment: number }[] {
  return packets.filter((p) => p.type === PacketType.WindowUpdate).map((p) => ({
    connectionId: (p as { connectionId: number }).connectionId,
    increment: (p as { increment: number }).increment,
  }));
}

Deno.test("BufferBudget gives a new sender what fits of the window, and never less than the floor", () => {
  const [a, b] = peers({ maxBufferedBytesPerClient: 64 * KiB }, 2);
  const first = open(a, b, { requester: 16 * KiB, owner: 48 * KiB });
  assert.equal(first.requesterCredit, 48 * KiB);
  assert.equal(first.ownerCredit, 16 * KiB);
  const second = open(a, b, { requester: 16 * KiB, owner: 48 * KiB });
  assert.equal(second.requesterCredit, 16 * KiB, "only 16 KiB was left under B's ceiling");
  const third = open(a, b, { requester: 16 * KiB, owner: 48 * KiB });
  assert.equal(third.requesterCredit, FLOOR_CREDIT_BYTES, "nothing was left: the floor");
  // The requester's side is clamped the same way: 3 × 16 KiB reserved in A so far.
  const fourth = open(a, b, { requester: 48 * KiB, owner: 16 * KiB });
  assert.equal(fourth.ownerCredit, 16 * KiB);
});

Deno.test("BufferBudget holds a grant over the ceiling and passes it on as the queue is written", () => {
  const [a, b] = peers({ maxBufferedBytesPerClient: 32 * KiB }, 2);
  const ids = open(a, b, { requester: 16 * KiB, owner: 32 * KiB });
  assert.equal(ids.requesterCredit, 32 * KiB);
  send(a, ids.requesterId, 32 * KiB);
  assert.equal(b.peer.take().length, 1);
  // B read it all and grants it back, but the relay still queues it: the grant waits.
  b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: 32 * KiB });
  assert.deepEqual(a.peer.take(), []);
  written(b, 16 * KiB);
  assert.deepEqual(grants(a.peer.take()), [{ connectionId: ids.requesterId, increment: 16 * KiB }]);
  written(b, 16 * KiB, 0);
  assert.deepEqual(grants(a.peer.take()), [{ connectionId: ids.requesterId, increment: 16 * KiB }]);
  // Released in full: A may send the whole window again, and not a byte more.
  send(a, ids.requesterId, 32 * KiB);
  assert.throws(() => send(a, ids.requesterId, 1));
});

Deno.test("BufferBudget tops an end up to the floor once its data is written, however full the ceiling", () => {
  const [a, b] = peers({ maxBufferedBytesPerClient: 64 * KiB }, 2);
  open(a, b, { requester: 16 * KiB, owner: 64 * KiB });
  const clamped = open(a, b, { requester: 16 * KiB, owner: 64 * KiB });
  assert.equal(clamped.requesterCredit, FLOOR_CREDIT_BYTES);
  send(a, clamped.requesterId, FLOOR_CREDIT_BYTES);
  b.peer.take();
  // Nothing left under the ceiling (the first connection's credit is idle), but this end's
  // data is out: it is topped up to the floor, so it keeps moving without B granting.
  written(b, FLOOR_CREDIT_BYTES);
  assert.deepEqual(grants(a.peer.take()), [{
    connectionId: clamped.requesterId,
    increment: FLOOR_CREDIT_BYTES,
  }]);
  // Not again while that data is still queued: a non-reading B holds one floor per end.
  send(a, clamped.requesterId, FLOOR_CREDIT_BYTES);
  written(b, 0, 0);
  assert.deepEqual(a.peer.take(), []);
});

Deno.test("BufferBudget clamps by the relay-wide ceiling across receivers and releases across them", () => {
  const [a, b, c] = peers({ maxBufferedBytes: 64 * KiB, maxBufferedBytesPerClient: 1024 * KiB }, 3);
  // 16 KiB reserved in A, 48 KiB given into B: the relay's 64 KiB are spent.
  const toB = open(a, b, { requester: 16 * KiB, owner: 48 * KiB });
  assert.equal(toB.requesterCredit, 48 * KiB);
  const toC = open(a, c, { requester: 16 * KiB, owner: 48 * KiB });
  assert.equal(toC.requesterCredit, FLOOR_CREDIT_BYTES);
  send(a, toB.requesterId, 48 * KiB);
  assert.deepEqual(a.peer.take(), []);
  // B's queue written frees relay-wide room, which moves what is owed into C.
  written(b, 48 * KiB);
  assert.deepEqual(grants(a.peer.take()), [{ connectionId: toC.requesterId, increment: 16 * KiB }]);
});

Deno.test("BufferBudget takes a closed connection's credit back", () => {
  const [a, b] = peers({ maxBufferedBytesPerClient: 64 * KiB }, 2);
  const first = open(a, b, { requester: 16 * KiB, owner: 64 * KiB });
  assert.equal(first.requesterCredit, 64 * KiB);
  a.dispatch({
    type: PacketType.SocketClosed,
    connectionId: first.requesterId,
    reason: Reason.Normal,
  });
  b.peer.take();
  const second = open(a, b, { requester: 16 * KiB, owner: 64 * KiB });
  assert.equal(second.requesterCredit, 64 * KiB);
});

Deno.test("BufferBudget gives back what a refused connect reserved", () => {
  const [a, b] = peers({ maxBufferedBytesPerClient: 64 * KiB }, 2);
  for (let i = 0; i < 3; i++) {
    a.dispatch({
      type: PacketType.SocketConnectionRequest,
      requestId: nextRequestId++,
      connectionId: 0,
      source: a.peer.address,
      sourcePort: 40_000,
      destination: b.peer.address,
      destinationPort: 80,
      window: 64 * KiB,
    });
    const request = only(b.peer, PacketType.SocketConnectionRequest);
    assert.equal(request.window, 64 * KiB, "the last refusal gave its reservation back");
    b.dispatch({
      type: PacketType.SocketConnectionResponse,
      requestId: request.requestId,
      connectionId: 0,
      accepted: false,
      window: 0,
    });
    a.peer.take();
  }
});

Deno.test("BufferBudget gives back what a connect reserved when it times out or its owner leaves", () => {
  const router = testRouter({ maxBufferedBytesPerClient: 64 * KiB, requestTimeoutMs: 1000 });
  const a = attach(router, 0x0a00_0001);
  const b = attach(router, 0x0a00_0002);
  const c = attach(router, 0x0a00_0003);
  const ask = (owner: Joined) => {
    a.dispatch({
      type: PacketType.SocketConnectionRequest,
      requestId: nextRequestId++,
      connectionId: 0,
      source: a.peer.address,
      sourcePort: 40_000,
      destination: owner.peer.address,
      destinationPort: 80,
      window: 64 * KiB,
    });
    return only(owner.peer, PacketType.SocketConnectionRequest).window;
  };
  assert.equal(ask(b), 64 * KiB);
  assert.equal(ask(c), FLOOR_CREDIT_BYTES, "A's 64 KiB are reserved for B's answer");
  router.detach(b.peer, Reason.PeerDisconnected);
  a.peer.take();
  router.expireRequests(performance.now() + 1000);
  a.peer.take();
  assert.equal(ask(c), 64 * KiB, "both reservations were given back");
});

Deno.test("BufferBudget releases held credit once a shared link has room, when the receiver's own data drained while it was congested", async () => {
  const [a, b] = peers({ maxBufferedBytesPerClient: 32 * KiB }, 2);
  const ids = open(a, b, { requester: 16 * KiB, owner: 32 * KiB });
  send(a, ids.requesterId, 32 * KiB);
  assert.equal(b.peer.take().length, 1);
  b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: 32 * KiB });
  assert.deepEqual(a.peer.take(), [], "the grant waits: B's queue holds the data");
  // B's link (a relay link shared with others) stays congested while B's own data is written.
  b.peer.congested = true;
  written(b, 32 * KiB);
  assert.deepEqual(a.peer.take(), [], "nothing moves while the link is congested");
  b.peer.drain();
  await Promise.resolve();
  assert.deepEqual(grants(a.peer.take()), [{ connectionId: ids.requesterId, increment: 32 * KiB }]);
});
