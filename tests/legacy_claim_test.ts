/**
 * Version 1 addresses claimed by proof (PROTOCOL.md §5.6), against the real
 * `server.ts` on a registry a version 1 relay wrote (schema 3): the holder
 * of the old secret gets its old address back under the identity derived
 * from it, without the secret crossing the wire; a wrong claim gets
 * InvalidIdentity and leaves the row as it was.
 */

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { resolveCredentials } from "../client/credentials.ts";
import { formatIpv4, PacketType, Reason } from "../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { utf8 } from "./_helpers/bytes.ts";
import { createToken } from "./_helpers/join_tokens.ts";
import { proofFor, rawClient } from "./_helpers/raw_client.ts";
import { runDeno } from "./_helpers/run_deno.ts";
import { SERVER, startLoggedServer } from "./_helpers/server_process.ts";
import { writeV3Registry } from "./fixtures/registry_v3.ts";

const OLD_SECRET = "the old secret of a version 1 client";
const OLD_ADDRESS = 0x2d21_020a; // 45.33.2.10
const OTHER_SECRET = "someone else's version 1 secret";
const OTHER_ADDRESS = 0x2d21_020b;

interface ClientJson {
  virtualIp: string;
  kind: string;
  publicKey: string | null;
}

async function clientsOf(db: string): Promise<Map<string, ClientJson>> {
  const run = await runDeno(["run", "-A", SERVER, "clients", "list", "--db", db, "--json"]);
  assert.equal(run.code, 0, run.stderr);
  return new Map((JSON.parse(run.stdout) as ClientJson[]).map((c) => [c.virtualIp, c]));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Runs `body` with a relay on a schema 3 registry holding two secret rows;
 * returns the relay's log events.
 */
async function withOldRegistry(
  args: string[],
  body: (port: number, db: string) => Promise<void>,
): Promise<Record<string, unknown>[]> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_legacy_" });
  const db = `${dir}/alphanet.db`;
  try {
    await writeV3Registry(db, [
      { address: OLD_ADDRESS, secret: OLD_SECRET },
      { address: OTHER_ADDRESS, secret: OTHER_SECRET },
    ]);
    const server = await startLoggedServer(["--port", "0", "--db", db, ...args]);
    let events: Record<string, unknown>[] = [];
    try {
      await body(server.port, db);
    } finally {
      events = await server.stop();
    }
    return events;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the old secret's holder claims its version 1 address: same address, now keyed on the derived public key", async () => {
  const events = await withOldRegistry([], async (port, db) => {
    const before = await clientsOf(db);
    assert.deepEqual(
      [before.get(formatIpv4(OLD_ADDRESS))?.kind, before.get(formatIpv4(OLD_ADDRESS))?.publicKey],
      ["secret", null],
    );
    const credentials = await resolveCredentials(OLD_SECRET, undefined);
    {
      await using raw = await rawClient(port);
      const proof = await raw.prove(OLD_SECRET);
      assert.ok(proof.legacyClaim !== null, "a secret's Proof carries the claim");
      // Nothing in the Proof is the secret.
      const frame = JSON.stringify(proof, (_, v) => v instanceof Uint8Array ? hex(v) : v);
      assert.equal(frame.includes(hex(utf8(OLD_SECRET))), false);
      const answer = await raw.expect(PacketType.VirtualIP, "the claimed address");
      assert.equal(formatIpv4(answer.address), formatIpv4(OLD_ADDRESS));
    }
    const after = await clientsOf(db);
    const claimed = after.get(formatIpv4(OLD_ADDRESS));
    assert.equal(claimed?.kind, "key");
    assert.equal(claimed?.publicKey, hex(credentials.identity!.publicKey));
    assert.equal(
      after.get(formatIpv4(OTHER_ADDRESS))?.kind,
      "secret",
      "the other row is untouched",
    );

    // Claimed once: the same secret is now a known key, and joins as one (the claim ignored).
    await using again = await rawClient(port);
    assert.equal(await again.handshake(OLD_SECRET), OLD_ADDRESS);
    // The client library does the same for a string identity.
    const net = await withTimeout(
      connect({ port, identity: OTHER_SECRET, reconnect: false }),
      STEP_MS,
      "the client library's claim",
    );
    try {
      assert.equal(net.virtualIp, formatIpv4(OTHER_ADDRESS));
    } finally {
      await net.close();
    }
  });
  // Audit: one line per claim, and never the secret.
  const claims = events.filter((event) => event.event === "legacy-claim");
  assert.deepEqual(claims.map((event) => [event.level, event.vip, event.client]), [
    ["info", formatIpv4(OLD_ADDRESS), "127.0.0.1"],
    ["info", formatIpv4(OTHER_ADDRESS), "127.0.0.1"],
  ]);
  assert.equal(JSON.stringify(events).includes(OLD_SECRET), false);
});

Deno.test("a legacy claim whose HMAC does not verify gets InvalidIdentity and leaves the row a secret row", async () => {
  const events = await withOldRegistry([], async (port, db) => {
    await using raw = await rawClient(port);
    const proof = await proofFor(await raw.greet(), OLD_SECRET);
    proof.legacyClaim!.mac[0] ^= 1;
    await raw.send(proof);
    const error = await raw.expectError(Reason.InvalidIdentity, "a wrong legacy claim");
    assert.match(error.message, /claim of a version 1 address does not verify/);
    const rows = await clientsOf(db);
    assert.equal(rows.get(formatIpv4(OLD_ADDRESS))?.kind, "secret");
    assert.equal(rows.size, 2, "nothing registered");
  });
  const refusals = events.filter((event) => event.event === "refused");
  assert.deepEqual(refusals.map((event) => [event.level, event.reason]), [
    ["warn", "InvalidIdentity"],
  ]);
});

Deno.test("a claim made with another identity's key than the secret's still needs the secret (InvalidIdentity)", async () => {
  await withOldRegistry([], async (port, db) => {
    // A tap knows the tag (it is in every Proof of the secret's holder) but not the secret.
    const credentials = await resolveCredentials(OLD_SECRET, undefined);
    await using raw = await rawClient(port);
    const challenge = await raw.greet();
    const proof = await proofFor(challenge, undefined);
    await raw.send({
      ...proof,
      legacyClaim: { tag: credentials.legacy!.tag, mac: new Uint8Array(32) },
    });
    await raw.expectError(Reason.InvalidIdentity, "a claim without the secret");
    assert.equal((await clientsOf(db)).get(formatIpv4(OLD_ADDRESS))?.kind, "secret");
  });
});

Deno.test("at a --join token relay a legacy claim needs no token; a secret the registry never saw does", async () => {
  await withOldRegistry(["--join", "token"], async (port, db) => {
    await using raw = await rawClient(port);
    assert.equal(await raw.handshake(OLD_SECRET), OLD_ADDRESS);
    await using stranger = await rawClient(port);
    await stranger.prove("a secret no version 1 relay saw");
    await stranger.expectError(Reason.JoinTokenRequired, "an unknown secret at a token relay");
    const token = await createToken(db);
    await using admitted = await rawClient(port);
    const address = await admitted.handshake("a secret no version 1 relay saw", {
      joinToken: token.token,
    });
    assert.ok(address !== OLD_ADDRESS && address !== OTHER_ADDRESS);
  });
});
