import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import {
  ADDRESS_A,
  ADDRESS_B,
  assertViolation,
  attach,
  only,
  pair,
  testRouter,
} from "./_router_fixture.ts";
import { FakePeer } from "./_fake_peer.ts";

Deno.test("Router answers Ping, rejects relay-only packets, and closes on a client's Error", () => {
  const { a } = pair();
  a.dispatch({ type: PacketType.Ping, nonce: 9 });
  assert.deepEqual(only(a.peer, PacketType.Pong), { type: PacketType.Pong, nonce: 9 });
  assertViolation(
    () => a.dispatch({ type: PacketType.VirtualIP, address: 1 }),
    Reason.UnexpectedPacket,
  );
  a.dispatch({ type: PacketType.Error, reason: Reason.Normal, message: "bye" });
  assert.deepEqual(a.peer.closedWith, {
    reason: Reason.PeerDisconnected,
    message: "client error: bye",
  });
});

Deno.test("Router routes to the newest peer at an address after a takeover", () => {
  const { router, a, b } = pair();
  const newer = attach(router, ADDRESS_B);
  assert.equal(router.peerAt(ADDRESS_B), newer.peer);
  // The replaced peer's close detaches it without taking the address from the newer one.
  assert.equal(router.detach(b.peer, Reason.Replaced), true);
  assert.equal(router.peerAt(ADDRESS_B), newer.peer);
  assert.equal(router.onlineCount, 2);
  a.dispatch({
    type: PacketType.SocketStatusRequest,
    requestId: 1,
    source: ADDRESS_A,
    destination: ADDRESS_B,
    destinationPort: 80,
  });
  assert.equal(only(newer.peer, PacketType.SocketStatusRequest).destination, ADDRESS_B);
  assert.deepEqual(b.peer.take(), []);
});

Deno.test("Router tells whether a peer it detaches had joined", () => {
  const { router, a } = pair();
  assert.equal(router.detach(a.peer, Reason.PeerDisconnected), true);
  assert.equal(router.detach(a.peer, Reason.PeerDisconnected), false);
  assert.equal(router.peerAt(ADDRESS_A), undefined);
  assert.equal(router.onlineCount, 1);
});

Deno.test("Router drops a frame another relay sends for a connection id it never issued that peer (late), where a client's is a violation", () => {
  const router = testRouter();
  const remote = Object.assign(new FakePeer(0x0a00_0009), { remote: true as const });
  const dispatch = router.attachRemote(remote)!;
  dispatch({ type: PacketType.ArbitraryData, connectionId: 77, payload: new Uint8Array(1) });
  dispatch({ type: PacketType.SocketClosed, connectionId: 77, reason: Reason.Normal });
  assert.equal(router.peerAt(0x0a00_0009), remote);
  const local = attach(router, 0x0a00_000a);
  assert.throws(
    () =>
      local.dispatch({
        type: PacketType.ArbitraryData,
        connectionId: 77,
        payload: new Uint8Array(1),
      }),
    /never issued/,
  );
});
