import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import type { RequestTerms } from "../../server/pending_request.ts";
import type { PeerBook } from "../../server/peer_book.ts";
import { PendingRequests } from "../../server/pending_requests.ts";
import { RoutingTable } from "../../server/routing_table.ts";
import { FakePeer } from "./_fake_peer.ts";
import { ADDRESS_A, ADDRESS_B, assertViolation } from "./_router_fixture.ts";

const TIMEOUT_MS = 10;
const STATUS: RequestTerms = {
  kind: "status",
  ownerConnectionId: 0,
  requesterPort: 0,
  ownerPort: 80,
  requesterWindow: 0,
};

interface Table {
  readonly pending: PendingRequests;
  readonly alice: FakePeer;
  readonly bob: FakePeer;
  readonly requester: PeerBook;
  readonly owner: PeerBook;
}

function table(): Table {
  const routes = new RoutingTable();
  const alice = new FakePeer(ADDRESS_A);
  const bob = new FakePeer(ADDRESS_B);
  const pending = new PendingRequests(TIMEOUT_MS, routes);
  return { pending, alice, bob, requester: routes.add(alice), owner: routes.add(bob) };
}

Deno.test("PendingRequests files a request in both books under a fresh owner id", () => {
  const { pending, requester, owner } = table();
  const first = pending.track(requester, 7, owner, STATUS, 0);
  const second = pending.track(requester, 8, owner, STATUS, 0);
  assert.deepEqual([first.ownerRequestId, second.ownerRequestId], [1, 2]);
  assert.equal(first.deadline, TIMEOUT_MS);
  assert.equal(requester.outgoing.get(7), first);
  assert.equal(owner.incoming.get(1), first);
  assert.equal(pending.size, 2);
});

Deno.test("PendingRequests expires requests in deadline order with Timeout", () => {
  const { pending, alice, requester, owner } = table();
  pending.track(requester, 1, owner, STATUS, 0);
  pending.track(requester, 2, owner, STATUS, 5);
  pending.expire(TIMEOUT_MS - 1);
  assert.deepEqual(alice.take(), []);
  pending.expire(TIMEOUT_MS);
  assert.deepEqual(alice.take(), [
    { type: PacketType.RequestFailed, requestId: 1, reason: Reason.Timeout },
  ]);
  pending.expire(TIMEOUT_MS + 5);
  assert.deepEqual(alice.take(), [
    { type: PacketType.RequestFailed, requestId: 2, reason: Reason.Timeout },
  ]);
  assert.equal(pending.size, 0);
  assert.equal(requester.outgoing.size, 0);
  assert.equal(owner.incoming.size, 0);
});

Deno.test("PendingRequests fails requests made to a leaving owner with Offline", () => {
  const { pending, alice, bob, requester, owner } = table();
  pending.track(requester, 1, owner, STATUS, 0);
  pending.track(owner, 9, requester, STATUS, 0);
  pending.detach(owner);
  assert.deepEqual(alice.take(), [
    { type: PacketType.RequestFailed, requestId: 1, reason: Reason.Offline },
  ]);
  // The leaving peer's own request is dropped without an answer.
  assert.deepEqual(bob.take(), []);
  assert.equal(pending.size, 0);
  assert.equal(requester.incoming.size, 0);
});

Deno.test("PendingRequests settles an answer once, and rejects a wrong kind or an unknown id", () => {
  const { pending, requester, owner } = table();
  const request = pending.track(requester, 1, owner, STATUS, 0);
  assertViolation(
    () => pending.settle(owner, request.ownerRequestId, "echo"),
    Reason.UnexpectedPacket,
  );
  assert.equal(pending.settle(owner, request.ownerRequestId, "status"), request);
  // A late answer to a settled request is dropped; an id never issued is a violation.
  assert.equal(pending.settle(owner, request.ownerRequestId, "status"), undefined);
  assertViolation(() => pending.settle(owner, 2, "status"), Reason.UnknownId);
  assertViolation(() => pending.settle(requester, 1, "status"), Reason.UnknownId);
  assert.equal(pending.size, 0);
});
