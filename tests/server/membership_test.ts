import assert from "node:assert/strict";
import { generateIdentity, type Identity } from "../../client/identity.ts";
import { PROTOCOL_VERSION } from "../../protocol/constants.ts";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason, reasonName } from "../../protocol/reason.ts";
import type { ChallengePacket, HelloPacket, ProofPacket } from "../../protocol/packets.ts";
import { AddressPool } from "../../server/address_pool.ts";
import type { JoinMode } from "../../server/config.ts";
import { Logger } from "../../server/log.ts";
import { RateLimitedLog } from "../../server/log_limiter.ts";
import { Membership, type MembershipOptions } from "../../server/membership.ts";
import type { Dispatch } from "../../server/peer.ts";
import { Registry } from "../../server/registry.ts";
import { SqliteRegistryStore } from "../../server/registry_store.ts";
import { SourceLimits } from "../../server/source_limits.ts";
import { tokenIn } from "../_helpers/join_tokens.ts";
import { proofFor, type RawIdentity } from "../_helpers/raw_client.ts";
import { FakePeer } from "./_fake_peer.ts";
import { only, testRouter } from "./_router_fixture.ts";

const HELLO: HelloPacket = { type: PacketType.Hello, version: PROTOCOL_VERSION };

/** A membership over an in-memory registry of `cidr`; the test closes the registry. */
function relayCore(cidr = "10.0.0.0/29", options: MembershipOptions = {}): {
  members: Membership;
  registry: Registry;
  router: ReturnType<typeof testRouter>;
} {
  const registry = Registry.open(":memory:", AddressPool.fromCidr(cidr));
  const router = testRouter();
  const members = new Membership(
    new Logger("silent"),
    new SqliteRegistryStore(registry),
    router,
    options,
  );
  return { members, registry, router };
}

/** Greets `peer` and takes the Challenge it was sent. */
function greet(members: Membership, peer: FakePeer): {
  challenge: ChallengePacket;
  prove: (proof: ProofPacket) => Promise<Dispatch | null>;
} {
  const handshake = members.greet(peer, HELLO);
  assert.ok(handshake, `greet refused: ${JSON.stringify(peer.closedWith)}`);
  const challenge = only(peer, PacketType.Challenge);
  return { challenge, prove: (proof) => handshake.prove(proof) };
}

/** The whole handshake of `peer` as `identity` (a fresh one by default; null: none). */
async function join(
  members: Membership,
  peer: FakePeer,
  identity?: RawIdentity,
  joinToken?: string,
): Promise<Dispatch | null> {
  const { challenge, prove } = greet(members, peer);
  return await prove(await proofFor(challenge, identity, { joinToken }));
}

/** Asserts `peer` was refused with `reason` and sent nothing after its Challenge. */
function assertRefused(peer: FakePeer, reason: Reason): void {
  assert.equal(
    reasonName(peer.closedWith?.reason ?? -1),
    reasonName(reason),
    peer.closedWith?.message,
  );
  assert.deepEqual(peer.take(), []);
}

Deno.test("Membership greets with the registry's relay id and a fresh nonce, then joins a Proof: an address, online, VirtualIP, a dispatch", async () => {
  const { members, registry, router } = relayCore();
  try {
    const peer = new FakePeer(0, "192.0.2.7");
    const { challenge, prove } = greet(members, peer);
    assert.deepEqual(challenge.relayId, registry.relayId);
    assert.equal(challenge.nonce.length, 32);
    const other = greet(members, new FakePeer(0, "192.0.2.8")).challenge;
    assert.notDeepEqual(other.nonce, challenge.nonce, "every link gets its own nonce");
    const identity = await generateIdentity();
    const dispatch = await prove(await proofFor(challenge, identity));
    assert.ok(dispatch);
    assert.notEqual(peer.address, 0);
    assert.deepEqual(only(peer, PacketType.VirtualIP).address, peer.address);
    assert.equal(registry.get(peer.address)?.online, true);
    assert.equal(registry.get(peer.address)?.kind, "key");
    assert.equal(
      registry.lookup({ kind: "key", publicKey: identity.publicKey }),
      peer.address,
    );
    assert.equal(router.peerAt(peer.address), peer);
    dispatch({ type: PacketType.Ping, nonce: 3 });
    assert.deepEqual(only(peer, PacketType.Pong).nonce, 3);
  } finally {
    registry.close();
  }
});

