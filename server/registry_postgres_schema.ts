/**
 * The PostgreSQL registry's schema, in a schema of its own (`alphanet`):
 * created and migrated by the relay, under a transaction-scoped advisory
 * lock so that relays starting at once migrate one after the other, and
 * recognised by the admin commands, which never change it.
 *
 * @module
 */

import { inTransaction } from "./registry_postgres_tx.ts";
import type postgres from "postgres";
import { AlphaNetError } from "../errors.ts";
import { DB_NOW_MS, RELAY_HEARTBEAT_MS, relayLeaseMs } from "./registry_postgres_heartbeat.ts";
import { RELAY_ID_BYTES } from "./registry_schema.ts";

/** The PostgreSQL schema every table of the registry lives in. */
export const PG_SCHEMA = "alphanet";

/** Bump when the schema changes, and add a step to {@linkcode PG_MIGRATIONS}. */
export const PG_SCHEMA_VERSION = 3;

/**
 * Key of the advisory lock a migration holds for its transaction: "ANET" in
 * ASCII, as SQLite's application id.
 */
const MIGRATION_LOCK = 0x414e4554;

/**
 * Longest a migration's statement waits for a table lock (ms). A schema
 * change queues behind the relays' transactions (each a few ms, at most the
 * 5 s statement time-out), and every join queues behind it while it waits:
 * past this bound it gives up, the relay does not start, and the joins go
 * on. The statements themselves run with no time-out (a step may rewrite a
 * big table), and waiting for another relay's migration (the advisory
 * lock) has no bound either: that relay's steps are bounded by this.
 */
const MIGRATION_LOCK_TIMEOUT_MS = 15_000;

/** A connection, or a transaction on one. */
type Sql = postgres.Sql<{ int8: number }> | postgres.TransactionSql<{ int8: number }>;

/** A step that brings the schema from version `index` to `index + 1`, inside the migration's transaction. */
type Migration = (tx: Sql) => Promise<void>;

const CREATE_TABLES = `
CREATE TABLE alphanet.meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), -- one row
  network_id bytea NOT NULL CHECK (octet_length(network_id) = ${RELAY_ID_BYTES}) -- every Challenge's relay id
);
CREATE TABLE alphanet.clients (
  address bigint PRIMARY KEY CHECK (address BETWEEN 0 AND 4294967295), -- u32 virtual IPv4: no sharing
  key text NOT NULL UNIQUE,     -- "ip:<real ip>", "key:<hex public key>" or "id:<hex sha-256 of a v1 secret>"
  kind text NOT NULL CHECK (kind IN ('ip', 'key', 'secret')),
  first_seen bigint NOT NULL,   -- unix ms
  last_seen bigint NOT NULL,    -- unix ms
  holder text,                  -- node name of the relay holding a live link; NULL: offline
  legacy_tag bytea              -- kind secret: SHA-256 of the 32 hash bytes
);
CREATE UNIQUE INDEX clients_legacy_tag ON alphanet.clients (legacy_tag) WHERE legacy_tag IS NOT NULL;
-- Expiry finds offline clients by age, and a relay its own marks, without reading the others.
CREATE INDEX clients_offline_since ON alphanet.clients (last_seen) WHERE holder IS NULL;
CREATE INDEX clients_holder ON alphanet.clients (holder) WHERE holder IS NOT NULL;
CREATE TABLE alphanet.pool_walks (
  pool text PRIMARY KEY,        -- the pool's ranges: each --vip-range keeps its own walk
  key bytea NOT NULL,           -- secret key of the permutation
  next bigint NOT NULL          -- permutation index of the next fresh address
);
CREATE TABLE alphanet.released (address bigint PRIMARY KEY);
-- Every way a client row goes (release, expiry, an operator's own DELETE) frees its address.
CREATE FUNCTION alphanet.clients_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO alphanet.released (address) VALUES (OLD.address) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER clients_released AFTER DELETE ON alphanet.clients
  FOR EACH ROW EXECUTE FUNCTION alphanet.clients_released();
CREATE TABLE alphanet.join_tokens (
  id text PRIMARY KEY,          -- 16 lowercase hex digits
  public_key bytea NOT NULL,    -- raw Ed25519 public key of the token's seed; never the seed
  uses bigint NOT NULL DEFAULT 0,
  max_uses bigint,              -- NULL: no limit
  expires_at bigint,            -- unix ms; NULL: never
  created_at bigint NOT NULL,   -- unix ms
  revoked_at bigint,            -- unix ms; NULL: usable
  last_used_at bigint           -- unix ms; NULL: never used
);`;

/**
 * Version 2: the relays' heartbeats. An online mark counts only while the
 * relay it names was seen within its lease. Marks written before the
 * upgrade count their relays as seen at the upgrade, for one default lease.
 * (Version 2 as first released also tied `clients.holder` to the relays by
 * a foreign key; version 3 drops it, so an upgrade from version 1 no longer
 * adds it: validating it reads the whole table under a lock that stops
 * every join, and relays of version 1 still running would fail their marks.)
 */
const ADD_RELAYS = `
CREATE TABLE alphanet.relays (
  node text PRIMARY KEY,        -- the relay's node name, as clients.holder carries it
  started_at bigint NOT NULL,   -- unix ms, the database's clock: when this run began
  seen_at bigint NOT NULL,      -- unix ms, the database's clock: its last beat
  lease_ms bigint NOT NULL CHECK (lease_ms > 0) -- it counts as alive until seen_at + lease_ms
);
INSERT INTO alphanet.relays (node, started_at, seen_at, lease_ms)
  SELECT DISTINCT holder, ${DB_NOW_MS}, ${DB_NOW_MS}, ${relayLeaseMs(RELAY_HEARTBEAT_MS)}
  FROM alphanet.clients WHERE holder IS NOT NULL;
-- A relay's clients were seen, at the latest, at its last beat.
CREATE FUNCTION alphanet.relay_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE alphanet.clients SET last_seen = GREATEST(last_seen, OLD.seen_at) WHERE holder = OLD.node;
  RETURN OLD;
END $$;
CREATE TRIGGER relays_gone BEFORE DELETE ON alphanet.relays
  FOR EACH ROW EXECUTE FUNCTION alphanet.relay_gone();`;

