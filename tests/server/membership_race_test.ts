/**
 * Two links of one key joining at once, both found new by the registry: one
 * registers the key, the other's assignment resolves to it. That one is a
 * known key's join: its source IP's new-address allowance is given back and
 * its join token is neither spent nor logged as used.
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../../client/identity.ts";
import { PROTOCOL_VERSION } from "../../protocol/constants.ts";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason, reasonName } from "../../protocol/reason.ts";
import { AddressPool } from "../../server/address_pool.ts";
import type { JoinMode } from "../../server/config.ts";
import { Logger } from "../../server/log.ts";
import { Membership } from "../../server/membership.ts";
import { Registry } from "../../server/registry.ts";
import { type RegistryStore, SqliteRegistryStore } from "../../server/registry_store.ts";
import { SourceLimits } from "../../server/source_limits.ts";
import { tokenIn } from "../_helpers/join_tokens.ts";
import { proofFor, type RawIdentity } from "../_helpers/raw_client.ts";
import { FakePeer } from "./_fake_peer.ts";
import { testRouter } from "./_router_fixture.ts";

/** A logger that keeps its events instead of printing them. */
class RecordingLogger extends Logger {
  readonly events: Record<string, unknown>[] = [];
  constructor() {
    super("debug");
  }
  override log(level: string, event: string, fields: Record<string, unknown> = {}): void {
    this.events.push({ level, event, ...fields });
  }
}

/**
 * `store`, whose first `held` assign calls (each join's look for a known
 * key) answer only once all of them were made: every join then finds the
 * key new before any registers it.
 */
function holdingStore(store: RegistryStore, held: number): RegistryStore {
  let calls = 0;
  const all = Promise.withResolvers<void>();
  return new Proxy(store, {
    get(target, name): unknown {
      const value = Reflect.get(target, name, target);
      if (typeof value !== "function") return value;
      if (name !== "assign") return value.bind(target);
      return async (...args: unknown[]) => {
        if (++calls > held) return await value.apply(target, args);
        if (calls === held) all.resolve();
        const answer = Promise.try(() => value.apply(target, args));
        answer.catch(() => {}); // settled below, after the others
        await all.promise;
        return await answer;
      };
    },
  });
}

/** A membership whose source IPs may each register `perHour` new addresses an hour. */
function racingCore(perHour: number, join: JoinMode): {
  members: Membership;
  registry: Registry;
  log: RecordingLogger;
} {
  const registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/24"));
  const log = new RecordingLogger();
  const members = new Membership(
    log,
    holdingStore(new SqliteRegistryStore(registry), 2),
    testRouter(),
    {
      newIdentities: new SourceLimits({
        maxLinksPerIp: 0,
        maxHandshakesPerIp: 0,
        maxRequestsPerIp: 0,
        maxNewIdentitiesPerIp: perHour,
      }),
      join,
    },
  );
  return { members, registry, log };
}

/** The whole handshake of `peer` as `identity` with `joinToken`; whether it joined. */
async function join(
  members: Membership,
  peer: FakePeer,
  identity: RawIdentity,
  joinToken?: string,
): Promise<boolean> {
  const handshake = members.greet(peer, { type: PacketType.Hello, version: PROTOCOL_VERSION });
  assert.ok(handshake);
  const challenge = peer.take().find((packet) => packet.type === PacketType.Challenge);
  assert.ok(challenge?.type === PacketType.Challenge);
  return (await handshake.prove(await proofFor(challenge, identity, { joinToken }))) !== null;
}

Deno.test("two links of one new key joining at once: one registers it, the other joins as known and gives its allowance back", async () => {
  const { members, registry, log } = racingCore(2, "open");
  try {
    const identity = await generateIdentity();
    const peers = [new FakePeer(0, "192.0.2.7"), new FakePeer(0, "192.0.2.7")];
    const joined = await Promise.all(peers.map((peer) => join(members, peer, identity)));
    assert.deepEqual(joined, [true, true]);
    assert.equal(peers[0].address, peers[1].address, "one key, one address");
    assert.equal(registry.list().length, 1);
    const assigns = log.events.filter((event) => event.event === "assign");
    assert.equal(assigns.length, 1, "one registration logged");

    // The IP's allowance of two spent once: one more new key joins, the next is refused.
    assert.ok(await join(members, new FakePeer(0, "192.0.2.7"), await generateIdentity()));
    const over = new FakePeer(0, "192.0.2.7");
    assert.equal(await join(members, over, await generateIdentity()), false);
    assert.equal(reasonName(over.closedWith!.reason), reasonName(Reason.RateLimited));
  } finally {
    registry.close();
  }
});

Deno.test("two links of one new key at a token relay: one use spent and logged, the other joins as known", async () => {
  const { members, registry, log } = racingCore(2, "token");
  try {
    const token = await tokenIn(registry, { maxUses: 1 });
    const identity = await generateIdentity();
    const peers = [new FakePeer(0, "192.0.2.7"), new FakePeer(0, "192.0.2.7")];
    const joined = await Promise.all(
      peers.map((peer) => join(members, peer, identity, token.text)),
    );
    assert.deepEqual(joined, [true, true], "the token's one use pays for the key once");
    assert.equal(peers[0].address, peers[1].address);
    assert.equal(registry.joinToken(token.id)?.uses, 1);
    const used = log.events.filter((event) => event.event === "token-used");
    assert.equal(used.length, 1, "one use, one audit line");

    // The IP's allowance of two spent once, by the key that was registered.
    const other = await tokenIn(registry);
    assert.ok(
      await join(members, new FakePeer(0, "192.0.2.7"), await generateIdentity(), other.text),
    );
    const over = new FakePeer(0, "192.0.2.7");
    assert.equal(await join(members, over, await generateIdentity(), other.text), false);
    assert.equal(reasonName(over.closedWith!.reason), reasonName(Reason.RateLimited));
  } finally {
    registry.close();
  }
});

Deno.test("Registry.assign tells a caller that found a key new when it is registered after all", () => {
  using registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
  const key = { kind: "ip", realIp: "192.0.2.7" } as const;
  let known = 0;
  const address = registry.assign(key, Date.now(), { onKnown: () => known++ });
  assert.equal(known, 0, "inserted: not known");
  assert.equal(registry.assign(key, Date.now(), { online: true, onKnown: () => known++ }), address);
  assert.equal(known, 1);
});