Deno.test("Membership refuses an unsupported version without a Challenge (UnsupportedVersion)", () => {
  const { members, registry, router } = relayCore();
  try {
    for (const version of [1, PROTOCOL_VERSION + 1]) {
      const peer = new FakePeer();
      assert.equal(members.greet(peer, { ...HELLO, version }), null);
      assertRefused(peer, Reason.UnsupportedVersion);
    }
    assert.equal(router.onlineCount, 0);
  } finally {
    registry.close();
  }
});

Deno.test("Membership refuses a Proof whose identity signature does not verify (InvalidIdentity), writing nothing", async () => {
  const { members, registry, router } = relayCore();
  try {
    const identity = await generateIdentity();
    // A signature of another link's challenge: a replayed Proof.
    const elsewhere = greet(members, new FakePeer()).challenge;
    const replayed = await proofFor(elsewhere, identity);
    const peer = new FakePeer();
    const { prove } = greet(members, peer);
    assert.equal(await prove(replayed), null);
    assertRefused(peer, Reason.InvalidIdentity);

    // A flipped bit in the signature.
    const flipped = new FakePeer();
    const second = greet(members, flipped);
    const proof = await proofFor(second.challenge, identity);
    proof.identity!.signature[0] ^= 1;
    assert.equal(await second.prove(proof), null);
    assertRefused(flipped, Reason.InvalidIdentity);

    // A public key that is not a curve point fails like a bad signature, without a throw.
    const garbage = new FakePeer();
    const third = greet(members, garbage);
    const bogus: ProofPacket = {
      type: PacketType.Proof,
      identity: { publicKey: new Uint8Array(32).fill(0xff), signature: new Uint8Array(64) },
      joinToken: null,
      legacyClaim: null,
    };
    assert.equal(await third.prove(bogus), null);
    assertRefused(garbage, Reason.InvalidIdentity);

    assert.deepEqual(registry.list(), [], "nothing registered");
    assert.equal(router.onlineCount, 0);
  } finally {
    registry.close();
  }
});

Deno.test("Membership joins nothing for a peer that closed while its Proof was verified", async () => {
  const { members, registry, router } = relayCore();
  try {
    const peer = new FakePeer(0, "192.0.2.7");
    const { challenge, prove } = greet(members, peer);
    const proof = await proofFor(challenge, await generateIdentity());
    const proving = prove(proof);
    peer.close(Reason.PeerDisconnected, "link closed by the client");
    members.leave(peer, Reason.PeerDisconnected, "link closed by the client");
    assert.equal(await proving, null);
    assert.deepEqual(peer.take(), [], "no VirtualIP");
    assert.equal(peer.address, 0);
    assert.deepEqual(registry.list(), [], "nothing registered");
    assert.equal(router.onlineCount, 0);
  } finally {
    registry.close();
  }
});

Deno.test("Membership copies the Proof before it awaits: a read buffer reused meanwhile changes nothing", async () => {
  const { members, registry } = relayCore();
  try {
    const peer = new FakePeer();
    const { challenge, prove } = greet(members, peer);
    const proof = await proofFor(challenge, await generateIdentity());
    const proving = prove(proof);
    proof.identity!.signature.fill(0); // as a decoder's next frame would overwrite its buffer
    assert.ok(await proving);
    assert.equal(registry.list().length, 1);
  } finally {
    registry.close();
  }
});

