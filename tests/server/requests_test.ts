import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import type {
  SocketConnectionRequestPacket,
  SocketStatusRequestPacket,
} from "../../protocol/packets.ts";
import { DEFAULT_RELAY_CONFIG } from "../../server/config.ts";
import { Logger } from "../../server/log.ts";
import { Router } from "../../server/router.ts";
import {
  ADDRESS_A,
  ADDRESS_B,
  assertViolation,
  attach,
  type Joined,
  only,
  pair,
} from "./_router_fixture.ts";

const ADDRESS_OFFLINE = 0x0a00_0009;

function statusRequest(
  from: Joined,
  requestId: number,
  destination = ADDRESS_B,
): SocketStatusRequestPacket {
  return {
    type: PacketType.SocketStatusRequest,
    requestId,
    source: from.peer.address,
    destination,
    destinationPort: 80,
  } as const;
}

function connectionRequest(
  from: Joined,
  requestId: number,
  destination = ADDRESS_B,
): SocketConnectionRequestPacket {
  return {
    type: PacketType.SocketConnectionRequest,
    requestId,
    connectionId: 0,
    source: from.peer.address,
    sourcePort: 40_000,
    destination,
    destinationPort: 80,
    window: 10,
  } as const;
}

Deno.test("Requests reject a source that is not the sender's address (SpoofedAddress)", () => {
  const { a, b } = pair();
  assertViolation(
    () => a.dispatch({ ...statusRequest(a, 1), source: ADDRESS_B }),
    Reason.SpoofedAddress,
  );
  assert.deepEqual(b.peer.take(), []);
});

Deno.test("Requests reject a request id already in flight (UnexpectedPacket)", () => {
  const { a, b } = pair();
  a.dispatch(statusRequest(a, 1));
  assertViolation(() => a.dispatch(statusRequest(a, 1)), Reason.UnexpectedPacket);
  assert.equal(b.peer.take().length, 1);
});

Deno.test("Requests answer RateLimited when the sender has no request token", () => {
  const { a, b } = pair();
  a.peer.tokens = 1;
  a.dispatch(statusRequest(a, 1));
  a.dispatch(statusRequest(a, 2));
  assert.deepEqual(only(a.peer, PacketType.RequestFailed), {
    type: PacketType.RequestFailed,
    requestId: 2,
    reason: Reason.RateLimited,
  });
  assert.equal(b.peer.take().length, 1);
});

Deno.test("Requests answer TooManyPending beyond maxPendingPerClient", () => {
  const { router, a } = pair({ maxPendingPerClient: 2 });
  a.dispatch(statusRequest(a, 1));
  a.dispatch(statusRequest(a, 2));
  a.dispatch(statusRequest(a, 3));
  assert.equal(only(a.peer, PacketType.RequestFailed).reason, Reason.TooManyPending);
  assert.equal(router.pendingCount, 2);
});

Deno.test("Requests answer Offline for a destination nobody holds", () => {
  const { a } = pair();
  a.dispatch(statusRequest(a, 1, ADDRESS_OFFLINE));
  a.dispatch({ type: PacketType.EchoRequest, requestId: 2, source: ADDRESS_A, destination: 9 });
  a.dispatch(connectionRequest(a, 3, ADDRESS_OFFLINE));
  assert.deepEqual(
    a.peer.take().map((p) => p.type === PacketType.RequestFailed && [p.requestId, p.reason]),
    [[1, Reason.Offline], [2, Reason.Offline], [3, Reason.Offline]],
  );
});

Deno.test("Requests pass a status request under the relay's id and the answer back", () => {
  const { router, a, b } = pair();
  a.dispatch(statusRequest(a, 41));
  const asked = only(b.peer, PacketType.SocketStatusRequest);
  assert.deepEqual(asked, { ...statusRequest(a, asked.requestId) });
  b.dispatch({
    type: PacketType.SocketStatusResponse,
    requestId: asked.requestId,
    listening: true,
  });
  assert.deepEqual(only(a.peer, PacketType.SocketStatusResponse), {
    type: PacketType.SocketStatusResponse,
    requestId: 41,
    listening: true,
  });
  assert.equal(router.pendingCount, 0);
});

Deno.test("Requests pass an echo to the owner and its reply back", () => {
  const { a, b } = pair();
  a.dispatch({
    type: PacketType.EchoRequest,
    requestId: 7,
    source: ADDRESS_A,
    destination: ADDRESS_B,
  });
  const asked = only(b.peer, PacketType.EchoRequest);
  assert.deepEqual(asked.source, ADDRESS_A);
  b.dispatch({ type: PacketType.EchoReply, requestId: asked.requestId });
  assert.deepEqual(only(a.peer, PacketType.EchoReply), {
    type: PacketType.EchoReply,
    requestId: 7,
  });
});

Deno.test("Requests open a connection the owner accepts, with each side's window", () => {
  const { a, b } = pair();
  a.dispatch(connectionRequest(a, 5));
  const asked = only(b.peer, PacketType.SocketConnectionRequest);
  assert.equal(asked.window, 10);
  assert.ok(asked.connectionId > 0);
  b.dispatch({
    type: PacketType.SocketConnectionResponse,
    requestId: asked.requestId,
    connectionId: asked.connectionId,
    accepted: true,
    window: 30,
  });
  const answer = only(a.peer, PacketType.SocketConnectionResponse);
  assert.deepEqual({ ...answer, connectionId: 0 }, {
    type: PacketType.SocketConnectionResponse,
    requestId: 5,
    connectionId: 0,
    accepted: true,
    window: 30,
  });
  a.dispatch({
    type: PacketType.ArbitraryData,
    connectionId: answer.connectionId,
    payload: new Uint8Array(30),
  });
  assert.equal(only(b.peer, PacketType.ArbitraryData).connectionId, asked.connectionId);
});