/**
 * Version 3: each online mark names its link too (`clients.link`, the id
 * the relay gave the link), and a relay clears a mark only for the same
 * link: a link's offline mark that lands after a newer link's online mark
 * (the pool runs statements on four connections) leaves the newer one.
 * Each run of a relay has an id (`relays.run_id`), and beats only its own
 * row, so two relays under one node name are found out. No foreign key
 * ties a mark to its relay's row (a mark whose relay has no row counts as
 * offline, by a LEFT JOIN): deleting the row clears its marks by the
 * trigger, which sets them offline as seen at the relay's last beat.
 */
const ADD_LINKS_AND_RUNS = `
ALTER TABLE alphanet.clients DROP CONSTRAINT IF EXISTS clients_holder_fkey;
ALTER TABLE alphanet.clients ADD COLUMN link bigint; -- the holder's id of the link; NULL: offline
ALTER TABLE alphanet.relays ADD COLUMN run_id bigint NOT NULL DEFAULT 0; -- 0: a version 2 relay
CREATE OR REPLACE FUNCTION alphanet.relay_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE alphanet.clients SET holder = NULL, link = NULL,
    last_seen = GREATEST(last_seen, OLD.seen_at) WHERE holder = OLD.node;
  RETURN OLD;
END $$;`;

/** Steps that bring the schema from version `index` to `index + 1`. */
export const PG_MIGRATIONS: readonly Migration[] = [
  async (tx) => {
    await tx.unsafe(CREATE_TABLES);
    // The network's id, made once: every relay of the cluster reads this one.
    const id = crypto.getRandomValues(new Uint8Array(RELAY_ID_BYTES));
    await tx`INSERT INTO alphanet.meta (network_id) VALUES (${id})`;
  },
  async (tx) => {
    await tx.unsafe(ADD_RELAYS);
  },
  async (tx) => {
    await tx.unsafe(ADD_LINKS_AND_RUNS);
  },
];

/** The schema version the database holds: 0 when it holds no AlphaNET registry. */
async function schemaVersion(sql: Sql): Promise<number> {
  const [table] = await sql`SELECT to_regclass('alphanet.settings') IS NOT NULL AS present`;
  if (table.present !== true) return 0;
  const [row] = await sql`SELECT value FROM alphanet.settings WHERE name = 'schema_version'`;
  return row === undefined ? 0 : Number(row.value);
}

/**
 * Brings the database's registry to {@linkcode PG_SCHEMA_VERSION}: nothing
 * to do (one read) when it is there; otherwise, in one transaction under an
 * advisory lock, creates the schema and runs the missing steps. Relays that
 * start at once all succeed: the later ones find the work done. Throws
 * {@linkcode AlphaNetError} for a schema newer than this relay's.
 *
 * @param sql The registry's connections.
 * @param where The database, as it may be shown (no password).
 */
export async function migratePostgres(
  sql: postgres.Sql<{ int8: number }>,
  where: string,
): Promise<void> {
  if (checkVersion(await schemaVersion(sql), where) === PG_SCHEMA_VERSION) return;
  await inTransaction(sql, async (tx) => {
    // Not the connection's 5 s: a step may take longer, and another relay may be migrating.
    await tx.unsafe("SET LOCAL statement_timeout = 0");
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx.unsafe(`SET LOCAL lock_timeout = ${MIGRATION_LOCK_TIMEOUT_MS}`);
    await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${PG_SCHEMA}`);
    await tx.unsafe(
      `CREATE TABLE IF NOT EXISTS ${PG_SCHEMA}.settings (name text PRIMARY KEY, value bigint NOT NULL)`,
    );
    const from = checkVersion(await schemaVersion(tx), where);
    for (let step = from; step < PG_SCHEMA_VERSION; step++) await PG_MIGRATIONS[step](tx);
    await tx`INSERT INTO alphanet.settings (name, value) VALUES ('schema_version', ${PG_SCHEMA_VERSION})
      ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`;
  });
}

/**
 * Checks, without changing anything, that the database holds a registry at
 * {@linkcode PG_SCHEMA_VERSION}: what the admin commands open. Throws
 * {@linkcode AlphaNetError} saying what is missing.
 *
 * @param sql The registry's connections.
 * @param where The database, as it may be shown (no password).
 */
export async function expectPostgresSchema(
  sql: postgres.Sql<{ int8: number }>,
  where: string,
): Promise<void> {
  const version = checkVersion(await schemaVersion(sql), where);
  if (version === 0) {
    throw new AlphaNetError(
      `Cannot open registry ${where}: it holds no AlphaNET registry (a relay started with --registry creates it)`,
    );
  }
  if (version < PG_SCHEMA_VERSION) {
    throw new AlphaNetError(
      `Cannot open registry ${where}: schema version ${version} is older than ${PG_SCHEMA_VERSION} (a relay of this version migrates it)`,
    );
  }
}

function checkVersion(version: number, where: string): number {
  if (version > PG_SCHEMA_VERSION) {
    throw new AlphaNetError(
      `Cannot open registry ${where}: schema version ${version} is newer than ${PG_SCHEMA_VERSION}`,
    );
  }
  return version;
}