Deno.test("Membership refuses a second Proof on one handshake (UnexpectedPacket)", async () => {
  const { members, registry } = relayCore();
  try {
    const peer = new FakePeer();
    const { challenge, prove } = greet(members, peer);
    const proof = await proofFor(challenge, null);
    assert.ok(await prove(proof));
    assert.equal(await prove(proof), null);
    assert.equal(peer.closedWith?.reason, Reason.UnexpectedPacket);
  } finally {
    registry.close();
  }
});

Deno.test("Membership refuses a peer when the pool is exhausted (PoolExhausted)", async () => {
  const { members, registry } = relayCore("10.0.0.0/30"); // two usable addresses
  try {
    assert.ok(await join(members, new FakePeer(0, "192.0.2.1"), null));
    assert.ok(await join(members, new FakePeer(0, "192.0.2.2"), null));
    const third = new FakePeer(0, "192.0.2.3");
    assert.equal(await join(members, third, null), null);
    assertRefused(third, Reason.PoolExhausted);
  } finally {
    registry.close();
  }
});

Deno.test("Membership hands an address to a newer peer with the same key (Replaced)", async () => {
  const { members, registry, router } = relayCore();
  try {
    const identity = await generateIdentity();
    const older = new FakePeer(0, "192.0.2.7");
    await join(members, older, identity);
    const newer = new FakePeer(0, "192.0.2.8");
    await join(members, newer, identity);
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
    members.leave(new FakePeer(), Reason.HelloTimeout, "the handshake did not complete");
    assert.equal(router.onlineCount, 0);
  } finally {
    registry.close();
  }
});

/** A membership whose source IPs may each register `perHour` new addresses an hour. */
function limitedCore(perHour: number, join: JoinMode = "open"): {
  members: Membership;
  registry: Registry;
} {
  const registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/24"));
  const sources = new SourceLimits({
    maxLinksPerIp: 0,
    maxHandshakesPerIp: 0,
    maxRequestsPerIp: 0,
    maxNewIdentitiesPerIp: perHour,
  });
  const log = new Logger("silent");
  const members = new Membership(log, new SqliteRegistryStore(registry), testRouter(), {
    refusals: new RateLimitedLog(log),
    newIdentities: sources,
    join,
  });
  return { members, registry };
}

Deno.test("Membership refuses a source IP's new address over its hourly allowance, before the registry (RateLimited)", async () => {
  const { members, registry } = limitedCore(3);
  try {
    for (let i = 0; i < 3; i++) assert.ok(await join(members, new FakePeer(0, "192.0.2.7")));
    assert.equal(registry.list().length, 3);
    const fourth = new FakePeer(0, "192.0.2.7");
    assert.equal(await join(members, fourth), null);
    assert.equal(
      fourth.closedWith?.message,
      "Cannot join: this source IP registered 3 new addresses in the last hour, as many as the relay allows",
    );
    assertRefused(fourth, Reason.RateLimited);
    assert.equal(registry.list().length, 3, "a refused join writes nothing");
    // An IP-keyed client from the same source is a new key too.
    const ipKeyed = new FakePeer(0, "192.0.2.7");
    assert.equal(await join(members, ipKeyed, null), null);
    assertRefused(ipKeyed, Reason.RateLimited);
    assert.equal(registry.list().length, 3);
  } finally {
    registry.close();
  }
});

Deno.test("Membership lets a known key rejoin, and another source IP register, past one IP's allowance", async () => {
  const { members, registry } = limitedCore(1);
  try {
    const a = await generateIdentity();
    const first = new FakePeer(0, "192.0.2.7");
    assert.ok(await join(members, first, a));
    assert.equal(await join(members, new FakePeer(0, "192.0.2.7")), null);
    const again = new FakePeer(0, "192.0.2.7");
    assert.ok(await join(members, again, a));
    assert.equal(again.address, first.address);
    assert.ok(await join(members, new FakePeer(0, "192.0.2.8")));
    assert.equal(registry.list().length, 2);
  } finally {
    registry.close();
  }
});

