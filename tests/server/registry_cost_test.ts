/**
 * What a join costs the registry, counted in statements and read from the
 * query plans (not timed): the same at 1% and at 99% of the pool, and a
 * refused join on a full pool is as cheap.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { AddressPool } from "../../server/address_pool.ts";
import { PoolExhausted, Registry, type RegistryKey } from "../../server/registry.ts";
import { REGISTRY_SQL } from "../../server/registry_statements.ts";

function ipKey(n: number): RegistryKey {
  return { kind: "ip", realIp: `198.51.100.${n % 256}:${n}` };
}

/** Opens a registry on a fresh file, recording every statement it runs. */
async function withCountedRegistry(
  cidr: string,
  body: (registry: Registry, statements: string[], path: string) => void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cost_" });
  const statements: string[] = [];
  try {
    const path = `${dir}/registry.db`;
    using registry = Registry.open(path, AddressPool.fromCidr(cidr), {
      onStatement: (sql) => statements.push(sql),
    });
    body(registry, statements, path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The statements one call runs. */
function countedCall(statements: string[], call: () => void): string[] {
  statements.length = 0;
  call();
  return [...statements];
}

Deno.test("a join runs the same statements at 1% and at 99% of a /22, and a refused join fewer", async () => {
  await withCountedRegistry("10.20.0.0/22", (registry, statements) => {
    const size = AddressPool.fromCidr("10.20.0.0/22").size;
    const onePercent = Math.ceil(size / 100);
    let joined = 0;
    while (joined < onePercent) registry.assign(ipKey(joined++));
    const early = countedCall(statements, () => registry.assign(ipKey(joined++)));
    assert.ok(early.length <= 8, early.join("\n"));

    const ninetyNinePercent = Math.floor(size * 0.99);
    while (joined < ninetyNinePercent) registry.assign(ipKey(joined++));
    // Every remaining address, down to the very last, costs exactly what the early join did.
    while (joined < size) {
      assert.deepEqual(countedCall(statements, () => registry.assign(ipKey(joined++))), early);
    }
    assert.equal(registry.list().length, size);

    const refused = countedCall(statements, () => {
      assert.throws(() => registry.assign(ipKey(joined)), PoolExhausted);
    });
    assert.ok(refused.length <= early.length, refused.join("\n"));
    // And it stays that cheap, refusal after refusal.
    for (let i = 0; i < 3; i++) {
      const again = countedCall(statements, () => {
        assert.throws(() => registry.assign(ipKey(joined + 1 + i)), PoolExhausted);
      });
      assert.deepEqual(again, refused);
    }
  });
});

Deno.test("no statement of a join, a release or an expiry scans a table", async () => {
  await withCountedRegistry("10.20.0.0/24", (_registry, _statements, path) => {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      for (const [name, sql] of Object.entries(REGISTRY_SQL)) {
        // `clients list` and `tokens list` read every row by design; the relay's id, one row,
        // is read once per open.
        if (["selectAll", "tokens", "relayId"].includes(name)) continue;
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[])
          .map((row) => row.detail);
        const scans = plan.filter((detail) => /^SCAN /.test(detail));
        assert.deepEqual(scans, [], `${name}: ${plan.join("; ")}`);
      }
    } finally {
      db.close();
    }
  });
});

Deno.test("a migrated file whose addresses were picked at random costs each taken address once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cost_" });
  try {
    const path = `${dir}/registry.db`;
    const pool = AddressPool.fromCidr("10.30.0.0/24");
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE clients (
      address INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL CHECK (kind IN ('ip', 'identity')),
      first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
      online INTEGER NOT NULL DEFAULT 0);
      PRAGMA user_version = 2;`);
    const insert = old.prepare("INSERT INTO clients VALUES (?, ?, 'ip', 1, 1, 0)");
    let taken = 0;
    for (let index = 0; index < pool.size; index += 2) {
      insert.run(pool.at(index), `ip:old-${index}`);
      taken++;
    }
    old.close();
    const statements: string[] = [];
    using registry = Registry.open(path, pool, { onStatement: (sql) => statements.push(sql) });
    let joined = 0;
    for (; joined < pool.size - taken; joined++) registry.assign(ipKey(joined));
    assert.throws(() => registry.assign(ipKey(joined)), PoolExhausted);
    const inserts = statements.filter((sql) => sql === REGISTRY_SQL.insert).length;
    // One successful insert per join, and one failed try per address the old file held.
    assert.equal(inserts, joined + taken);
    assert.equal(registry.list().length, pool.size);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("released addresses are reused once the walk has covered the pool", async () => {
  await withCountedRegistry("10.40.0.0/28", (registry) => {
    const pool = AddressPool.fromCidr("10.40.0.0/28");
    const given = Array.from({ length: pool.size }, (_, i) => registry.assign(ipKey(i)));
    assert.throws(() => registry.assign(ipKey(100)), PoolExhausted);
    const freed = [given[3], given[7], given[11]];
    for (const address of freed) assert.equal(registry.release(address), true);
    const reused = [101, 102, 103].map((n) => registry.assign(ipKey(n)));
    assert.deepEqual([...reused].sort((a, b) => a - b), [...freed].sort((a, b) => a - b));
    assert.throws(() => registry.assign(ipKey(104)), PoolExhausted);
  });
});
