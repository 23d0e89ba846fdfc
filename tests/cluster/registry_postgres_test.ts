/**
 * The PostgreSQL registry (issue 12) against a real private PostgreSQL:
 * stores opened at once, as relays starting together would, share one
 * schema and one network id; they never hand out one address twice; a
 * one-use join token admits exactly one key; online marks belong to the
 * relay that holds the link. Each step works in a database of its own.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { AddressPool } from "../../server/address_pool.ts";
import { JoinTokenRefused } from "../../server/join_tokens.ts";
import { KeyReleased, PoolExhausted } from "../../server/registry.ts";
import { hexOf, type RegistryKey } from "../../server/registry_key.ts";
import { PostgresRegistry } from "../../server/registry_postgres.ts";
import { PG_SCHEMA_VERSION } from "../../server/registry_postgres_schema.ts";
import { MAX_PENDING_CALLS } from "../../server/registry_postgres_pool.ts";
import { RegistryUnavailable } from "../../server/registry_store.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { clusterTest, startPostgres } from "../_helpers/cluster_engines.ts";
import { startFaultProxy } from "../_helpers/fault_proxy.ts";
import { freshDatabase, withSql } from "./_postgres_db.ts";

/** 254 assignable addresses. */
const POOL = AddressPool.fromCidr("10.0.0.0/24");

function ipKey(i: number): RegistryKey {
  return { kind: "ip", realIp: `192.0.2.${i % 256}#${i}` };
}

function publicKey(seed: number): RegistryKey {
  return { kind: "key", publicKey: new Uint8Array(32).fill(seed) };
}

/** Opens `count` stores on `url` at once, one node name each. */
function openStores(url: string, count: number, ttl = 0): Promise<PostgresRegistry[]> {
  return Promise.all(
    Array.from(
      { length: count },
      (_, i) => PostgresRegistry.open(url, POOL, { node: `relay${i}:7000`, addressTtlMs: ttl }),
    ),
  );
}

async function closeAll(stores: readonly PostgresRegistry[]): Promise<void> {
  await Promise.all(stores.map((store) => store.close()));
}