Deno.test("Requests pass the owner's refusal on as accepted: false", () => {
  const { a, b } = pair();
  a.dispatch(connectionRequest(a, 5));
  const asked = only(b.peer, PacketType.SocketConnectionRequest);
  b.dispatch({
    type: PacketType.SocketConnectionResponse,
    requestId: asked.requestId,
    connectionId: 0,
    accepted: false,
    window: 0,
  });
  assert.deepEqual(only(a.peer, PacketType.SocketConnectionResponse), {
    type: PacketType.SocketConnectionResponse,
    requestId: 5,
    connectionId: 0,
    accepted: false,
    window: 0,
  });
});

Deno.test("Requests check the connection limit again when the owner accepts", () => {
  const { a, b } = pair({ maxConnectionsPerClient: 1 });
  // Both requests are admitted: A has no connection yet when it asks.
  a.dispatch(connectionRequest(a, 1));
  a.dispatch(connectionRequest(a, 2));
  const [first, second] = b.peer.take();
  assert.ok(first.type === PacketType.SocketConnectionRequest);
  assert.ok(second.type === PacketType.SocketConnectionRequest);
  for (const asked of [first, second]) {
    b.dispatch({
      type: PacketType.SocketConnectionResponse,
      requestId: asked.requestId,
      connectionId: asked.connectionId,
      accepted: true,
      window: 10,
    });
  }
  assert.deepEqual(only(b.peer, PacketType.SocketClosed), {
    type: PacketType.SocketClosed,
    connectionId: second.connectionId,
    reason: Reason.TooManyConnections,
  });
  const [opened, failed] = a.peer.take();
  assert.equal(opened.type, PacketType.SocketConnectionResponse);
  assert.deepEqual(failed, {
    type: PacketType.RequestFailed,
    requestId: 2,
    reason: Reason.TooManyConnections,
  });
  // A third request is refused at once: A holds its one connection.
  a.dispatch(connectionRequest(a, 3));
  assert.equal(only(a.peer, PacketType.RequestFailed).reason, Reason.TooManyConnections);
});

Deno.test("Requests undo an acceptance that comes after the request timed out", () => {
  const { router, a, b } = pair();
  a.dispatch(connectionRequest(a, 5));
  const asked = only(b.peer, PacketType.SocketConnectionRequest);
  router.expireRequests(performance.now() + 60_000);
  assert.deepEqual(only(a.peer, PacketType.RequestFailed).reason, Reason.Timeout);
  b.dispatch({
    type: PacketType.SocketConnectionResponse,
    requestId: asked.requestId,
    connectionId: asked.connectionId,
    accepted: true,
    window: 10,
  });
  assert.deepEqual(only(b.peer, PacketType.SocketClosed), {
    type: PacketType.SocketClosed,
    connectionId: asked.connectionId,
    reason: Reason.PeerDisconnected,
  });
  assert.deepEqual(a.peer.take(), []);
});

Deno.test("Requests answer Offline, then reject, an acceptance with the wrong connection id", () => {
  const { a, b } = pair();
  a.dispatch(connectionRequest(a, 5));
  const asked = only(b.peer, PacketType.SocketConnectionRequest);
  assertViolation(() =>
    b.dispatch({
      type: PacketType.SocketConnectionResponse,
      requestId: asked.requestId,
      connectionId: asked.connectionId + 1,
      accepted: true,
      window: 10,
    }), Reason.UnexpectedPacket);
  assert.equal(only(a.peer, PacketType.RequestFailed).reason, Reason.Offline);
});

Deno.test("Requests fail those made to a leaving owner with Offline and forget its own", () => {
  const { router, a, b } = pair();
  a.dispatch(statusRequest(a, 1));
  b.dispatch(statusRequest(b, 2, ADDRESS_A));
  router.detach(b.peer, Reason.PeerDisconnected);
  const failed = a.peer.take().filter((p) => p.type === PacketType.RequestFailed);
  assert.deepEqual(failed, [{
    type: PacketType.RequestFailed,
    requestId: 1,
    reason: Reason.Offline,
  }]);
  assert.equal(router.pendingCount, 0);
});

Deno.test("Requests log a sweep once a client's requests find nothing 64 times, once per window", () => {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    const router = new Router({ ...DEFAULT_RELAY_CONFIG }, new Logger("warn"));
    const a = attach(router, ADDRESS_A);
    for (let id = 1; id <= 200; id++) a.dispatch(statusRequest(a, id, 0x0a00_1000 + id));
    assert.equal(a.peer.take().length, 200, "every request answered (Offline)");
  } finally {
    console.error = original;
  }
  const sweeps = lines.filter((line) => line.includes(" sweep "));
  assert.equal(sweeps.length, 1, lines.join("\n"));
  assert.match(sweeps[0], /misses=64/);
});
