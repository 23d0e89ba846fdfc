import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason, reasonName } from "../../protocol/reason.ts";
import { MAX_ISSUED_ID, PeerBook } from "../../server/peer_book.ts";
import { relayTestHooks } from "../../server/_testing.ts";
import { FakePeer } from "./_fake_peer.ts";
import { ADDRESS_A, ADDRESS_B, attach, only, testRouter } from "./_router_fixture.ts";

/** Runs `body` with every new book's counters starting at `firstIssuedId`. */
function withIdsFrom<T>(firstIssuedId: number, body: () => T): T {
  relayTestHooks.firstIssuedId = firstIssuedId;
  try {
    return body();
  } finally {
    relayTestHooks.firstIssuedId = 0;
  }
}

Deno.test("PeerBook issues ids up to 2^32 − 1 and refuses to pass it", () => {
  const book = withIdsFrom(MAX_ISSUED_ID - 2, () => new PeerBook(new FakePeer(ADDRESS_A)));
  assert.equal(book.issueConnectionId(), MAX_ISSUED_ID - 1);
  assert.equal(book.issueRequestId(), MAX_ISSUED_ID - 1);
  assert.ok(book.canIssueIds);
  assert.equal(book.issueConnectionId(), MAX_ISSUED_ID);
  assert.equal(book.canIssueIds, false, "no connection id is left");
  assert.throws(() => book.issueConnectionId(), RangeError);
  assert.equal(book.issueRequestId(), MAX_ISSUED_ID);
  assert.throws(() => book.issueRequestId(), RangeError);
  assert.ok(book.isIssuedConnectionId(MAX_ISSUED_ID));
  assert.equal(book.isIssuedConnectionId(1), false, "ids below the start were never issued");
});

Deno.test("Requests close an owner out of ids (Internal) and answer its requester Offline", () => {
  const router = testRouter();
  const a = attach(router, ADDRESS_A);
  // B's counters start two below the ceiling: one connect uses a request id and a connection id.
  const b = withIdsFrom(MAX_ISSUED_ID - 1, () => attach(router, ADDRESS_B));
  a.dispatch({
    type: PacketType.SocketStatusRequest,
    requestId: 1,
    source: ADDRESS_A,
    destination: ADDRESS_B,
    destinationPort: 80,
  });
  assert.equal(only(b.peer, PacketType.SocketStatusRequest).requestId, MAX_ISSUED_ID);
  a.dispatch({
    type: PacketType.SocketStatusRequest,
    requestId: 2,
    source: ADDRESS_A,
    destination: ADDRESS_B,
    destinationPort: 80,
  });
  assert.deepEqual(b.peer.take(), [], "nothing reaches the owner past its last id");
  assert.equal(reasonName(b.peer.closedWith!.reason), "Internal");
  assert.match(b.peer.closedWith!.message, /used every connection or request id/);
  assert.deepEqual(only(a.peer, PacketType.RequestFailed), {
    type: PacketType.RequestFailed,
    requestId: 2,
    reason: Reason.Offline,
  });
});

Deno.test("Requests close a requester out of connection ids at acceptance; the owner's end is undone", () => {
  const router = testRouter();
  const a = withIdsFrom(MAX_ISSUED_ID, () => attach(router, ADDRESS_A));
  const b = attach(router, ADDRESS_B);
  a.dispatch({
    type: PacketType.SocketConnectionRequest,
    requestId: 1,
    connectionId: 0,
    source: ADDRESS_A,
    sourcePort: 40_000,
    destination: ADDRESS_B,
    destinationPort: 80,
    window: 16_384,
  });
  const asked = only(b.peer, PacketType.SocketConnectionRequest);
  b.dispatch({
    type: PacketType.SocketConnectionResponse,
    requestId: asked.requestId,
    connectionId: asked.connectionId,
    accepted: true,
    window: 16_384,
  });
  assert.equal(reasonName(a.peer.closedWith!.reason), "Internal");
  assert.deepEqual(a.peer.take(), [], "no response names an id past the ceiling");
  assert.deepEqual(only(b.peer, PacketType.SocketClosed), {
    type: PacketType.SocketClosed,
    connectionId: asked.connectionId,
    reason: Reason.PeerDisconnected,
  });
});
