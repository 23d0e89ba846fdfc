/**
 * Relays' heartbeats in the PostgreSQL registry: an online mark counts only
 * while its relay beats. A process holding a relay's store killed with
 * SIGKILL leaves its clients online for one lease, then offline: they can
 * be released, expire, or come back through another relay. A relay whose
 * beats fail logs it once and again on recovery, never throws. A version 1
 * schema is upgraded in place. Short heartbeat intervals keep each wait
 * under a second.
 */

import assert from "node:assert/strict";
import { AddressPool } from "../../server/address_pool.ts";
import type { LogLevel } from "../../server/config.ts";
import { Logger } from "../../server/log.ts";
import type { RegistryKey } from "../../server/registry_key.ts";
import { PostgresRegistry } from "../../server/registry_postgres.ts";
import {
  NodeTaken,
  RELAY_HEARTBEAT_MS,
  RELAY_LEASE_BEATS,
} from "../../server/registry_postgres_heartbeat.ts";
import { STATEMENT_TIMEOUT_MS } from "../../server/registry_postgres_pool.ts";
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from "../../server/registry_postgres_schema.ts";
import { delay, STEP_MS, withTimeout } from "../_helpers/async.ts";
import { clusterTest, startPostgres } from "../_helpers/cluster_engines.ts";
import { freshDatabase, withSql } from "./_postgres_db.ts";

const POOL = AddressPool.fromCidr("10.0.0.0/24");
/** The beat interval of the relays these tests start: a lease of 300 ms. */
const BEAT_MS = 100;
const LEASE_MS = RELAY_LEASE_BEATS * BEAT_MS;
/** The grace after a lapsed lease of the stores that free addresses here. */
const GRACE_MS = 500;
const ROOT = new URL("../../", import.meta.url);

function publicKey(seed: number): RegistryKey {
  return { kind: "key", publicKey: new Uint8Array(32).fill(seed) };
}