clusterTest("PostgreSQL registry: schema, addresses, tokens, marks, expiry, outage", async (t) => {
  await using pg = await startPostgres();

  await t.step(
    "four stores opening a fresh database at once share one schema and one network id",
    async () => {
      const url = await freshDatabase(pg, "concurrent_schema");
      const stores = await openStores(url, 4);
      try {
        const ids = new Set(stores.map((store) => hexOf(store.relayId)));
        assert.equal(ids.size, 1, "one network id");
        assert.match([...ids][0], /^[0-9a-f]{64}$/);
        const [row] = await withSql(
          url,
          (sql) => sql`SELECT value FROM alphanet.settings WHERE name = 'schema_version'`,
        );
        assert.equal(Number(row.value), PG_SCHEMA_VERSION);
        // A relay opening it later finds the same id and changes nothing.
        const later = await PostgresRegistry.open(url, POOL, { node: "relay9:7000" });
        assert.equal(hexOf(later.relayId), [...ids][0]);
        await later.close();
      } finally {
        await closeAll(stores);
      }
    },
  );

  await t.step(
    "two stores assigning at once never share an address, and a key keeps its address through either",
    async () => {
      const url = await freshDatabase(pg, "assign_race");
      const [a, b] = await openStores(url, 2);
      try {
        const count = 200;
        const addresses = await Promise.all(
          Array.from({ length: count }, (_, i) => (i % 2 === 0 ? a : b).assign(ipKey(i))),
        );
        assert.equal(new Set(addresses).size, count, "no address given twice");
        assert.ok(addresses.every((address) => POOL.contains(address)));
        // Through the other store, at once again: the same address each.
        const again = await Promise.all(
          Array.from({ length: count }, (_, i) => (i % 2 === 0 ? b : a).assign(ipKey(i))),
        );
        assert.deepEqual(again, addresses);
        assert.equal(await b.lookup(ipKey(7)), addresses[7]);
        // The rest of the pool, raced too: every address once, then PoolExhausted.
        const rest = await Promise.allSettled(
          Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).assign(ipKey(count + i))),
        );
        const given = rest.filter((r) => r.status === "fulfilled").map((r) => r.value);
        assert.equal(given.length, POOL.size - count);
        assert.equal(new Set([...addresses, ...given]).size, POOL.size);
        for (const result of rest.filter((r) => r.status === "rejected")) {
          assert.ok(result.reason instanceof PoolExhausted, String(result.reason));
        }
        // A released (offline) address is given again, to one key only.
        assert.equal(await a.release(addresses[0]), true);
        const reuse = await Promise.allSettled([
          a.assign(ipKey(1000)),
          b.assign(ipKey(1001)),
        ]);
        assert.deepEqual(
          reuse.filter((r) => r.status === "fulfilled").map((r) => r.value),
          [addresses[0]],
        );
        assert.equal((await a.list()).length, POOL.size);
      } finally {
        await closeAll([a, b]);
      }
    },
  );

  await t.step(
    "transactions never share a connection: waves of new keys and reads at once, every key assigned",
    async () => {
      // postgres.js 3.4.9's sql.begin() could send BEGIN on a connection it had not reserved when
      // BEGIN filled that connection's pipeline: a few of thousands failed (UNSAFE_TRANSACTION).
      const url = await freshDatabase(pg, "pipelines");
      const pool = AddressPool.fromCidr("10.1.0.0/20");
      const store = await PostgresRegistry.open(url, pool, { node: "busy:7000" });
      try {
        const assigned = new Set<number>();
        for (let wave = 0; wave < 4; wave++) {
          const calls = Array.from({ length: 500 }, (_, i) => {
            const key = ipKey(wave * 500 + i);
            return [store.assign(key), store.lookup(ipKey(i))] as const;
          });
          for (const address of await Promise.all(calls.map(([assign]) => assign))) {
            assigned.add(address);
          }
          await Promise.all(calls.map(([, lookup]) => lookup));
        }
        assert.equal(assigned.size, 2_000);
      } finally {
        await store.close();
      }
    },
  );

  await t.step("a one-use join token raced by two stores admits exactly one key", async () => {
    const url = await freshDatabase(pg, "token_race");
    const [a, b] = await openStores(url, 2);
    try {
      for (let round = 0; round < 10; round++) {
        const id = `00000000000000${round.toString(16).padStart(2, "0")}`;
        await a.createJoinToken({
          id,
          publicKey: new Uint8Array(32).fill(round),
          maxUses: 1,
          expiresAt: null,
        });
        const [first, second] = [publicKey(2 * round + 1), publicKey(2 * round + 2)];
        const results = await Promise.allSettled([
          a.assign(first, Date.now(), { joinToken: id }),
          b.assign(second, Date.now(), { joinToken: id }),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r) => r.status === "rejected");
        assert.equal(won.length, 1, `round ${round}: one winner`);
        assert.ok(lost[0].reason instanceof JoinTokenRefused, String(lost[0].reason));
        assert.equal(lost[0].reason.refusal, "used-up");
        const token = await b.joinToken(id);
        assert.equal(token?.uses, 1);
        // The loser wrote nothing: no row, and the walk gave its step back.
        const loser = results[0].status === "rejected" ? first : second;
        assert.equal(await a.lookup(loser), null);
      }
      assert.equal((await a.list()).length, 10);
      assert.equal((await b.joinTokens()).length, 10);
      assert.equal(await a.revokeJoinToken("0000000000000000"), true);
      assert.equal(await b.revokeJoinToken("0000000000000000"), false);
      await assert.rejects(
        a.assign(publicKey(99), Date.now(), { joinToken: "00000000000000ff" }),
        (error) => error instanceof JoinTokenRefused && error.refusal === "invalid",
      );
    } finally {
      await closeAll([a, b]);
    }
  });

  await t.step(
    "online marks belong to the relay that holds the link; only offline clients are released",
    async () => {
      const url = await freshDatabase(pg, "holders");
      const [a, b] = await openStores(url, 2);
      try {
        const address = await a.assign(publicKey(1), Date.now(), { online: true });
        assert.equal((await b.get(address))?.online, true);
        // The client moves to relay b: a's late offline mark leaves it online.
        assert.equal(await b.assign(publicKey(1), Date.now(), { online: true }), address);
        await a.markOffline(address, 0);
        assert.equal((await a.get(address))?.online, true);
        await a.markAllOffline();
        assert.equal((await a.get(address))?.online, true);
        assert.equal(await a.release(address), false, "online: never released");
        await b.markOffline(address, 0);
        assert.equal((await a.get(address))?.online, false);
        // A known key admitted as registered, released meanwhile: KeyReleased, nothing written.
        assert.equal(await a.release(address), true);
        await assert.rejects(
          b.assign(publicKey(1), Date.now(), { online: true, registered: true }),
          KeyReleased,
        );
        assert.equal(await a.get(address), null);
        // markAllOffline clears this relay's marks only; close() clears them too.
        const mine = await a.assign(publicKey(2), Date.now(), { online: true });
        const theirs = await b.assign(publicKey(3), Date.now(), { online: true });
        await a.markAllOffline();
        assert.equal((await b.get(mine))?.online, false);
        assert.equal((await b.get(theirs))?.online, true);
        const c = await PostgresRegistry.open(url, POOL, { node: "relay2:7000" });
        assert.equal(await c.assign(publicKey(2), Date.now(), { online: true }), mine);
        await c.close();
        assert.equal((await a.get(mine))?.online, false, "a closing relay leaves no marks");
      } finally {
        await closeAll([a, b]);
      }
    },
  );

  await t.step(
    "a link's offline mark that lands after a newer link's online mark leaves the newer one online",
    async () => {
      const url = await freshDatabase(pg, "links");
      const [a] = await openStores(url, 1);
      try {
        // P1 joins through link 1; P2, the same key, joins again through link 2 before P1's
        // offline mark runs (the pool runs statements on four connections, in any order).
        const address = await a.assign(publicKey(1), Date.now(), { online: true, link: 1 });
        assert.equal(
          await a.assign(publicKey(1), Date.now(), { online: true, registered: true, link: 2 }),
          address,
        );
        await a.markOffline(address, 1);
        assert.equal((await a.get(address))?.online, true, "P2 is still online");
        assert.equal(await a.release(address), false, "so its address is never released");
        await a.markOffline(address, 2);
        assert.equal((await a.get(address))?.online, false);
        // Raced: each round, a leaving link's mark and a newer link's join sent at once.
        for (let link = 3; link < 43; link += 2) {
          await Promise.all([
            a.markOffline(address, link - 1),
            a.assign(publicKey(1), Date.now(), { online: true, registered: true, link }),
          ]);
          assert.equal((await a.get(address))?.online, true, `round ${link}`);
          await a.markOffline(address, link);
          // The next round's old link is this one, already cleared: its mark finds nothing.
          await a.assign(publicKey(1), Date.now(), {
            online: true,
            registered: true,
            link: link + 1,
          });
        }
        const [row] = await withSql(
          url,
          (sql) => sql`SELECT holder, link FROM alphanet.clients WHERE address = ${address}`,
        );
        assert.deepEqual([row.holder, Number(row.link)], ["relay0:7000", 42]);
      } finally {
        await a.close();
      }
    },
  );

  await t.step(
    "a version 1 row is claimed once, and offline rows expire after the TTL",
    async () => {
      const url = await freshDatabase(pg, "claims");
      const [a, b] = await openStores(url, 2, 60_000);
      try {
        const hash = new Uint8Array(32).fill(7);
        const tag = createHash("sha256").update(hash).digest();
        await withSql(
          url,
          (sql) =>
            sql`INSERT INTO alphanet.clients (address, key, kind, first_seen, last_seen, legacy_tag)
          VALUES (${167772170}, ${`id:${hexOf(hash)}`}, 'secret', 0, 0, ${tag})`,
        );
        assert.deepEqual(await b.secretRow(tag), { address: 167772170, hash });
        const claims = await Promise.all([
          a.claimSecretRow(tag, publicKey(5), Date.now(), { online: true }),
          b.claimSecretRow(tag, publicKey(6), Date.now(), { online: true }),
        ]);
        assert.deepEqual(
          claims.filter((c) => c !== null),
          [167772170],
          "claimed once",
        );
        assert.equal(await a.secretRow(tag), null);
        assert.equal((await a.get(167772170))?.kind, "key");

        assert.equal(await a.addressTtlMs(), 60_000);
        const now = Date.now();
        const old = await a.assign(ipKey(1), now - 120_000);
        assert.equal(await b.expire(now), 1);
        assert.equal(await a.get(old), null);
        const fresh = await a.assign(ipKey(2), now);
        assert.equal(await b.expire(now), 0);
        assert.notEqual(await a.get(fresh), null);
        // A join checks for expired rows itself.
        const stale = await b.assign(ipKey(3), now - 120_000);
        await b.assign(ipKey(4), now + 2_000);
        assert.equal(await a.get(stale), null);
      } finally {
        await closeAll([a, b]);
      }
    },
  );

  await t.step(
    "a PostgreSQL out of reach fails calls within seconds as RegistryUnavailable, then serves again",
    async () => {
      const url = await freshDatabase(pg, "outage");
      const [a] = await openStores(url, 1);
      try {
        const address = await a.assign(ipKey(1));
        await pg.halt();
        const started = performance.now();
        await assert.rejects(a.lookup(ipKey(1)), RegistryUnavailable);
        await assert.rejects(a.assign(ipKey(2)), RegistryUnavailable);
        assert.ok(performance.now() - started < 8_000, "no hang");
        await assert.rejects(
          PostgresRegistry.open(url, POOL, { node: "relay5:7000" }),
          (error) => error instanceof RegistryUnavailable && !error.message.includes("password"),
        );
        await pg.resume();
        assert.equal(await a.lookup(ipKey(1)), address);
        assert.notEqual(await a.assign(ipKey(2)), address);
      } finally {
        await a.close();
      }
    },
  );

  await t.step(
    "a PostgreSQL gone silent: each call fails at its deadline, the connections are made anew, waiting calls are capped",
    async () => {
      const url = await freshDatabase(pg, "silent");
      await using proxy = startFaultProxy(pg.port);
      const viaProxy = url.replace(`:${pg.port}/`, `:${proxy.port}/`);
      const deadlineMs = 500;
      const a = await PostgresRegistry.open(viaProxy, POOL, { node: "relay0:7000", deadlineMs });
      try {
        const address = await a.assign(ipKey(1));
        proxy.freeze();
        const started = performance.now();
        await assert.rejects(a.lookup(ipKey(1)), /did not answer within 500 ms/);
        assert.ok(performance.now() - started < deadlineMs + 1_000);
        // The connections were thrown away: the next call dials a new one (silent too).
        const accepted = proxy.accepted;
        await assert.rejects(a.lookup(ipKey(1)), RegistryUnavailable);
        await withTimeout(
          (async () => {
            while (proxy.accepted === accepted) await new Promise((r) => setTimeout(r, 10));
          })(),
          STEP_MS,
          "a new connection",
        );
        proxy.thaw();
        assert.equal(await a.lookup(ipKey(1)), address, "the next call works at once");
      } finally {
        await a.close();
      }

      // With a long deadline, calls queue behind a silent database up to the cap; past it they
      // fail at once.
      const b = await PostgresRegistry.open(viaProxy, POOL, { node: "relay1:7000" });
      try {
        await b.lookup(ipKey(1));
        proxy.freeze();
        const waiting = Array.from({ length: MAX_PENDING_CALLS }, (_, i) => b.lookup(ipKey(i)));
        const settled = Promise.allSettled(waiting);
        const started = performance.now();
        await assert.rejects(b.lookup(ipKey(0)), /registry calls are waiting already/);
        assert.ok(performance.now() - started < 100, "refused at once");
        const closing = performance.now();
        await b.close();
        assert.ok(performance.now() - closing < 10_000, "close() is bounded");
        for (const result of await settled) {
          assert.equal(result.status, "rejected");
          assert.ok(result.reason instanceof RegistryUnavailable, String(result.reason));
        }
      } finally {
        proxy.thaw();
        await b.close();
      }
    },
  );
});
