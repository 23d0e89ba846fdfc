/**
 * The TCP session's handshake states around a Proof that takes time to
 * verify: a real link, the real membership, registry and router, and a host
 * that holds each verification until the test lets it go, so what happens
 * meanwhile (the client leaves, the handshake times out) is no race.
 */

import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason, reasonName } from "../../protocol/reason.ts";
import { AddressPool } from "../../server/address_pool.ts";
import { DEFAULT_RELAY_CONFIG } from "../../server/config.ts";
import { Logger } from "../../server/log.ts";
import { Membership } from "../../server/membership.ts";
import type { Peer, PeerHost } from "../../server/peer.ts";
import { copyProof } from "../../server/proof_check.ts";
import { Registry } from "../../server/registry.ts";
import { SqliteRegistryStore } from "../../server/registry_store.ts";
import { streamCarrier } from "../../server/carrier.ts";
import { ClientSession } from "../../server/session.ts";
import { SourceShare } from "../../server/source_limits.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { RawClient } from "../_helpers/raw_client.ts";
import { testRouter } from "./_router_fixture.ts";

/** A session on a real loopback link, its host holding every Proof until `release()`. */
interface HeldSession {
  readonly client: RawClient;
  readonly registry: Registry;
  readonly router: ReturnType<typeof testRouter>;
  /** Resolves with the reason of the host's leave() for the session. */
  readonly left: Promise<Reason>;
  /** Resolves once the session has told the relay it ended. */
  readonly ended: Promise<void>;
  /** Whether the session ever opened. */
  readonly joined: () => boolean;
  /** Resolves when the host got the Proof (and holds it). */
  readonly proofHeld: Promise<void>;
  /** Lets the held verification go on into the real membership. */
  release(): void;
  /** Resolves when the session's run() has settled. */
  readonly run: Promise<void>;
  close(): Promise<void>;
}

async function heldSession(
  helloTimeoutMs = 10_000,
  broken = false,
): Promise<HeldSession> {
  const registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
  const router = testRouter();
  const log = new Logger("silent");
  const members = new Membership(log, new SqliteRegistryStore(registry), router);
  const gate = Promise.withResolvers<void>();
  const held = Promise.withResolvers<void>();
  const left = Promise.withResolvers<Reason>();
  const ended = Promise.withResolvers<void>();
  let joined = false;
  const host: PeerHost = {
    greet: (peer, hello) => {
      const handshake = members.greet(peer, hello);
      if (handshake === null) return null;
      return {
        prove: async (proof) => {
          const copy = copyProof(proof); // before the await: the decoder reuses its buffer
          held.resolve();
          await gate.promise;
          if (broken) throw new Error("a host bug");
          return await handshake.prove(copy);
        },
      };
    },
    leave: (peer: Peer, reason, message) => {
      left.resolve(reason);
      members.leave(peer, reason, message);
    },
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connecting = Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = await listener.accept();
  listener.close();
  const client = RawClient.adopt(await connecting);
  const session = new ClientSession(streamCarrier(conn, "tcp"), {
    config: { ...DEFAULT_RELAY_CONFIG, helloTimeoutMs },
    log,
    host,
    joined: () => joined = true,
    ended: () => ended.resolve(),
  }, new SourceShare("127.0.0.1", 0));
  const run = session.run();
  return {
    client,
    registry,
    router,
    left: left.promise,
    ended: ended.promise,
    joined: () => joined,
    proofHeld: held.promise,
    release: () => gate.resolve(),
    run,
    async close(): Promise<void> {
      gate.resolve();
      await client.close();
      await withTimeout(run, STEP_MS, "the session to end");
      registry.close();
    },
  };
}

/** Whether `promise` has settled by the time already-queued work has run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol("pending");
  return await Promise.race([promise.then(() => true), Promise.resolve(pending)]) !== pending;
}

Deno.test("a client that disconnects while its Proof is verified leaves nothing registered or attached", async () => {
  const held = await heldSession();
  try {
    await held.client.prove();
    await withTimeout(held.proofHeld, STEP_MS, "the host to get the Proof");
    await held.client.close();
    assert.equal(
      reasonName(await withTimeout(held.left, STEP_MS, "the session to close")),
      reasonName(Reason.PeerDisconnected),
    );
    assert.equal(await settled(held.ended), false, "the relay is told only after the verification");
    held.release();
    await withTimeout(held.ended, STEP_MS, "the session to end after its verification");
    assert.equal(held.joined(), false);
    assert.deepEqual(held.registry.list(), [], "nothing registered");
    assert.equal(held.router.onlineCount, 0, "nothing attached");
  } finally {
    await held.close();
  }
});

Deno.test("the handshake time-out fires during a slow verification: HelloTimeout, and nothing registered after", async () => {
  const held = await heldSession(200, false);
  try {
    await held.client.prove();
    await withTimeout(held.proofHeld, STEP_MS, "the host to get the Proof");
    const error = await held.client.expectError(
      Reason.HelloTimeout,
      "the time-out mid-verification",
    );
    assert.match(error.message, /did not complete within 200 ms/);
    held.release();
    await withTimeout(held.ended, STEP_MS, "the session to end");
    assert.equal(held.joined(), false);
    assert.deepEqual(held.registry.list(), []);
    assert.equal(held.router.onlineCount, 0);
  } finally {
    await held.close();
  }
});

Deno.test("a verified Proof opens the session: VirtualIP, joined, and frames now go to the router", async () => {
  const held = await heldSession();
  try {
    await held.client.prove();
    await withTimeout(held.proofHeld, STEP_MS, "the host to get the Proof");
    held.release();
    const address = (await held.client.expect(PacketType.VirtualIP, "VirtualIP")).address;
    assert.equal(held.joined(), true);
    assert.equal(held.registry.get(address)?.online, true);
    await held.client.send({ type: PacketType.Ping, nonce: 9 });
    assert.equal((await held.client.expect(PacketType.Pong, "Pong")).nonce, 9);
  } finally {
    await held.close();
  }
});

Deno.test("a host whose verification rejects (a bug) costs that link Internal, not an unhandled rejection", async () => {
  const held = await heldSession(10_000, true);
  try {
    await held.client.prove();
    await withTimeout(held.proofHeld, STEP_MS, "the host to get the Proof");
    held.release();
    await held.client.expectError(Reason.Internal, "the link of a failed verification");
    await withTimeout(held.ended, STEP_MS, "the session to end");
    assert.equal(held.joined(), false);
  } finally {
    await held.close();
  }
});