Deno.test("Membership with ipIdentities off refuses a client without identity (InvalidIdentity), writing nothing", async () => {
  const { members, registry } = relayCore("10.0.0.0/29", { ipIdentities: false });
  try {
    const anonymous = new FakePeer(0, "192.0.2.7");
    assert.equal(await join(members, anonymous, null), null);
    assert.match(anonymous.closedWith?.message ?? "", /requires an identity/);
    assertRefused(anonymous, Reason.InvalidIdentity);
    assert.deepEqual(registry.list(), [], "nothing registered");
    assert.ok(await join(members, new FakePeer(0, "192.0.2.7")), "a client with an identity joins");
    assert.equal(registry.list().length, 1);
  } finally {
    registry.close();
  }
});

Deno.test("Membership at a token relay: each refusal its own reason, in order, and none spends a use", async () => {
  const { members, registry } = relayCore("10.0.0.0/29", { join: "token" });
  try {
    const now = Date.now();
    const good = await tokenIn(registry, { maxUses: 5 });
    const revoked = await tokenIn(registry);
    registry.revokeJoinToken(revoked.id);
    const expired = await tokenIn(registry, { expiresAt: now - 1 });
    const usedUp = await tokenIn(registry, { maxUses: 1 });
    assert.ok(await join(members, new FakePeer(), undefined, usedUp.text));
    // Not in this registry: a token of another relay's.
    using elsewhere = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
    const unknown = await tokenIn(elsewhere);

    const cases: [string, string | undefined, Reason][] = [
      ["no token", undefined, Reason.JoinTokenRequired],
      ["an unknown token", unknown.text, Reason.JoinTokenInvalid],
      ["a revoked token", revoked.text, Reason.JoinTokenInvalid],
      ["an expired token", expired.text, Reason.JoinTokenExpired],
      ["a used-up token", usedUp.text, Reason.JoinTokenUsedUp],
    ];
    for (const [name, token, reason] of cases) {
      for (const identity of [undefined, null]) {
        const peer = new FakePeer();
        assert.equal(await join(members, peer, identity, token), null, name);
        assertRefused(peer, reason);
      }
    }
    // A good token id whose signature is made by another token's key.
    const forged = `anj1.${good.id}.${revoked.text.split(".")[2]}`;
    const peer = new FakePeer();
    assert.equal(await join(members, peer, undefined, forged), null);
    assertRefused(peer, Reason.JoinTokenInvalid);

    assert.equal(registry.list().length, 1, "only the used-up token's one join registered");
    assert.equal(registry.joinToken(good.id)?.uses, 0, "no refusal spent a use");
    assert.equal(registry.joinToken(usedUp.id)?.uses, 1);
  } finally {
    registry.close();
  }
});

Deno.test("Membership at a token relay: a use per new key, none for a known key, whose token is ignored", async () => {
  const { members, registry } = relayCore("10.0.0.0/29", { join: "token" });
  try {
    const token = await tokenIn(registry, { maxUses: 3 });
    const identity = await generateIdentity();
    const first = new FakePeer();
    assert.ok(await join(members, first, identity, token.text));
    assert.equal(registry.joinToken(token.id)?.uses, 1);
    assert.ok(registry.joinToken(token.id)?.lastUsedAt);
    // Reconnecting: no token needed, and a bad one is ignored.
    const again = new FakePeer();
    assert.ok(await join(members, again, identity));
    assert.equal(again.address, first.address);
    const revoked = await tokenIn(registry);
    registry.revokeJoinToken(revoked.id);
    assert.ok(await join(members, new FakePeer(), identity, revoked.text));
    assert.equal(registry.joinToken(token.id)?.uses, 1, "reconnecting costs nothing");
    // An IP-keyed client is a new key too, and pays.
    assert.ok(await join(members, new FakePeer(0, "192.0.2.9"), null, token.text));
    assert.equal(registry.joinToken(token.id)?.uses, 2);
  } finally {
    registry.close();
  }
});

