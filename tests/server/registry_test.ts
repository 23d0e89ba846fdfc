import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { AddressPool } from "../../server/address_pool.ts";
import { KeyReleased, PoolExhausted, Registry, type RegistryKey } from "../../server/registry.ts";
import { JoinTokenRefused } from "../../server/join_tokens.ts";
import { AlphaNetError, Closed } from "../../errors.ts";
import { decodeBase64Url } from "../../crypto/base64url.ts";
import { tokenIn } from "../_helpers/join_tokens.ts";

function ipKey(n: number): RegistryKey {
  return { kind: "ip", realIp: `198.51.100.${n % 256}:${n}` };
}

/** The key of the public key `fill` × 32. */
function publicKey(fill: number): RegistryKey {
  return { kind: "key", publicKey: new Uint8Array(32).fill(fill) };
}

/** Runs `body` with a fresh temp dir holding the database path, then removes it. */
async function withDbPath(body: (path: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_registry_" });
  try {
    await body(`${dir}/registry.db`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function includes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}

Deno.test("assign gives distinct addresses within the pool", async () => {
  await withDbPath((path) => {
    const pool = AddressPool.default();
    using registry = Registry.open(path, pool);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const address = registry.assign(ipKey(i));
      assert.ok(pool.contains(address));
      seen.add(address);
    }
    assert.equal(seen.size, 200);
  });
});

Deno.test("the same key gets the same address and a newer last_seen", async () => {
  await withDbPath((path) => {
    using registry = Registry.open(path, AddressPool.default());
    const first = registry.assign(ipKey(1), 1000);
    assert.equal(registry.assign(ipKey(1), 2000), first);
    assert.equal(registry.lookup(ipKey(1)), first);
    assert.deepEqual(registry.get(first), {
      address: first,
      kind: "ip",
      firstSeen: 1000,
      lastSeen: 2000,
      online: false,
      publicKey: null,
    });
    assert.equal(registry.lookup(ipKey(2)), null);
  });
});

Deno.test("the same key gets the same address after closing and reopening the file", async () => {
  await withDbPath((path) => {
    const identity = publicKey(7);
    const registry = Registry.open(path, AddressPool.default());
    const byIp = registry.assign(ipKey(7));
    const byIdentity = registry.assign(identity);
    registry.close();
    registry.close(); // idempotent
    assert.throws(() => registry.assign(ipKey(7)), Closed);

    using reopened = Registry.open(path, AddressPool.default());
    assert.equal(reopened.assign(ipKey(7)), byIp);
    assert.equal(reopened.assign(identity), byIdentity);
  });
});

Deno.test("the relay id is 32 random bytes made once per file, and new for every :memory: registry", async () => {
  await withDbPath((path) => {
    const first = Registry.open(path, AddressPool.default());
    const id = first.relayId;
    first.close();
    assert.equal(id.length, 32);
    using again = Registry.open(path, AddressPool.default(), { exclusive: true });
    assert.deepEqual(again.relayId, id);
    using a = Registry.open(":memory:", AddressPool.default());
    using b = Registry.open(":memory:", AddressPool.default());
    assert.notDeepEqual(a.relayId, b.relayId);
    assert.notDeepEqual(a.relayId, id);
  });
});

Deno.test("addresses outside a narrowed pool stay with their clients", async () => {
  await withDbPath((path) => {
    const wide = Registry.open(path, AddressPool.default());
    const address = wide.assign(ipKey(3));
    wide.close();
    using narrow = Registry.open(path, AddressPool.fromCidr("10.9.0.0/29"));
    assert.equal(narrow.assign(ipKey(3)), address);
    assert.ok(AddressPool.fromCidr("10.9.0.0/29").contains(narrow.assign(ipKey(4))));
  });
});

Deno.test("key rows hold the public key as hex, shown as public; ip rows show no key", () => {
  using registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
  const key = publicKey(0xab);
  const address = registry.assign(key, 5);
  assert.equal(registry.lookup({ kind: "key", publicKey: new Uint8Array(32).fill(0xab) }), address);
  assert.deepEqual(registry.get(address), {
    address,
    kind: "key",
    firstSeen: 5,
    lastSeen: 5,
    online: false,
    publicKey: "ab".repeat(32),
  });
  const byIp = registry.assign(ipKey(1));
  assert.equal(registry.get(byIp)?.publicKey, null, "a real IP is never shown");
});

Deno.test("a /29 pool hands out exactly 6 addresses and then throws PoolExhausted", async () => {
  await withDbPath((path) => {
    const pool = AddressPool.fromCidr("10.0.0.0/29");
    using registry = Registry.open(path, pool);
    const addresses = new Set<number>();
    for (let i = 0; i < 6; i++) addresses.add(registry.assign(ipKey(i)));
    assert.equal(addresses.size, 6);
    for (const address of addresses) assert.ok(pool.contains(address));

    assert.throws(() => registry.assign(ipKey(6)), (error: unknown) => {
      assert.ok(error instanceof PoolExhausted);
      assert.ok(error instanceof AlphaNetError);
      assert.equal(error.name, "PoolExhausted");
      return true;
    });
    assert.equal(registry.lookup(ipKey(6)), null);
    // Existing clients are unaffected by the full pool.
    for (let i = 0; i < 6; i++) assert.ok(addresses.has(registry.assign(ipKey(i))));
  });
});

Deno.test("2,000 assigns on a /21 are all distinct despite random collisions", async () => {
  await withDbPath((path) => {
    const pool = AddressPool.fromCidr("10.8.0.0/21");
    using registry = Registry.open(path, pool);
    const addresses = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const address = registry.assign(ipKey(i));
      assert.ok(pool.contains(address));
      addresses.add(address);
    }
    assert.equal(addresses.size, 2000);
    assert.equal(registry.list().length, 2000);
  });
});

Deno.test("release frees an address for reuse", async () => {
  await withDbPath((path) => {
    const pool = AddressPool.fromCidr("10.0.0.0/31");
    using registry = Registry.open(path, pool);
    const a = registry.assign(ipKey(1));
    const b = registry.assign(ipKey(2));
    assert.throws(() => registry.assign(ipKey(3)), PoolExhausted);
    assert.equal(registry.release(a), true);
    assert.equal(registry.release(a), false);
    assert.equal(registry.get(a), null);
    assert.equal(registry.lookup(ipKey(1)), null);
    assert.equal(registry.assign(ipKey(3)), a);
    assert.equal(registry.lookup(ipKey(2)), b);
  });
});

Deno.test("a key admitted as registered but released meanwhile is not registered anew", () => {
  using registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
  const address = registry.assign(ipKey(1));
  assert.equal(registry.assign(ipKey(1), Date.now(), { registered: true }), address);
  // An operator's release between the relay's lookup and its write (another process, in production).
  assert.equal(registry.release(address), true);
  assert.throws(() => registry.assign(ipKey(1), Date.now(), { registered: true }), KeyReleased);
  assert.equal(registry.lookup(ipKey(1)), null, "nothing written: joined again, it is a new key");
});

Deno.test("list and get report clients by address without their keys", () => {
  using registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
  assert.deepEqual(registry.list(), []);
  const a = registry.assign(ipKey(1), 10);
  const b = registry.assign(publicKey(0xab), 20);
  registry.touch(a, 30);
  const expected = [
    { address: a, kind: "ip", firstSeen: 10, lastSeen: 30, online: false, publicKey: null },
    {
      address: b,
      kind: "key",
      firstSeen: 20,
      lastSeen: 20,
      online: false,
      publicKey: "ab".repeat(32),
    },
  ].sort((x, y) => x.address - y.address);
  assert.deepEqual(registry.list(), expected);
  assert.deepEqual(registry.get(b), expected.find((record) => record.address === b));
  assert.equal(registry.get(0x0a000007), null);
});

Deno.test("malformed keys are rejected before touching the database", () => {
  using registry = Registry.open(":memory:", AddressPool.default());
  assert.throws(() => registry.assign({ kind: "ip", realIp: "" }), RangeError);
  assert.throws(
    () => registry.assign({ kind: "key", publicKey: new Uint8Array(31) }),
    RangeError,
  );
  assert.throws(() => registry.lookup({ kind: "key", publicKey: new Uint8Array(33) }), RangeError);
  assert.deepEqual(registry.list(), []);
});

Deno.test("a database from a newer schema version is refused", async () => {
  await withDbPath(async (path) => {
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(() => Registry.open(path, AddressPool.default()), /schema version 99/);
  });
});

Deno.test("a nearly full pool still finds its single free address", async () => {
  await withDbPath((path) => {
    const pool = AddressPool.fromCidr("10.0.0.0/24");
    using registry = Registry.open(path, pool);
    // The last few of these usually need the scan, as random picks collide.
    for (let i = 0; i < pool.size; i++) registry.assign(ipKey(i));
    assert.throws(() => registry.assign(ipKey(1000)), PoolExhausted);
    const gap = pool.at(100);
    assert.equal(registry.release(gap), true);
    // 253 of 254 used: 32 random picks all miss with probability ~88%.
    assert.equal(registry.assign(ipKey(1001)), gap);
  });
});

Deno.test("markOnline and markAllOffline record who is online, for operators", async () => {
  await withDbPath((path) => {
    const registry = Registry.open(path, AddressPool.default());
    const a = registry.assign(ipKey(1), 10);
    const b = registry.assign(ipKey(2), 10);
    registry.markOnline(a, true, 20);
    assert.deepEqual(registry.get(a), {
      address: a,
      kind: "ip",
      firstSeen: 10,
      lastSeen: 20,
      online: true,
      publicKey: null,
    });
    assert.equal(registry.get(b)?.online, false);
    registry.markOnline(a, false, 30);
    assert.deepEqual([registry.get(a)?.online, registry.get(a)?.lastSeen], [false, 30]);
    registry.markOnline(a, true, 40);
    registry.markOnline(b, true, 40);
    registry.markAllOffline();
    assert.deepEqual(registry.list().map((record) => record.online), [false, false]);
    registry.close();
  });
});

Deno.test("a version 1 registry file is migrated in place and keeps every address", async () => {
  await withDbPath((path) => {
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE clients (
      address INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL CHECK (kind IN ('ip', 'identity')),
      first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
      INSERT INTO clients VALUES (16909060, 'ip:192.0.2.9', 'ip', 5, 6);
      PRAGMA user_version = 1;`);
    old.close();
    const registry = Registry.open(path, AddressPool.default());
    assert.equal(registry.lookup({ kind: "ip", realIp: "192.0.2.9" }), 16909060);
    assert.deepEqual(registry.get(16909060), {
      address: 16909060,
      kind: "ip",
      firstSeen: 5,
      lastSeen: 6,
      online: false,
      publicKey: null,
    });
    registry.close();
  });
});

Deno.test("a second exclusive open of a file fails while the first holds it; shared opens still work", async () => {
  await withDbPath((path) => {
    const pool = AddressPool.fromCidr("10.0.0.0/29");
    const first = Registry.open(path, pool, { exclusive: true });
    const address = first.assign(ipKey(1));
    first.markOnline(address, true);
    assert.throws(
      () => Registry.open(path, pool, { exclusive: true }),
      (error: unknown) => {
        assert.ok(error instanceof AlphaNetError);
        assert.match(error.message, /^Cannot open registry .*: another relay holds it/);
        assert.equal(error.message.includes("\n"), false);
        return true;
      },
    );
    // The refused relay changed nothing: the holder's client is still online.
    {
      using admin = Registry.open(path, pool);
      assert.equal(admin.get(address)?.online, true);
      assert.equal(admin.release(address), false, "an online client is never released");
    }
    first.close();
    using second = Registry.open(path, pool, { exclusive: true });
    assert.equal(second.lookup(ipKey(1)), address);
  });
});

Deno.test("another program's SQLite file is refused and left as it was", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["foreign tables", "CREATE TABLE users (id INTEGER, name TEXT);", /tables users/],
    [
      "a clients table of another shape",
      "CREATE TABLE clients (id INTEGER); PRAGMA user_version = 2;",
      /another program's SQLite database/,
    ],
    [
      "our tables but another application id",
      `CREATE TABLE clients (address INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
        online INTEGER NOT NULL DEFAULT 0); PRAGMA user_version = 2;
        PRAGMA application_id = 1234;`,
      /application_id 0x4d2/,
    ],
    ["no tables but a user_version", "PRAGMA user_version = 1;", /no tables, user_version 1/],
  ];
  for (const [name, sql, reason] of cases) {
    await t.step(name, async () => {
      await withDbPath(async (path) => {
        const other = new DatabaseSync(path);
        other.exec(sql);
        other.close();
        const before = await Deno.readFile(path);
        for (const exclusive of [false, true]) {
          assert.throws(
            () => Registry.open(path, AddressPool.default(), { exclusive }),
            (error: unknown) => {
              assert.ok(error instanceof AlphaNetError);
              assert.match(error.message, reason);
              assert.match(error.message, /^Cannot open registry /);
              assert.equal(error.message.includes("\n"), false);
              return true;
            },
          );
        }
        assert.deepEqual(await Deno.readFile(path), before, "the file was changed");
      });
    });
  }
});

Deno.test("a version 2 file gets AlphaNET's application id and keeps every address", async () => {
  await withDbPath((path) => {
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE clients (
      address INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL CHECK (kind IN ('ip', 'identity')),
      first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
      ALTER TABLE clients ADD COLUMN online INTEGER NOT NULL DEFAULT 0;
      INSERT INTO clients VALUES (167772161, 'ip:192.0.2.1', 'ip', 5, 6, 1);
      INSERT INTO clients VALUES (167772162, 'ip:192.0.2.2', 'ip', 7, 8, 0);
      PRAGMA user_version = 2;`);
    old.close();
    const pool = AddressPool.fromCidr("10.0.0.0/30");
    const registry = Registry.open(path, pool);
    assert.equal(registry.lookup({ kind: "ip", realIp: "192.0.2.1" }), 167772161);
    assert.equal(registry.lookup({ kind: "ip", realIp: "192.0.2.2" }), 167772162);
    // Both addresses of the /30 were taken at random before the walk: a new key is refused.
    assert.throws(() => registry.assign(ipKey(9)), PoolExhausted);
    registry.close();
    const db = new DatabaseSync(path, { readOnly: true });
    const pragma = (name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0];
    assert.equal(pragma("application_id"), 0x414e4554);
    assert.equal(pragma("user_version"), 4);
    db.close();
  });
});

Deno.test("release is one statement that refuses an online client", async () => {
  await withDbPath((path) => {
    const statements: string[] = [];
    using registry = Registry.open(path, AddressPool.fromCidr("10.0.0.0/29"), {
      onStatement: (sql) => statements.push(sql),
    });
    const address = registry.assign(ipKey(1));
    registry.markOnline(address, true);
    statements.length = 0;
    assert.equal(registry.release(address), false);
    assert.deepEqual(statements, ["DELETE FROM clients WHERE address = ? AND online = 0"]);
    assert.equal(registry.get(address)?.online, true);
    registry.markOnline(address, false);
    assert.equal(registry.release(address), true);
    assert.equal(registry.get(address), null);
  });
});

Deno.test("an address TTL frees offline clients unseen that long, never online ones", async () => {
  await withDbPath((path) => {
    const DAY = 86_400_000;
    const pool = AddressPool.fromCidr("10.0.0.0/30");
    const registry = Registry.open(path, pool, { exclusive: true, addressTtlMs: DAY });
    const stays = registry.assign(ipKey(1), 0);
    registry.markOnline(stays, true, 0);
    const leaves = registry.assign(ipKey(2), 0);
    assert.equal(registry.addressTtlMs, DAY);
    // The /30 is full; a day later the offline client's address is freed for a newcomer.
    assert.throws(() => registry.assign(ipKey(3), DAY - 1), PoolExhausted);
    assert.equal(registry.assign(ipKey(3), DAY + 2000), leaves);
    registry.markOnline(leaves, true, DAY + 2000);
    assert.equal(registry.lookup(ipKey(2)), null);
    assert.equal(registry.lookup(ipKey(1)), stays, "an online client keeps its address");
    assert.equal(registry.expire(10 * DAY), 0);
    registry.close();
    // A relay started later frees what expired while none ran, and records its TTL.
    const now = Date.now();
    const admin = Registry.open(path, pool);
    admin.markOnline(stays, false, now - DAY / 2);
    admin.close();
    using later = Registry.open(path, pool, { exclusive: true, addressTtlMs: DAY });
    assert.equal(later.lookup(ipKey(1)), stays, "not expired at open: seen half a day ago");
    assert.equal(later.expire(now + DAY), 1);
    assert.equal(later.lookup(ipKey(1)), null);
    using off = Registry.open(path, pool);
    assert.equal(off.addressTtlMs, DAY, "shared opens read the holder's TTL");
  });
});

Deno.test("addresses come in an unpredictable order, not ascending", async () => {
  await withDbPath((path) => {
    const pool = AddressPool.fromCidr("10.0.0.0/22");
    using registry = Registry.open(path, pool);
    const addresses = Array.from({ length: 64 }, (_, i) => registry.assign(ipKey(i)));
    const ascending = addresses.filter((address, i) => i > 0 && address === addresses[i - 1] + 1);
    assert.ok(ascending.length < 8, `${ascending.length} of 63 steps were +1`);
  });
});

Deno.test("assign with online marks the client online in the statement that finds or inserts it", async () => {
  await withDbPath((path) => {
    const statements: string[] = [];
    using registry = Registry.open(path, AddressPool.fromCidr("10.0.0.0/29"), {
      onStatement: (sql) => statements.push(sql),
    });
    const fresh = registry.assign(ipKey(1), 10, { online: true });
    assert.deepEqual(registry.get(fresh), {
      address: fresh,
      kind: "ip",
      firstSeen: 10,
      lastSeen: 10,
      online: true,
      publicKey: null,
    });
    registry.markOnline(fresh, false, 20);
    statements.length = 0;
    assert.equal(registry.assign(ipKey(1), 30, { online: true }), fresh);
    // A known key: one lookup, then one update that both touches and marks online.
    assert.deepEqual(statements, [
      "SELECT address FROM clients WHERE key = ?",
      "UPDATE clients SET last_seen = ?, online = 1 WHERE address = ?",
    ]);
    assert.equal(registry.release(fresh), false, "a joining client is never released");
  });
});

Deno.test("assign gives a new address when an operator released the key's row under it", async () => {
  await withDbPath((path) => {
    using registry = Registry.open(path, AddressPool.fromCidr("10.0.0.0/29"));
    const first = registry.assign(ipKey(1));
    assert.equal(registry.release(first), true);
    const again = registry.assign(ipKey(1), Date.now(), { online: true });
    assert.equal(registry.get(again)?.online, true);
    assert.equal(registry.lookup(ipKey(1)), again);
  });
});

Deno.test("assign with a join token spends one use in the transaction that inserts a new key, none for a known key", async () => {
  using registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
  const token = await tokenIn(registry, { maxUses: 2 });
  const address = registry.assign(publicKey(1), 10, { joinToken: token.id });
  assert.equal(registry.joinToken(token.id)?.uses, 1);
  assert.equal(registry.joinToken(token.id)?.lastUsedAt, 10);
  assert.equal(registry.assign(publicKey(1), 20, { joinToken: token.id }), address);
  assert.equal(registry.joinToken(token.id)?.uses, 1, "a known key spends nothing");
  registry.assign(publicKey(2), 30, { joinToken: token.id });
  assert.equal(registry.joinToken(token.id)?.uses, 2);
});

Deno.test("assign refuses a token that cannot pay (used up, expired, revoked, unknown) and writes nothing", async () => {
  using registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
  const usedUp = await tokenIn(registry, { maxUses: 1 });
  registry.assign(publicKey(1), 10, { joinToken: usedUp.id });
  const expired = await tokenIn(registry, { expiresAt: 100 });
  const revoked = await tokenIn(registry);
  assert.equal(registry.revokeJoinToken(revoked.id, 5), true);
  assert.equal(registry.revokeJoinToken(revoked.id, 6), false, "revoked once");
  const cases: [string, string][] = [
    [usedUp.id, "used-up"],
    [expired.id, "expired"],
    [revoked.id, "invalid"],
    ["0000000000000000", "invalid"],
  ];
  for (const [id, refusal] of cases) {
    assert.throws(
      () => registry.assign(publicKey(9), 100, { joinToken: id }),
      (error: unknown) => error instanceof JoinTokenRefused && error.refusal === refusal,
      id,
    );
  }
  assert.equal(registry.lookup(publicKey(9)), null, "nothing inserted");
  assert.equal(registry.list().length, 1);
  assert.equal(registry.joinToken(expired.id)?.uses, 0);
  // The expiry is exclusive: a token is good until just before it.
  assert.ok(registry.assign(publicKey(9), 99, { joinToken: expired.id }));
});

Deno.test("join tokens are listed oldest first, with every field, and never the secret", async () => {
  await withDbPath(async (path) => {
    const registry = Registry.open(path, AddressPool.default());
    const a = await tokenIn(registry, { maxUses: 3, expiresAt: 1_000 });
    const b = await tokenIn(registry);
    const listed = registry.joinTokens();
    assert.deepEqual(listed.map((token) => token.id).sort(), [a.id, b.id].sort());
    const first = registry.joinToken(a.id)!;
    assert.deepEqual(Object.keys(first).sort(), [
      "createdAt",
      "expiresAt",
      "id",
      "lastUsedAt",
      "maxUses",
      "publicKey",
      "revokedAt",
      "uses",
    ]);
    assert.equal(first.publicKey.length, 32);
    assert.deepEqual([first.uses, first.maxUses, first.expiresAt, first.revokedAt], [
      0,
      3,
      1_000,
      null,
    ]);
    registry.close();
    // The secret, as text or as bytes, is nowhere in the file.
    const text = a.text.split(".")[2];
    const seed = decodeBase64Url(text, 32)!;
    for (const file of [path, `${path}-wal`]) {
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(file);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue;
        throw error;
      }
      assert.equal(includes(bytes, new TextEncoder().encode(text)), false, `${file}: secret text`);
      assert.equal(includes(bytes, seed), false, `${file}: secret bytes`);
    }
  });
});
