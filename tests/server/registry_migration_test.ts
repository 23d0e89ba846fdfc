/**
 * A registry written by a version 1 relay (schema 3) migrated to schema 4:
 * every address kept, identity rows become `secret` rows a legacy claim
 * finds by tag, and the claim re-keys a row to a public key in one statement.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { resolveCredentials } from "../../client/credentials.ts";
import { AddressPool } from "../../server/address_pool.ts";
import { Registry } from "../../server/registry.ts";
import { writeV3Registry } from "../fixtures/registry_v3.ts";

const OLD_SECRET = "the old secret of a version 1 client";

/** Runs `body` with a fresh temp dir holding the database path, then removes it. */
async function withDbPath(body: (path: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_migration_" });
  try {
    await body(`${dir}/registry.db`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function pragma(path: string, name: string): unknown {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0];
  } finally {
    db.close();
  }
}

Deno.test("a schema 3 file migrates to 4: every address kept, identity rows become secret rows tagged for a claim", async () => {
  await withDbPath(async (path) => {
    await writeV3Registry(path, [
      { address: 0x0a00_0001, realIp: "192.0.2.1" },
      { address: 0x0a00_0002, secret: OLD_SECRET, online: true },
      { address: 0x0a00_0003, secret: "another old secret, 16+ bytes" },
    ]);
    const credentials = await resolveCredentials(OLD_SECRET, undefined);
    const tag = credentials.legacy!.tag;
    {
      using registry = Registry.open(path, AddressPool.fromCidr("10.0.0.0/24"));
      assert.deepEqual(
        registry.list().map((record) => [record.address, record.kind, record.publicKey]),
        [[0x0a00_0001, "ip", null], [0x0a00_0002, "secret", null], [0x0a00_0003, "secret", null]],
      );
      assert.equal(registry.lookup({ kind: "ip", realIp: "192.0.2.1" }), 0x0a00_0001);
      const row = registry.secretRow(tag);
      assert.equal(row?.address, 0x0a00_0002);
      // The row's hash is the secret's SHA-256: the key of the claim's HMAC.
      const hash = new Uint8Array(
        await crypto.subtle.digest("SHA-256", new TextEncoder().encode(OLD_SECRET)),
      );
      assert.deepEqual(row?.hash, hash);
      assert.equal(registry.secretRow(new Uint8Array(32)), null);
      assert.equal(registry.relayId.length, 32);
    }
    assert.equal(pragma(path, "user_version"), 4);
    assert.equal(pragma(path, "application_id"), 0x414e4554);
  });
});

Deno.test("a claim re-keys a secret row to the public key in one statement; it cannot be claimed twice", async () => {
  await withDbPath(async (path) => {
    await writeV3Registry(path, [{ address: 0x0a00_0002, secret: OLD_SECRET }]);
    const credentials = await resolveCredentials(OLD_SECRET, undefined);
    const tag = credentials.legacy!.tag;
    const key = { kind: "key", publicKey: credentials.identity!.publicKey } as const;
    const statements: string[] = [];
    using registry = Registry.open(path, AddressPool.fromCidr("10.0.0.0/24"), {
      onStatement: (sql) => statements.push(sql),
    });
    statements.length = 0;
    assert.equal(registry.claimSecretRow(tag, key, 5_000, { online: true }), 0x0a00_0002);
    assert.equal(statements.length, 1, statements.join("\n"));
    assert.equal(registry.lookup(key), 0x0a00_0002);
    const record = registry.get(0x0a00_0002);
    assert.equal(record?.kind, "key");
    assert.equal(record?.online, true);
    assert.equal(record?.lastSeen, 5_000);
    assert.equal(record?.firstSeen, 1_000, "first seen is the version 1 client's");
    assert.equal(registry.secretRow(tag), null, "the claimed row holds no tag any more");
    assert.equal(registry.claimSecretRow(tag, key), null);
  });
});

Deno.test("after the rebuild, releasing a migrated row still frees its address (the trigger is back)", async () => {
  await withDbPath(async (path) => {
    await writeV3Registry(path, [
      { address: 0x0a00_0001, realIp: "192.0.2.1" },
      { address: 0x0a00_0002, realIp: "192.0.2.2" },
    ]);
    using registry = Registry.open(path, AddressPool.fromCidr("10.0.0.0/30")); // 2 addresses
    assert.equal(registry.release(0x0a00_0002), true);
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const released = db.prepare("SELECT address FROM released").all().map((row) => row.address);
      assert.deepEqual(released, [0x0a00_0002], "the trigger recorded the freed address");
    } finally {
      db.close();
    }
    assert.equal(registry.assign({ kind: "ip", realIp: "192.0.2.9" }), 0x0a00_0002);
  });
});