Deno.test("Membership at a token relay: a join refused after the token's checks spends nothing (RateLimited, PoolExhausted)", async () => {
  const limited = limitedCore(1, "token");
  try {
    const token = await tokenIn(limited.registry);
    assert.ok(await join(limited.members, new FakePeer(0, "192.0.2.7"), undefined, token.text));
    const over = new FakePeer(0, "192.0.2.7");
    assert.equal(await join(limited.members, over, undefined, token.text), null);
    assertRefused(over, Reason.RateLimited);
    assert.equal(limited.registry.joinToken(token.id)?.uses, 1);
  } finally {
    limited.registry.close();
  }
  const { members, registry } = relayCore("10.0.0.0/31", { join: "token" }); // two addresses
  try {
    const token = await tokenIn(registry);
    assert.ok(await join(members, new FakePeer(), undefined, token.text));
    assert.ok(await join(members, new FakePeer(), undefined, token.text));
    const third = new FakePeer();
    assert.equal(await join(members, third, undefined, token.text), null);
    assertRefused(third, Reason.PoolExhausted);
    assert.equal(registry.joinToken(token.id)?.uses, 2);
  } finally {
    registry.close();
  }
});

Deno.test("Membership gives back the new-address allowance of a join the full pool refused", async () => {
  const registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/31")); // two addresses
  const sources = new SourceLimits({
    maxLinksPerIp: 0,
    maxHandshakesPerIp: 0,
    maxRequestsPerIp: 0,
    maxNewIdentitiesPerIp: 3,
  });
  const log = new Logger("silent");
  const members = new Membership(log, new SqliteRegistryStore(registry), testRouter(), {
    newIdentities: sources,
  });
  try {
    const first = new FakePeer(0, "192.0.2.7");
    assert.ok(await join(members, first, await generateIdentity()));
    assert.ok(await join(members, new FakePeer(0, "192.0.2.7"), await generateIdentity()));
    const refused = new FakePeer(0, "192.0.2.7");
    assert.equal(await join(members, refused, await generateIdentity()), null);
    assertRefused(refused, Reason.PoolExhausted);
    // The refused join registered nothing, so the IP still has its third registration.
    members.leave(first, Reason.PeerDisconnected, "gone");
    assert.ok(registry.release(first.address));
    assert.ok(await join(members, new FakePeer(0, "192.0.2.7"), await generateIdentity()));
  } finally {
    registry.close();
  }
});

Deno.test("Membership at a token relay: two joins racing for a token's last use, one wins, the other gets JoinTokenUsedUp", async () => {
  const { members, registry } = relayCore("10.0.0.0/29", { join: "token" });
  try {
    const token = await tokenIn(registry, { maxUses: 1 });
    const peers = [new FakePeer(0, "192.0.2.1"), new FakePeer(0, "192.0.2.2")];
    const greeted = peers.map((peer) => greet(members, peer));
    const identities: Identity[] = await Promise.all(peers.map(() => generateIdentity()));
    const proofs = await Promise.all(
      greeted.map(({ challenge }, i) =>
        proofFor(challenge, identities[i], { joinToken: token.text })
      ),
    );
    // Both verified before either joins: both saw one use left.
    const results = await Promise.all(greeted.map(({ prove }, i) => prove(proofs[i])));
    assert.equal(results.filter((dispatch) => dispatch !== null).length, 1);
    const loser = peers[results.findIndex((dispatch) => dispatch === null)];
    assertRefused(loser, Reason.JoinTokenUsedUp);
    assert.equal(registry.joinToken(token.id)?.uses, 1);
    assert.equal(registry.list().length, 1);
  } finally {
    registry.close();
  }
});

Deno.test("Membership at an open relay ignores a token in a Proof", async () => {
  const { members, registry } = relayCore();
  try {
    const token = await tokenIn(registry);
    registry.revokeJoinToken(token.id);
    assert.ok(await join(members, new FakePeer(), undefined, token.text));
    assert.equal(registry.joinToken(token.id)?.uses, 0);
  } finally {
    registry.close();
  }
});
