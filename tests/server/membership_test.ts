import assert from "node:assert/strict";
import { PROTOCOL_VERSION } from "../../protocol/constants.ts";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import type { HelloPacket } from "../../protocol/packets.ts";
import { AddressPool } from "../../server/address_pool.ts";
import { Logger } from "../../server/log.ts";
import { RateLimitedLog } from "../../server/log_limiter.ts";
import { Membership } from "../../server/membership.ts";
import { Registry } from "../../server/registry.ts";
import { SourceLimits } from "../../server/source_limits.ts";
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

/** A Hello with the identity secret `name`, padded to the 16 bytes an identity needs. */
function helloAs(name: string): HelloPacket {
  return { ...HELLO, identity: new TextEncoder().encode(name.padEnd(16, ".")) };
}

/** A membership whose source IPs may each register `perHour` new addresses an hour. */
function limitedCore(perHour: number): {
  members: Membership;
  registry: Registry;
  sources: SourceLimits;
} {
  const registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/24"));
  const sources = new SourceLimits({
    maxLinksPerIp: 0,
    maxHandshakesPerIp: 0,
    maxRequestsPerIp: 0,
    maxNewIdentitiesPerIp: perHour,
  });
  const log = new Logger("silent");
  const members = new Membership(log, registry, testRouter(), {
    refusals: new RateLimitedLog(log),
    newIdentities: sources,
  });
  return { members, registry, sources };
}

Deno.test("Membership refuses a source IP's new address over its hourly allowance, before the registry (RateLimited)", () => {
  const { members, registry } = limitedCore(3);
  try {
    for (const name of ["a", "b", "c"]) {
      assert.ok(members.join(new FakePeer(0, "192.0.2.7"), helloAs(name)), name);
    }
    assert.equal(registry.list().length, 3);
    const fourth = new FakePeer(0, "192.0.2.7");
    assert.equal(members.join(fourth, helloAs("d")), null);
    assert.equal(fourth.closedWith?.reason, Reason.RateLimited);
    assert.equal(
      fourth.closedWith?.message,
      "Cannot join: this source IP registered 3 new addresses in the last hour, as many as the relay allows",
    );
    assert.deepEqual(fourth.take(), []);
    assert.equal(registry.list().length, 3, "a refused join writes nothing");
    // An IP-keyed client from the same source is a new key too.
    const ipKeyed = new FakePeer(0, "192.0.2.7");
    assert.equal(members.join(ipKeyed, HELLO), null);
    assert.equal(ipKeyed.closedWith?.reason, Reason.RateLimited);
    assert.equal(registry.list().length, 3);
  } finally {
    registry.close();
  }
});

Deno.test("Membership lets a known key rejoin, and another source IP register, past one IP's allowance", () => {
  const { members, registry } = limitedCore(1);
  try {
    const first = new FakePeer(0, "192.0.2.7");
    assert.ok(members.join(first, helloAs("a")));
    assert.equal(members.join(new FakePeer(0, "192.0.2.7"), helloAs("b")), null);
    const again = new FakePeer(0, "192.0.2.7");
    assert.ok(members.join(again, helloAs("a")));
    assert.equal(again.address, first.address);
    assert.ok(members.join(new FakePeer(0, "192.0.2.8"), helloAs("b")));
    assert.equal(registry.list().length, 2);
  } finally {
    registry.close();
  }
});

Deno.test("Membership with ipIdentities off refuses a client without identity (InvalidIdentity), writing nothing", () => {
  const registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
  const router = testRouter();
  const members = new Membership(new Logger("silent"), registry, router, { ipIdentities: false });
  try {
    const anonymous = new FakePeer(0, "192.0.2.7");
    assert.equal(members.join(anonymous, HELLO), null);
    assert.equal(anonymous.closedWith?.reason, Reason.InvalidIdentity);
    assert.match(anonymous.closedWith?.message ?? "", /requires an identity/);
    assert.deepEqual(registry.list(), [], "nothing registered");
    const keyed = new FakePeer(0, "192.0.2.7");
    const identity = new TextEncoder().encode("an-identity-of-16-bytes-or-more");
    assert.ok(members.join(keyed, { ...HELLO, identity }), "a client with an identity still joins");
    assert.equal(registry.list().length, 1);
  } finally {
    registry.close();
  }
});
