/**
 * The relay's side of the version 2 handshake, on the wire (PROTOCOL.md §4):
 * Hello, Challenge, Proof, VirtualIP; and every way a client can break it,
 * each with its own Error, a closed link and nothing registered.
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../client/identity.ts";
import { PacketType, PROTOCOL_VERSION, Reason } from "../protocol/mod.ts";
import { AddressPool } from "../server/address_pool.ts";
import { Registry } from "../server/registry.ts";
import { waitUntil } from "./_helpers/async.ts";
import { utf8 } from "./_helpers/bytes.ts";
import { proofFor, type RawClient, rawClient } from "./_helpers/raw_client.ts";
import { assertRelayServes, startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";

/** Runs `body` on a fresh relay with its registry on a file, then checks the relay still serves. */
async function withRelay(
  body: (relay: TestRelay, raw: RawClient) => Promise<void>,
  options: Parameters<typeof startRelay>[0] = {},
): Promise<void> {
  const relay = await startRelay(options);
  try {
    const raw = await rawClient(relay.port);
    try {
      await body(relay, raw);
    } finally {
      await raw.close();
    }
    await assertRelayServes(relay.port);
  } finally {
    await relay.close();
  }
}

/** How many clients the relay's registry holds, read beside it. */
function registered(relay: TestRelay): number {
  using registry = Registry.open(relay.db, AddressPool.default());
  return registry.list().length;
}

Deno.test("a Hello gets a Challenge with the relay's id, the same on every link, and a nonce no link shares", async () => {
  await withRelay(async (relay, raw) => {
    const first = await raw.greet();
    await using other = await rawClient(relay.port);
    const second = await other.greet();
    assert.equal(first.relayId.length, 32);
    assert.deepEqual(second.relayId, first.relayId);
    assert.notDeepEqual(second.nonce, first.nonce);
    using registry = Registry.open(relay.db, AddressPool.default());
    assert.deepEqual(registry.relayId, first.relayId, "the id lives in the registry");
    const hex = Array.from(first.relayId, (b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(relay.relay.relayId, hex);
  });
});

Deno.test("a Proof answering the Challenge gets VirtualIP; the same identity gets the same address on every link", async () => {
  await withRelay(async (relay, raw) => {
    const identity = await generateIdentity();
    const address = await raw.handshake(identity);
    await raw.close();
    await using again = await rawClient(relay.port);
    assert.equal(await again.handshake(identity), address);
    await using anonymous = await rawClient(relay.port);
    assert.notEqual(await anonymous.handshake(null), address);
    assert.equal(registered(relay), 2);
  });
});

Deno.test("a version 1 Hello, identity secret and all, gets UnsupportedVersion and no Challenge", async () => {
  await withRelay(async (relay, raw) => {
    const secret = utf8("a version 1 identity secret");
    const frame = new Uint8Array(5 + 4 + secret.length);
    const view = new DataView(frame.buffer);
    view.setUint32(0, 4 + secret.length);
    view.setUint8(4, PacketType.Hello);
    view.setUint16(5, 1);
    view.setUint16(7, secret.length);
    frame.set(secret, 9);
    await raw.write(frame);
    const error = await raw.expectError(Reason.UnsupportedVersion, "a version 1 Hello");
    assert.match(error.message, /version 1 is not supported, this relay speaks 2/);
    assert.equal(registered(relay), 0);
  });
});

Deno.test("a Proof whose signature does not verify gets InvalidIdentity, and nothing is registered", async () => {
  await withRelay(async (relay, raw) => {
    const challenge = await raw.greet();
    const proof = await proofFor(challenge, await generateIdentity());
    proof.identity!.signature[10] ^= 0x40;
    await raw.send(proof);
    const error = await raw.expectError(Reason.InvalidIdentity, "a bad signature");
    assert.match(error.message, /signature does not verify/);
    assert.equal(registered(relay), 0);
  });
});

Deno.test("a Proof recorded on another link is worth nothing (InvalidIdentity)", async () => {
  await withRelay(async (relay, raw) => {
    const identity = await generateIdentity();
    await using victim = await rawClient(relay.port);
    const recorded = await proofFor(await victim.greet(), identity);
    await raw.greet();
    await raw.send(recorded);
    await raw.expectError(Reason.InvalidIdentity, "a replayed Proof");
    assert.equal(registered(relay), 0);
  });
});

Deno.test("a frame sent right behind the Proof, before the VirtualIP, is UnexpectedPacket and nothing is registered", async () => {
  await withRelay(async (relay, raw) => {
    const proof = await proofFor(await raw.greet(), await generateIdentity());
    // One write: the relay reads the Ping while it verifies the Proof.
    await raw.send(proof, { type: PacketType.Ping, nonce: 77 });
    const error = await raw.expectError(Reason.UnexpectedPacket, "a Ping while verifying");
    assert.match(error.message, /before your VirtualIP/);
    // A link ends only once its verification is done: then nothing can register any more.
    await waitUntil(() => relay.relay.linkCount === 0, "the relay to end the link");
    assert.equal(registered(relay), 0);
  });
});

Deno.test("after the Hello only a Proof is accepted (UnexpectedPacket)", async (t) => {
  const cases = [
    { type: PacketType.Ping, nonce: 1 },
    { type: PacketType.Hello, version: PROTOCOL_VERSION },
    { type: PacketType.EchoReply, requestId: 1 },
  ] as const;
  for (const packet of cases) {
    await t.step(`0x${packet.type.toString(16)}`, async () => {
      await withRelay(async (relay, raw) => {
        await raw.greet();
        await raw.send(packet);
        const error = await raw.expectError(Reason.UnexpectedPacket, "a frame instead of a Proof");
        assert.match(error.message, /must be Proof/);
        assert.equal(registered(relay), 0);
      });
    });
  }
});

Deno.test("a malformed Proof (a legacy claim without an identity) is Malformed", async () => {
  await withRelay(async (relay, raw) => {
    await raw.greet();
    const body = new Uint8Array(1 + 64);
    body[0] = 0x04;
    const frame = new Uint8Array(5 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length);
    frame[4] = PacketType.Proof;
    frame.set(body, 5);
    await raw.write(frame);
    await raw.expectError(Reason.Malformed, "flags 0x04 alone");
    assert.equal(registered(relay), 0);
  });
});

Deno.test("the handshake time-out covers the Proof: a Hello without a Proof gets HelloTimeout", async () => {
  await withRelay(async (relay, raw) => {
    await raw.greet();
    const error = await raw.expectError(Reason.HelloTimeout, "no Proof after the Hello");
    assert.match(error.message, /handshake did not complete within 300 ms/);
    await waitUntil(() => relay.relay.linkCount === 0, "the relay to drop the link");
  }, { helloTimeoutMs: 300 });
});
