/**
 * What a join costs the registry, counted (not timed): the SQLite
 * statements it runs and the store calls it makes (each a round trip or
 * more on PostgreSQL). A Proof whose identity does not verify costs none.
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../../client/identity.ts";
import { PROTOCOL_VERSION } from "../../protocol/constants.ts";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason, reasonName } from "../../protocol/reason.ts";
import type { ProofPacket } from "../../protocol/packets.ts";
import { AddressPool } from "../../server/address_pool.ts";
import { Logger } from "../../server/log.ts";
import { Membership, type MembershipOptions } from "../../server/membership.ts";
import { Registry } from "../../server/registry.ts";
import { REGISTRY_SQL } from "../../server/registry_statements.ts";
import { type RegistryStore, SqliteRegistryStore } from "../../server/registry_store.ts";
import { SourceLimits } from "../../server/source_limits.ts";
import { tokenIn } from "../_helpers/join_tokens.ts";
import { proofFor, type RawIdentity } from "../_helpers/raw_client.ts";
import { FakePeer } from "./_fake_peer.ts";
import { testRouter } from "./_router_fixture.ts";

/** A membership over an in-memory registry that records every statement and every store call. */
interface CountedCore extends Disposable {
  readonly members: Membership;
  readonly registry: Registry;
  /** The SQL of each statement run since the last {@linkcode reset}. */
  readonly statements: string[];
  /** The name of each store method called since the last {@linkcode reset}. */
  readonly calls: string[];
  /** Runs after each store call has settled, before the join goes on. */
  afterCall: ((name: string) => void) | null;
  reset(): void;
}

function countedCore(options: MembershipOptions = {}): CountedCore {
  const statements: string[] = [];
  const calls: string[] = [];
  const registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/24"), {
    onStatement: (sql) => statements.push(sql),
  });
  const hooks: { afterCall: ((name: string) => void) | null } = { afterCall: null };
  const members = new Membership(
    new Logger("silent"),
    countingStore(new SqliteRegistryStore(registry), calls, (name) => hooks.afterCall?.(name)),
    testRouter(),
    {
      // Allowances taken and given back are part of a join's work: counted with a real budget.
      newIdentities: new SourceLimits({
        maxLinksPerIp: 0,
        maxHandshakesPerIp: 0,
        maxRequestsPerIp: 0,
        maxNewIdentitiesPerIp: 1000,
      }),
      ...options,
    },
  );
  return {
    members,
    registry,
    statements,
    calls,
    get afterCall(): ((name: string) => void) | null {
      return hooks.afterCall;
    },
    set afterCall(hook: ((name: string) => void) | null) {
      hooks.afterCall = hook;
    },
    reset(): void {
      statements.length = 0;
      calls.length = 0;
    },
    [Symbol.dispose](): void {
      registry.close();
    },
  };
}

/** `store`, noting the name of each method called in `calls`, and calling `after` once it settled. */
function countingStore(
  store: RegistryStore,
  calls: string[],
  after: (name: string) => void,
): RegistryStore {
  return new Proxy(store, {
    get(target, name): unknown {
      const value = Reflect.get(target, name, target);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        calls.push(String(name));
        try {
          return await value.apply(target, args);
        } finally {
          after(String(name));
        }
      };
    },
  });
}

/** Greets `peer` and answers its Challenge with the Proof `make` builds from it. */
async function prove(
  members: Membership,
  peer: FakePeer,
  make: (challenge: Parameters<typeof proofFor>[0]) => Promise<ProofPacket>,
): Promise<boolean> {
  const handshake = members.greet(peer, { type: PacketType.Hello, version: PROTOCOL_VERSION });
  assert.ok(handshake);
  const challenge = peer.take().find((packet) => packet.type === PacketType.Challenge);
  assert.ok(challenge?.type === PacketType.Challenge);
  return (await handshake.prove(await make(challenge))) !== null;
}

/** A join as `identity` (a fresh one by default; null: none) with `joinToken`. */
function join(
  members: Membership,
  peer: FakePeer,
  identity?: RawIdentity,
  joinToken?: string,
): Promise<boolean> {
  return prove(members, peer, (challenge) => proofFor(challenge, identity, { joinToken }));
}

function assertRefused(peer: FakePeer, reason: Reason): void {
  assert.equal(
    reasonName(peer.closedWith?.reason ?? -1),
    reasonName(reason),
    peer.closedWith?.message,
  );
}

Deno.test("a Proof whose identity signature does not verify costs the registry nothing, whatever else it carries", async () => {
  for (const join of ["open", "token"] as const) {
    using core = countedCore({ join });
    const token = await tokenIn(core.registry);
    const bad: [string, (proof: ProofPacket) => void][] = [
      ["a flipped signature bit", (proof) => proof.identity!.signature[0] ^= 1],
      ["a key that is not a curve point", (proof) => proof.identity!.publicKey.fill(0xff)],
      ["a key of small order", (proof) => proof.identity!.publicKey.fill(0).set([1])],
    ];
    for (const [name, spoil] of bad) {
      // A version 1 secret's Proof: an identity, a legacy claim and a join token, all read by a
      // join that gets that far.
      const peer = new FakePeer(0, "192.0.2.7");
      core.reset();
      const joined = await prove(core.members, peer, async (challenge) => {
        const proof = await proofFor(challenge, "a version 1 secret", { joinToken: token.text });
        assert.ok(proof.identity && proof.joinToken && proof.legacyClaim);
        spoil(proof);
        return proof;
      });
      assert.equal(joined, false, name);
      assertRefused(peer, Reason.InvalidIdentity);
      assert.deepEqual(core.statements, [], `${join}, ${name}: no statement`);
      assert.deepEqual(core.calls, [], `${join}, ${name}: no store call`);
    }
  }
});

