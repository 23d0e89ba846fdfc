import assert from "node:assert/strict";
import { MAX_WINDOW_BYTES } from "../../protocol/constants.ts";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import { ConnectionEnd, pairEnds } from "../../server/connections.ts";
import { CreditHold } from "../../server/credit_hold.ts";
import { FakePeer } from "./_fake_peer.ts";
import {
  ADDRESS_A,
  ADDRESS_B,
  assertViolation,
  attach,
  connect,
  only,
  testRouter,
} from "./_router_fixture.ts";

/** Lets the promise reactions queued so far run (a release is one `.then` away). */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 3; i++) await Promise.resolve();
}

/** A sender's end paired with a congested receiver's end, 10 bytes of window each. */
function congestedPair(): { senderPeer: FakePeer; receiver: FakePeer; sender: ConnectionEnd } {
  const senderPeer = new FakePeer(ADDRESS_A);
  const receiver = new FakePeer(ADDRESS_B);
  receiver.congested = true;
  const sender = new ConnectionEnd(senderPeer, 1, 40_000, 10);
  pairEnds(sender, new ConnectionEnd(receiver, 1, 80, 10));
  return { senderPeer, receiver, sender };
}

Deno.test("CreditHold holds a congested receiver's grants and passes their sum on at room()", async () => {
  const { senderPeer, receiver, sender } = congestedPair();
  const hold = new CreditHold();
  hold.hold(receiver, sender, 5);
  hold.hold(receiver, sender, 7);
  assert.equal(sender.heldCredit, 12);
  assert.equal(sender.credit, 10);
  await flushMicrotasks();
  assert.deepEqual(senderPeer.take(), []);
  receiver.drain();
  await flushMicrotasks();
  assert.deepEqual(senderPeer.take(), [
    { type: PacketType.WindowUpdate, connectionId: 1, increment: 12 },
  ]);
  assert.equal(sender.credit, 22);
  assert.equal(sender.heldCredit, 0);
});

Deno.test("CreditHold grants nothing to an end that closed while its credit was held", async () => {
  const { senderPeer, receiver, sender } = congestedPair();
  const hold = new CreditHold();
  hold.hold(receiver, sender, 5);
  sender.state = sender.other.state = "closed";
  receiver.drain();
  await flushMicrotasks();
  assert.deepEqual(senderPeer.take(), []);
  assert.equal(sender.heldCredit, 0);
});

Deno.test("CreditHold releases on the next microtask when the receiver has room already", async () => {
  const { senderPeer, receiver, sender } = congestedPair();
  receiver.congested = false; // room() is undefined: the queue went down meanwhile
  new CreditHold().hold(receiver, sender, 3);
  assert.deepEqual(senderPeer.take(), []);
  await flushMicrotasks();
  assert.equal(only(senderPeer, PacketType.WindowUpdate).increment, 3);
});

Deno.test("DataPlane holds grants from a congested peer and counts them against MAX_WINDOW_BYTES", async () => {
  const router = testRouter();
  const a = attach(router, ADDRESS_A);
  const b = attach(router, ADDRESS_B);
  const ids = connect(a, b, { requester: 10, owner: 10 });
  b.peer.congested = true;
  b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: 100 });
  assert.deepEqual(a.peer.take(), []);
  // Held credit is still outstanding: 10 + 100 + the rest reach the limit exactly.
  const rest = MAX_WINDOW_BYTES - 110;
  b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: rest });
  assertViolation(
    () => b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: 1 }),
    Reason.FlowControl,
  );
  // A's grants to B are not held: only B is congested.
  a.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.requesterId, increment: 4 });
  assert.equal(only(b.peer, PacketType.WindowUpdate).increment, 4);
  b.peer.drain();
  await flushMicrotasks();
  assert.deepEqual(only(a.peer, PacketType.WindowUpdate), {
    type: PacketType.WindowUpdate,
    connectionId: ids.requesterId,
    increment: 100 + rest,
  });
});

Deno.test("DataPlane drops held credit of a connection closed before the receiver drained", async () => {
  const router = testRouter();
  const a = attach(router, ADDRESS_A);
  const b = attach(router, ADDRESS_B);
  const ids = connect(a, b, { requester: 10, owner: 10 });
  b.peer.congested = true;
  b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: 100 });
  b.dispatch({ type: PacketType.SocketClosed, connectionId: ids.ownerId, reason: Reason.Normal });
  assert.equal(only(a.peer, PacketType.SocketClosed).connectionId, ids.requesterId);
  b.peer.drain();
  await flushMicrotasks();
  assert.deepEqual(a.peer.take(), []);
});
