import assert from "node:assert/strict";
import { MAX_WINDOW_BYTES } from "../../protocol/constants.ts";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import type { ArbitraryDataPacket } from "../../protocol/packets.ts";
import {
  ADDRESS_A,
  ADDRESS_B,
  assertViolation,
  attach,
  connect,
  type Connection,
  only,
  type Pair,
  pair,
  testRouter,
} from "./_router_fixture.ts";

function data(connectionId: number, length: number): ArbitraryDataPacket {
  return {
    type: PacketType.ArbitraryData,
    connectionId,
    payload: new Uint8Array(length).fill(7),
  };
}

/** A and B with a connection from A (window 100) to B (window 10). */
function opened(): Pair & { ids: Connection } {
  const joined = pair();
  return { ...joined, ids: connect(joined.a, joined.b, { requester: 100, owner: 10 }) };
}

Deno.test("DataPlane forwards data within credit to the other end", () => {
  const { a, b, ids } = opened();
  a.dispatch(data(ids.requesterId, 6));
  a.dispatch(data(ids.requesterId, 4));
  assert.deepEqual(b.peer.take(), [
    {
      type: PacketType.ArbitraryData,
      connectionId: ids.ownerId,
      payload: new Uint8Array(6).fill(7),
    },
    {
      type: PacketType.ArbitraryData,
      connectionId: ids.ownerId,
      payload: new Uint8Array(4).fill(7),
    },
  ]);
});

Deno.test("DataPlane rejects data beyond the sender's credit (FlowControl)", () => {
  const { a, b, ids } = opened();
  a.dispatch(data(ids.requesterId, 10));
  assertViolation(() => a.dispatch(data(ids.requesterId, 1)), Reason.FlowControl);
  assert.equal(b.peer.take().length, 1);
});

Deno.test("DataPlane lets a grant extend the credit and passes it to the sender", () => {
  const { a, b, ids } = opened();
  b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: 5 });
  const grant = only(a.peer, PacketType.WindowUpdate);
  assert.deepEqual(grant, {
    type: PacketType.WindowUpdate,
    connectionId: ids.requesterId,
    increment: 5,
  });
  a.dispatch(data(ids.requesterId, 15));
  assert.equal(only(b.peer, PacketType.ArbitraryData).payload.length, 15);
});

Deno.test("DataPlane rejects a grant over MAX_WINDOW_BYTES outstanding (FlowControl)", () => {
  const { a, b, ids } = opened();
  const room = MAX_WINDOW_BYTES - 10;
  b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: room });
  assert.equal(only(a.peer, PacketType.WindowUpdate).increment, room);
  assertViolation(
    () => b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: 1 }),
    Reason.FlowControl,
  );
});

Deno.test("DataPlane passes a shutdown on once, then rejects data from that end", () => {
  const { a, b, ids } = opened();
  a.dispatch({ type: PacketType.SocketShutdown, connectionId: ids.requesterId });
  a.dispatch({ type: PacketType.SocketShutdown, connectionId: ids.requesterId });
  assert.deepEqual(b.peer.take(), [
    { type: PacketType.SocketShutdown, connectionId: ids.ownerId },
  ]);
  assertViolation(() => a.dispatch(data(ids.requesterId, 1)), Reason.UnexpectedPacket);
  // The other direction still carries data.
  b.dispatch(data(ids.ownerId, 3));
  assert.equal(only(a.peer, PacketType.ArbitraryData).connectionId, ids.requesterId);
});

Deno.test("DataPlane tells the other end of a close, and drops frames that crossed it", () => {
  const { a, b, ids } = opened();
  a.dispatch({
    type: PacketType.SocketClosed,
    connectionId: ids.requesterId,
    reason: Reason.Normal,
  });
  assert.deepEqual(only(b.peer, PacketType.SocketClosed), {
    type: PacketType.SocketClosed,
    connectionId: ids.ownerId,
    reason: Reason.Normal,
  });
  // B had not yet seen the close: its data, grant and own close are dropped, not violations.
  b.dispatch(data(ids.ownerId, 3));
  b.dispatch({ type: PacketType.WindowUpdate, connectionId: ids.ownerId, increment: 1 });
  b.dispatch({ type: PacketType.SocketShutdown, connectionId: ids.ownerId });
  b.dispatch({ type: PacketType.SocketClosed, connectionId: ids.ownerId, reason: Reason.Normal });
  a.dispatch(data(ids.requesterId, 1));
  assert.deepEqual(a.peer.take(), []);
  assert.deepEqual(b.peer.take(), []);
});

Deno.test("DataPlane rejects a connection id never issued to the sender (UnknownId)", () => {
  const { a, b, ids } = opened();
  const unknown = ids.requesterId + 1;
  assertViolation(() => a.dispatch(data(unknown, 1)), Reason.UnknownId);
  assertViolation(
    () => a.dispatch({ type: PacketType.WindowUpdate, connectionId: unknown, increment: 1 }),
    Reason.UnknownId,
  );
  assertViolation(
    () => a.dispatch({ type: PacketType.SocketShutdown, connectionId: unknown }),
    Reason.UnknownId,
  );
  assertViolation(
    () =>
      a.dispatch({ type: PacketType.SocketClosed, connectionId: unknown, reason: Reason.Normal }),
    Reason.UnknownId,
  );
  assert.deepEqual(b.peer.take(), []);
});

Deno.test("DataPlane closes a leaving peer's connections: PeerDisconnected, or Shutdown", () => {
  for (
    const [reason, told] of [[Reason.PeerTimeout, Reason.PeerDisconnected], [
      Reason.Shutdown,
      Reason.Shutdown,
    ]] as const
  ) {
    const { router, a, b, ids } = opened();
    assert.equal(router.detach(a.peer, reason), true);
    assert.deepEqual(only(b.peer, PacketType.SocketClosed), {
      type: PacketType.SocketClosed,
      connectionId: ids.ownerId,
      reason: told,
    });
    assert.deepEqual(a.peer.take(), []);
    // B's frames on the closed connection crossed the close.
    b.dispatch(data(ids.ownerId, 1));
    assert.equal(router.detach(a.peer, reason), false);
  }
});

Deno.test("DataPlane lets a peer connect to itself and leave without telling itself", () => {
  const router = testRouter();
  const a = attach(router, ADDRESS_A);
  const ids = connect(a, a, { requester: 10, owner: 10 });
  assert.notEqual(ids.requesterId, ids.ownerId);
  a.dispatch(data(ids.requesterId, 2));
  assert.equal(only(a.peer, PacketType.ArbitraryData).connectionId, ids.ownerId);
  router.detach(a.peer, Reason.PeerDisconnected);
  assert.deepEqual(a.peer.take(), []);
});

Deno.test("DataPlane closes connections idle for socketIdleTimeoutMs on both sides", () => {
  const router = testRouter({ socketIdleTimeoutMs: 1000 });
  const a = attach(router, ADDRESS_A);
  const b = attach(router, ADDRESS_B);
  const ids = connect(a, b, { requester: 10, owner: 10 });
  router.closeIdleConnections(performance.now());
  assert.deepEqual([...a.peer.take(), ...b.peer.take()], []);
  router.closeIdleConnections(performance.now() + 2000);
  assert.deepEqual(only(a.peer, PacketType.SocketClosed).reason, Reason.Idle);
  assert.deepEqual(only(b.peer, PacketType.SocketClosed), {
    type: PacketType.SocketClosed,
    connectionId: ids.ownerId,
    reason: Reason.Idle,
  });
  a.dispatch(data(ids.requesterId, 1));
  assert.deepEqual(b.peer.take(), []);
});