Deno.test("a Proof without identity at a relay run with ipIdentities off costs the registry nothing", async () => {
  using core = countedCore({ ipIdentities: false });
  const peer = new FakePeer(0, "192.0.2.7");
  core.reset();
  assert.equal(await join(core.members, peer, null), false);
  assertRefused(peer, Reason.InvalidIdentity);
  assert.deepEqual(core.statements, []);
  assert.deepEqual(core.calls, []);
});

/** The statements and store calls of one join of `peer` as `identity` with `joinToken`. */
async function costOf(
  core: CountedCore,
  peer: FakePeer,
  identity?: RawIdentity,
  joinToken?: string,
): Promise<{ statements: string[]; calls: string[] }> {
  core.reset();
  assert.ok(await join(core.members, peer, identity, joinToken), peer.closedWith?.message);
  return { statements: [...core.statements], calls: [...core.calls] };
}

let bareKeys = 0;

/** The statements of `registry.assign` on its own for a key it has never seen. */
function bareAssignCost(core: CountedCore, joinToken: string | null): string[] {
  const key = { kind: "ip", realIp: `198.51.100.${++bareKeys}` } as const;
  core.reset();
  core.registry.assign(key, Date.now(), { online: true, joinToken });
  return [...core.statements];
}

Deno.test("a known key's join is one store call, the registry's own touch: no lookup before it", async () => {
  for (const mode of ["open", "token"] as const) {
    using core = countedCore({ join: mode });
    const token = await tokenIn(core.registry);
    const identity = await generateIdentity();
    assert.ok(await join(core.members, new FakePeer(0, "192.0.2.7"), identity, token.text));
    // The reference client sends its token on every join: a known key's is neither read nor spent.
    const known = await costOf(core, new FakePeer(0, "192.0.2.7"), identity, token.text);
    assert.deepEqual(known.calls, ["assign"], mode);
    assert.deepEqual(known.statements, [REGISTRY_SQL.selectByKey, REGISTRY_SQL.touchOnline], mode);
    assert.equal(core.registry.joinToken(token.id)?.uses, mode === "token" ? 1 : 0);
  }
});

Deno.test("a new key's join costs the registry's assignment, one read that finds it new, and its token's row: nothing read twice", async () => {
  for (const mode of ["open", "token"] as const) {
    using core = countedCore({ join: mode });
    const token = await tokenIn(core.registry);
    // The pool's walk is set up by the first assignment; the next ones cost the same each.
    assert.ok(await join(core.members, new FakePeer(0, "192.0.2.9"), undefined, token.text));
    const fresh = await costOf(core, new FakePeer(0, "192.0.2.7"), undefined, token.text);
    const spend = mode === "token" ? token.id : null;
    const assignment = bareAssignCost(core, spend);
    if (mode === "open") {
      assert.deepEqual(fresh.calls, ["assign", "assign"]);
      assert.deepEqual(fresh.statements, [REGISTRY_SQL.selectByKey, ...assignment]);
    } else {
      assert.deepEqual(fresh.calls, ["assign", "joinToken", "assign"]);
      assert.deepEqual(fresh.statements, [
        REGISTRY_SQL.selectByKey,
        REGISTRY_SQL.token,
        ...assignment,
      ]);
      assert.equal(core.registry.joinToken(token.id)?.uses, 3);
    }
  }
});

Deno.test("a token revoked after the join read it is refused where its use would be spent: JoinTokenInvalid, nothing written, the allowance given back", async () => {
  using core = countedCore({
    join: "token",
    newIdentities: new SourceLimits({
      maxLinksPerIp: 0,
      maxHandshakesPerIp: 0,
      maxRequestsPerIp: 0,
      maxNewIdentitiesPerIp: 1,
    }),
  });
  const token = await tokenIn(core.registry);
  core.afterCall = (name) => {
    if (name === "joinToken") core.registry.revokeJoinToken(token.id);
  };
  const peer = new FakePeer(0, "192.0.2.7");
  assert.equal(await join(core.members, peer, undefined, token.text), false);
  assertRefused(peer, Reason.JoinTokenInvalid);
  assert.deepEqual(core.registry.list(), []);
  assert.equal(core.registry.joinToken(token.id)?.uses, 0);
  // The source IP's one registration an hour is still there for a good token.
  core.afterCall = null;
  const good = await tokenIn(core.registry);
  assert.ok(await join(core.members, new FakePeer(0, "192.0.2.7"), undefined, good.text));
});