/** Polls `condition` every 10 ms until it holds; fails after `ms`. */
async function until(
  condition: () => Promise<boolean>,
  what: string,
  ms = STEP_MS,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${ms} ms: ${what}`);
    await delay(10);
  }
}

async function online(store: PostgresRegistry, address: number): Promise<boolean | undefined> {
  return (await store.get(address))?.online;
}

/** A logger that keeps what it is given, for the tests to read. */
class KeptLog extends Logger {
  readonly lines: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  constructor() {
    super("debug");
  }
  override log(
    level: Exclude<LogLevel, "silent">,
    event: string,
    fields: Record<string, unknown> = {},
  ): void {
    this.lines.push({ level, event, fields });
  }
}

/**
 * A relay's store in a process of its own (node `node`, beating every
 * BEAT_MS), which marks three clients online, prints their addresses and
 * beats until it is killed.
 */
/** A relay process started by {@linkcode startDoomedRelay}. */
interface DoomedRelay {
  /** The addresses of its three online clients. */
  readonly addresses: number[];
  /** Kills it with SIGKILL and waits for its end. */
  kill(): Promise<void>;
}

async function startDoomedRelay(url: string, node: string): Promise<DoomedRelay> {
  const code = `
    import { AddressPool } from "${new URL("server/address_pool.ts", ROOT)}";
    import { PostgresRegistry } from "${new URL("server/registry_postgres.ts", ROOT)}";
    const store = await PostgresRegistry.open(${JSON.stringify(url)},
      AddressPool.fromCidr("10.0.0.0/24"), { node: ${
    JSON.stringify(node)
  }, heartbeatMs: ${BEAT_MS} });
    const addresses = [];
    for (let seed = 1; seed <= 3; seed++) {
      const key = { kind: "key", publicKey: new Uint8Array(32).fill(seed) };
      addresses.push(await store.assign(key, Date.now(), { online: true }));
    }
    console.log(JSON.stringify(addresses));
    await new Promise(() => {}); // beats until killed
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", new URL("deno.json", ROOT).pathname, code],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    await withTimeout(
      (async () => {
        while (!text.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the relay process ended: ${text}`);
          text += value;
        }
      })(),
      30_000,
      "the relay process to mark its clients",
    );
  } catch (error) {
    child.kill("SIGKILL");
    await reader.cancel();
    await child.status;
    throw error;
  }
  return {
    addresses: JSON.parse(text) as number[],
    async kill(): Promise<void> {
      child.kill("SIGKILL");
      await reader.cancel();
      assert.equal((await child.status).signal, "SIGKILL");
    },
  };
}

clusterTest("PostgreSQL registry: relays' heartbeats decide who is online", async (t) => {
  await using pg = await startPostgres();

  await t.step(
    "a relay killed with SIGKILL: its clients show offline after its lease, then are released, expire or come back",
    async () => {
      const url = await freshDatabase(pg, "killed");
      const doomed = await startDoomedRelay(url, "doomed:7000");
      const observer = await PostgresRegistry.open(url, POOL, { migrate: false });
      const other = await PostgresRegistry.open(url, POOL, {
        node: "other:7000",
        heartbeatMs: BEAT_MS,
        addressTtlMs: 60_000,
        lapsedGraceMs: GRACE_MS,
      });
      try {
        const [first, second, third] = doomed.addresses;
        const [relay] = await withSql(
          url,
          (sql) =>
            sql`SELECT lease_ms, started_at, seen_at FROM alphanet.relays
            WHERE node = 'doomed:7000'`,
        );
        assert.equal(Number(relay.lease_ms), LEASE_MS);
        // Beating: still online several leases after it marked them.
        await until(
          () =>
            withSql(url, async (sql) => {
              const [row] = await sql`SELECT seen_at FROM alphanet.relays
                WHERE node = 'doomed:7000'`;
              return Number(row.seen_at) > Number(relay.seen_at) + 2 * LEASE_MS;
            }),
          "the relay to beat through two leases",
        );
        for (const address of doomed.addresses) assert.equal(await online(observer, address), true);
        assert.equal(await observer.release(first), false, "online: never released");

        await doomed.kill();
        const killed = performance.now();
        await until(async () => (await online(observer, first)) === false, "offline after lease");
        const waited = performance.now() - killed;
        assert.ok(waited < LEASE_MS + 2_000, `offline ${waited} ms after the kill`);
        assert.deepEqual(
          (await observer.list()).map((client) => client.online),
          [false, false, false],
        );
        // Last seen at the dead relay's last beat, as expiry counts it.
        const [beat] = await withSql(
          url,
          (sql) => sql`SELECT seen_at FROM alphanet.relays WHERE node = 'doomed:7000'`,
        );
        assert.equal((await observer.get(second))?.lastSeen, Number(beat.seen_at));

        // Offline, but its address is still its own for the grace (the relay may be cut off only).
        assert.equal(await observer.release(first), false, "kept for LAPSED_GRACE_MS");
        await withSql(
          url,
          (sql) => sql`UPDATE alphanet.clients SET last_seen = 0 WHERE address = ${third}`,
        );
        await until(() => other.release(first), "released once the grace is over", 4 * STEP_MS);
        assert.equal(await observer.get(first), null);
        // Back through another relay: online there, the same address.
        assert.equal(await other.assign(publicKey(2), Date.now(), { online: true }), second);
        assert.equal(await online(observer, second), true);
        // Expiry frees the dead relay's client once unseen for the TTL, never the live one's;
        // seen at its relay's last beat, a client online for longer than the TTL is kept.
        assert.equal(await other.expire(Date.now()), 0);
        assert.equal(await other.expire(Date.now() + 120_000), 1);
        assert.equal(await observer.get(third), null);
        assert.equal(await online(observer, second), true);

        // The killed node starting again takes its row over; a clean close deletes it.
        const again = await PostgresRegistry.open(url, POOL, {
          node: "doomed:7000",
          heartbeatMs: BEAT_MS,
        });
        const [restarted] = await withSql(
          url,
          (sql) => sql`SELECT started_at FROM alphanet.relays WHERE node = 'doomed:7000'`,
        );
        assert.ok(Number(restarted.started_at) > Number(relay.started_at));
        assert.equal(await again.assign(publicKey(2), Date.now(), { online: true }), second);
        await again.close();
        assert.equal(await online(observer, second), false, "a closing relay leaves no marks");
        const nodes = await withSql(url, (sql) => sql`SELECT node FROM alphanet.relays`);
        assert.deepEqual(nodes.map((row) => row.node), ["other:7000"]);
      } finally {
        await doomed.kill().catch(() => {});
        await other.close();
        await observer.close();
      }
    },
  );

  await t.step(
    "failed beats are logged once, never thrown, and the recovery says the lease lapsed",
    async () => {
      const url = await freshDatabase(pg, "flaky");
      const log = new KeptLog();
      const flaky = await PostgresRegistry.open(url, POOL, {
        node: "flaky:7000",
        heartbeatMs: BEAT_MS,
        log,
      });
      const observer = await PostgresRegistry.open(url, POOL, { migrate: false });
      try {
        const address = await flaky.assign(publicKey(1), Date.now(), { online: true });
        // Every beat of this relay fails from now on, the database serving everyone else.
        await withSql(url, (sql) =>
          sql.unsafe(`
          CREATE FUNCTION alphanet.refuse_beat() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'beat refused'; END $$;
          CREATE TRIGGER refuse_beat BEFORE UPDATE ON alphanet.relays
            FOR EACH ROW EXECUTE FUNCTION alphanet.refuse_beat();`));
        await until(async () => (await online(observer, address)) === false, "the lease to lapse");
        await until(
          () => Promise.resolve(log.lines.length > 0),
          "the failure to be logged",
        );
        await withSql(url, (sql) => sql`DROP TRIGGER refuse_beat ON alphanet.relays`);
        await until(async () => (await online(observer, address)) === true, "online again");
        await until(
          () => Promise.resolve(log.lines.some((l) => l.event === "registry-heartbeat-restored")),
          "the recovery to be logged",
        );
        const [failed, restored] = log.lines;
        assert.equal(log.lines.length, 2, JSON.stringify(log.lines));
        assert.equal(failed.level, "warn");
        assert.equal(failed.event, "registry-heartbeat-failed");
        assert.equal(failed.fields.failures, 1);
        assert.equal(failed.fields.error, "P0001");
        assert.equal(failed.fields.node, "flaky:7000");
        // Lapsed by the database's clock, which the observer saw: the same verdict, whatever the timers.
        assert.equal(restored.level, "warn", "the lease lapsed");
        assert.ok(Number(restored.fields.failures) >= 1, JSON.stringify(restored.fields));
        assert.ok(Number(restored.fields.downMs) > 0);
        assert.match(String(restored.fields.note), /lease lapsed/);
        // An operator deleting a live relay's row frees its marks; its next beat writes the row
        // again (same run), and its next join marks the client online again.
        await withSql(url, (sql) => sql`DELETE FROM alphanet.relays WHERE node = 'flaky:7000'`);
        assert.equal(await online(observer, address), false);
        assert.notEqual(await flaky.assign(publicKey(2), Date.now(), { online: true }), address);
        assert.equal(await flaky.assign(publicKey(1), Date.now(), { online: true }), address);
        await until(async () => (await online(observer, address)) === true, "online again");
      } finally {
        await flaky.close();
        await observer.close();
      }
    },
  );

  await t.step(
    "a version 1 registry is upgraded in place: data kept, old marks online for one lease",
    async () => {
      const url = await freshDatabase(pg, "upgrade");
      // The schema as a relay of version 1 left it, with a client online and one offline.
      const networkId = await withSql(url, (sql) =>
        sql.begin(async (tx) => {
          await tx`CREATE SCHEMA alphanet`;
          await tx`CREATE TABLE alphanet.settings (name text PRIMARY KEY, value bigint NOT NULL)`;
          // deno-lint-ignore no-explicit-any
          await PG_MIGRATIONS[0](tx as any);
          await tx`INSERT INTO alphanet.settings VALUES ('schema_version', 1)`;
          await tx`INSERT INTO alphanet.clients (address, key, kind, first_seen, last_seen, holder)
            VALUES (167772161, 'ip:192.0.2.1', 'ip', 1, 2, 'old:7000'),
                   (167772162, 'ip:192.0.2.2', 'ip', 3, 4, NULL)`;
          const [meta] = await tx`SELECT network_id FROM alphanet.meta`;
          return new Uint8Array(meta.network_id);
        }));
      await assert.rejects(
        PostgresRegistry.open(url, POOL, { migrate: false }),
        /schema version 1 is older than 3/,
      );
      assert.equal(PG_SCHEMA_VERSION, 3);
      const relay = await PostgresRegistry.open(url, POOL, {
        node: "new:7000",
        heartbeatMs: BEAT_MS,
      });
      try {
        assert.deepEqual(relay.relayId, networkId);
        const [version] = await withSql(
          url,
          (sql) => sql`SELECT value FROM alphanet.settings WHERE name = 'schema_version'`,
        );
        assert.equal(Number(version.value), 3);
        assert.deepEqual(
          (await relay.list()).map((c) => [c.address, c.online, c.firstSeen, c.lastSeen]),
          [[167772161, true, 1, 2], [167772162, false, 3, 4]],
        );
        assert.equal(await relay.lookup({ kind: "ip", realIp: "192.0.2.1" }), 167772161);
        const [old] = await withSql(
          url,
          (sql) => sql`SELECT lease_ms FROM alphanet.relays WHERE node = 'old:7000'`,
        );
        assert.equal(Number(old.lease_ms), RELAY_LEASE_BEATS * RELAY_HEARTBEAT_MS);
        // No foreign key: a mark naming a relay with no row is taken (as a relay of version 1
        // still running writes them) and counts as offline.
        await withSql(
          url,
          (sql) => sql`UPDATE alphanet.clients SET holder = 'nobody:1' WHERE address = 167772162`,
        );
        assert.equal((await relay.get(167772162))?.online, false);
        // The operator forgets the old relay at once instead of waiting out its lease.
        await withSql(url, (sql) => sql`DELETE FROM alphanet.relays WHERE node = 'old:7000'`);
        const freed = await relay.get(167772161);
        assert.equal(freed?.online, false);
        assert.ok(freed!.lastSeen > 2, "last seen at the old relay's last beat");
        assert.equal(await relay.release(167772161), true);
      } finally {
        await relay.close();
      }
    },
  );

  await t.step(
    "a version 2 registry is upgraded to 3: the foreign key on holder dropped, the data kept",
    async () => {
      const url = await freshDatabase(pg, "upgrade2");
      await withSql(url, (sql) =>
        sql.begin(async (tx) => {
          await tx`CREATE SCHEMA alphanet`;
          await tx`CREATE TABLE alphanet.settings (name text PRIMARY KEY, value bigint NOT NULL)`;
          // deno-lint-ignore no-explicit-any
          for (const step of PG_MIGRATIONS.slice(0, 2)) await step(tx as any);
          // As version 2 was first released: the marks tied to the relays by a foreign key.
          await tx`ALTER TABLE alphanet.clients ADD CONSTRAINT clients_holder_fkey
            FOREIGN KEY (holder) REFERENCES alphanet.relays (node) ON DELETE SET NULL`;
          await tx`INSERT INTO alphanet.settings VALUES ('schema_version', 2)`;
          await tx`INSERT INTO alphanet.relays (node, started_at, seen_at, lease_ms)
            VALUES ('old:7000', 1, 1, 15000)`;
          await tx`INSERT INTO alphanet.clients (address, key, kind, first_seen, last_seen, holder)
            VALUES (167772161, 'ip:192.0.2.1', 'ip', 1, 2, 'old:7000')`;
        }));
      const relay = await PostgresRegistry.open(url, POOL, {
        node: "new:7000",
        heartbeatMs: BEAT_MS,
      });
      try {
        const constraints = await withSql(
          url,
          (sql) => sql`SELECT conname FROM pg_constraint WHERE conname = 'clients_holder_fkey'`,
        );
        assert.equal(constraints.length, 0);
        const [record] = await relay.list();
        assert.deepEqual([record.address, record.online], [167772161, false]);
        const [row] = await withSql(
          url,
          (sql) => sql`SELECT run_id FROM alphanet.relays WHERE node = 'old:7000'`,
        );
        assert.equal(Number(row.run_id), 0, "a version 2 relay's row: run 0");
      } finally {
        await relay.close();
      }
    },
  );

  await t.step(
    "a relay refuses to start under a node name another running relay beats under; one restarted at once after a kill waits out the dead run's lease",
    async () => {
      const url = await freshDatabase(pg, "names");
      const running = await PostgresRegistry.open(url, POOL, {
        node: "same:7000",
        heartbeatMs: BEAT_MS,
      });
      try {
        const log = new KeptLog();
        await assert.rejects(
          PostgresRegistry.open(url, POOL, { node: "same:7000", heartbeatMs: BEAT_MS, log }),
          (error) =>
            error instanceof NodeTaken &&
            /another running relay beats under the node name same:7000/.test(error.message),
        );
        assert.deepEqual(log.lines.map((line) => line.event), ["registry-node-wait"]);
        // The running relay kept its row and its marks.
        const address = await running.assign(publicKey(1), Date.now(), { online: true });
        assert.equal((await running.get(address))?.online, true);
      } finally {
        await running.close();
      }
      const doomed = await startDoomedRelay(url, "again:7000");
      await doomed.kill();
      const restarted = performance.now();
      const again = await PostgresRegistry.open(url, POOL, {
        node: "again:7000",
        heartbeatMs: BEAT_MS,
      });
      try {
        assert.ok(performance.now() - restarted < LEASE_MS + 2_000);
        // The dead run's marks were cleared when its row was taken over.
        for (const address of doomed.addresses) {
          assert.equal((await again.get(address))?.online, false);
        }
      } finally {
        await again.close();
      }
    },
  );

  await t.step(
    "a migration waiting on another relay's longer than the statement time-out still runs",
    async () => {
      const url = await freshDatabase(pg, "slow_migration");
      // Another relay migrating: the advisory lock held past the connections' 5 s statement time-out.
      const held = Promise.withResolvers<void>();
      const locked = Promise.withResolvers<void>();
      const holder = withSql(url, (sql) =>
        sql.begin(async (tx) => {
          await tx`SELECT pg_advisory_xact_lock(${0x414e4554})`;
          locked.resolve();
          await held.promise;
        }));
      await locked.promise;
      const opening = PostgresRegistry.open(url, POOL, { node: "late:7000", heartbeatMs: BEAT_MS });
      await until(
        () =>
          withSql(url, async (sql) => {
            const [row] = await sql`SELECT count(*)::int AS waiting FROM pg_stat_activity
              WHERE wait_event = 'advisory' AND application_name = 'alphanet-relay late:7000'`;
            return row.waiting > 0;
          }),
        "the migration to wait on the lock",
      );
      const timer = setTimeout(() => held.resolve(), STATEMENT_TIMEOUT_MS + 1_000);
      try {
        const store = await opening;
        await store.close();
      } finally {
        clearTimeout(timer);
        held.resolve();
        await holder;
      }
      const [row] = await withSql(
        url,
        (sql) => sql`SELECT value FROM alphanet.settings WHERE name = 'schema_version'`,
      );
      assert.equal(Number(row.value), PG_SCHEMA_VERSION);
    },
  );
});
