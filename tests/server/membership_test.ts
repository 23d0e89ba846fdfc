import assert from "node:assert/strict";
import { PROTOCOL_VERSION } from "../../protocol/constants.ts";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import type { HelloPacket } from "../../protocol/packets.ts";
import { AddressPool } from "../../server/address_pool.ts";
import { Logger } from "../../server/log.ts";
import { Membership } from "../../server/membership.ts";
import { Registry } from "../../server/registry.ts";
import { FakePeer } from "./_fake_peer.ts";
import { only, testRouter } from "./_router_fixture.ts";

const HELLO: HelloPacket = { type: PacketType.Hello, version: PROTOCOL_VERSION, identity: null };

/** A membership over an in-memory registry of `cidr`; the test closes the registry. */
function relayCore(cidr = "10.0.0.0/29"): {
  members: Membership;
  registry: Registry;
  router: ReturnType<typeof testRouter>;
} {
  const registry = Registry.open(":memory:", AddressPool.fromCidr(cidr));
  const router = testRouter();
  return { members: new Membership(new Logger("silent"), registry, router), registry, router };
}

Deno.test("Membership joins a peer: an address, online, VirtualIP, and a dispatch to the router", () => {
  const { members, registry, router } = relayCore();
  try {
    const peer = new FakePeer(0, "192.0.2.7");
    const dispatch = members.join(peer, HELLO);
    assert.ok(dispatch);
    assert.notEqual(peer.address, 0);
    assert.deepEqual(only(peer, PacketType.VirtualIP).address, peer.address);
    assert.equal(registry.get(peer.address)?.online, true);
    assert.equal(router.peerAt(peer.address), peer);
    dispatch({ type: PacketType.Ping, nonce: 3 });
    assert.deepEqual(only(peer, PacketType.Pong).nonce, 3);
  } finally {
    registry.close();
  }
});

Deno.test("Membership refuses an unsupported version without attaching (UnsupportedVersion)", () => {
  const { members, registry, router } = relayCore();
  try {
    const peer = new FakePeer();
    assert.equal(members.join(peer, { ...HELLO, version: PROTOCOL_VERSION + 1 }), null);
    assert.equal(peer.closedWith?.reason, Reason.UnsupportedVersion);
    assert.equal(router.onlineCount, 0);
    assert.deepEqual(peer.take(), []);
  } finally {
    registry.close();
  }
});

Deno.test("Membership refuses a peer when the pool is exhausted (PoolExhausted)", () => {
  const { members, registry } = relayCore("10.0.0.0/30"); // two usable addresses
  try {
    assert.ok(members.join(new FakePeer(0, "192.0.2.1"), HELLO));
    assert.ok(members.join(new FakePeer(0, "192.0.2.2"), HELLO));
    const third = new FakePeer(0, "192.0.2.3");
    assert.equal(members.join(third, HELLO), null);
    assert.equal(third.closedWith?.reason, Reason.PoolExhausted);
  } finally {
    registry.close();
  }
});

Deno.test("Membership hands an address to a newer peer with the same key (Replaced)", () => {
  const { members, registry, router } = relayCore();
  try {
    const older = new FakePeer(0, "192.0.2.7");
    members.join(older, HELLO);
    const newer = new FakePeer(0, "192.0.2.7");
    members.join(newer, HELLO);
    assert.equal(newer.address, older.address);
    assert.equal(older.closedWith?.reason, Reason.Replaced);
    // The older peer's close leaves; the address stays online under the newer one.
    members.leave(older, Reason.Replaced, "replaced");
    assert.equal(router.peerAt(newer.address), newer);
    assert.equal(registry.get(newer.address)?.online, true);
    members.leave(newer, Reason.PeerDisconnected, "link closed by the client");
    assert.equal(router.peerAt(newer.address), undefined);
    assert.equal(registry.get(newer.address)?.online, false);
  } finally {
    registry.close();
  }
});

Deno.test("Membership lets a peer that never joined leave without touching the router", () => {
  const { members, registry, router } = relayCore();
  try {
    members.leave(new FakePeer(), Reason.HelloTimeout, "no Hello within 10 ms");
    assert.equal(router.onlineCount, 0);
  } finally {
    registry.close();
  }
});
