/**
 * The registry's SQLite schema: how a file is recognised as AlphaNET's, and
 * the migrations that bring an older one up to date in place.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { DatabaseSync } from "node:sqlite";
import { AlphaNetError } from "../errors.ts";
import { bytesOfHex } from "./registry_key.ts";

/**
 * `PRAGMA application_id` of every AlphaNET registry: "ANET" in ASCII. It
 * marks the file as ours, so another program's database is never adopted.
 */
export const APPLICATION_ID = 0x414e4554;

/** Bump when the schema changes, and add a migration to {@linkcode MIGRATIONS}. */
export const SCHEMA_VERSION = 4;

/** Bytes of the relay's id, made once per registry file (see `relay` in the schema). */
export const RELAY_ID_BYTES = 32;

/** A step that brings a database from version `index` to `index + 1`: SQL, or code for what SQL cannot do. */
type Migration = string | ((db: DatabaseSync) => void);

/** Statements that bring a database from version `index` to `index + 1`. */
const MIGRATIONS: readonly Migration[] = [
  `CREATE TABLE IF NOT EXISTS clients (
    address INTEGER PRIMARY KEY, -- u32 virtual IPv4; the key guarantees no sharing
    key TEXT NOT NULL UNIQUE,    -- "ip:<real ip>" or "id:<hex sha-256 of identity>"
    kind TEXT NOT NULL CHECK (kind IN ('ip', 'identity')),
    first_seen INTEGER NOT NULL, -- unix ms
    last_seen INTEGER NOT NULL   -- unix ms
  );`,
  // 1 while a relay holds a live link for the client: lets operators see who is online.
  "ALTER TABLE clients ADD COLUMN online INTEGER NOT NULL DEFAULT 0;",
  // Assignment without a scan: a keyed walk over the pool, then addresses freed since.
  `CREATE TABLE pool_walks (
    pool TEXT PRIMARY KEY,       -- the pool's ranges, so each --vip-range keeps its own walk
    key BLOB NOT NULL,           -- secret key of the permutation
    next INTEGER NOT NULL        -- permutation index of the next fresh address
  );
  CREATE TABLE released (address INTEGER PRIMARY KEY);
  -- Every way a client row goes (release, expiry, an operator's own DELETE) frees its address.
  CREATE TRIGGER clients_released AFTER DELETE ON clients BEGIN
    INSERT OR IGNORE INTO released (address) VALUES (old.address);
  END;
  -- Expiry finds offline clients by age without reading the others.
  CREATE INDEX clients_offline_since ON clients (online, last_seen);
  -- What the relay holding the file runs with, for the admin commands beside it.
  CREATE TABLE settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  migrateToSignedIdentities,
];

/**
 * Version 4, protocol version 2: clients are keyed on Ed25519 public keys
 * (kind `key`); version 1 rows keyed on a secret's hash become kind `secret`
 * and get the tag a legacy claim finds them by; join tokens; the relay's id.
 * SQLite cannot alter a CHECK constraint, so `clients` is rebuilt, its
 * trigger and index dropped first (the trigger would free every address the
 * rebuild deletes) and made again after.
 */
function migrateToSignedIdentities(db: DatabaseSync): void {
  db.exec(`DROP TRIGGER clients_released;
  DROP INDEX clients_offline_since;
  CREATE TABLE clients_v4 (
    address INTEGER PRIMARY KEY, -- u32 virtual IPv4; the key guarantees no sharing
    key TEXT NOT NULL UNIQUE,    -- "ip:<real ip>", "key:<hex public key>" or "id:<hex sha-256 of a v1 secret>"
    kind TEXT NOT NULL CHECK (kind IN ('ip', 'key', 'secret')),
    first_seen INTEGER NOT NULL, -- unix ms
    last_seen INTEGER NOT NULL,  -- unix ms
    online INTEGER NOT NULL DEFAULT 0,
    legacy_tag BLOB              -- kind secret: SHA-256 of the 32 hash bytes; a legacy claim's lookup
  );
  INSERT INTO clients_v4 (address, key, kind, first_seen, last_seen, online)
    SELECT address, key, CASE kind WHEN 'identity' THEN 'secret' ELSE kind END,
      first_seen, last_seen, online FROM clients;
  DROP TABLE clients;
  ALTER TABLE clients_v4 RENAME TO clients;
  CREATE TRIGGER clients_released AFTER DELETE ON clients BEGIN
    INSERT OR IGNORE INTO released (address) VALUES (old.address);
  END;
  CREATE INDEX clients_offline_since ON clients (online, last_seen);
  CREATE UNIQUE INDEX clients_legacy_tag ON clients (legacy_tag) WHERE legacy_tag IS NOT NULL;
  CREATE TABLE join_tokens (
    id TEXT PRIMARY KEY,          -- 16 lowercase hex digits: the public part of the token's text
    public_key BLOB NOT NULL,     -- raw Ed25519 public key of the token's seed; never the seed
    uses INTEGER NOT NULL DEFAULT 0,
    max_uses INTEGER,             -- NULL: no limit
    expires_at INTEGER,           -- unix ms; NULL: never
    created_at INTEGER NOT NULL,  -- unix ms
    revoked_at INTEGER,           -- unix ms; NULL: usable
    last_used_at INTEGER          -- unix ms; NULL: never used
  );
  -- One row: the id every Challenge of a relay on this file carries.
  CREATE TABLE relay (id BLOB NOT NULL);`);
  tagSecretRows(db);
  db.prepare("INSERT INTO relay (id) VALUES (?)").run(
    crypto.getRandomValues(new Uint8Array(RELAY_ID_BYTES)),
  );
}

/** Rows tagged per statement of the migration: memory stays bounded however many rows. */
const TAG_BATCH = 1024;

/**
 * Tags every `secret` row with SHA-256 of its 32 hash bytes (the key text's
 * hex), in JS since SQLite has no SHA-256. A row whose key is not 64
 * lowercase hex digits (no relay wrote one) stays untagged: unclaimable.
 */
function tagSecretRows(db: DatabaseSync): void {
  const select = db.prepare(
    "SELECT address, key FROM clients WHERE kind = 'secret' AND address > ? ORDER BY address LIMIT ?",
  );
  const update = db.prepare("UPDATE clients SET legacy_tag = ? WHERE address = ?");
  let after = -1;
  for (;;) {
    const rows = select.all(after, TAG_BATCH) as { address: number; key: string }[];
    for (const row of rows) {
      const hash = /^id:[0-9a-f]{64}$/.test(row.key) ? bytesOfHex(row.key.slice(3)) : null;
      if (hash !== null) update.run(createHash("sha256").update(hash).digest(), row.address);
    }
    if (rows.length < TAG_BATCH) return;
    after = rows[rows.length - 1].address;
  }
}

/** Columns of the `clients` table of AlphaNET files made before the application id. */
const LEGACY_CLIENT_COLUMNS: Readonly<Record<number, string>> = {
  1: "address,key,kind,first_seen,last_seen",
  2: "address,key,kind,first_seen,last_seen,online",
};

function pragma(db: DatabaseSync, name: "user_version" | "application_id"): number {
  return (db.prepare(`PRAGMA ${name}`).get() as Record<string, number>)[name];
}

/**
 * Recognises the file and brings its schema to {@linkcode SCHEMA_VERSION},
 * in one transaction; throws {@linkcode AlphaNetError} for another program's
 * database or a newer schema, leaving the file untouched.
 *
 * @param db A connection to the file, still in its own journal mode.
 * @param path The file, for error messages.
 */
export function migrateRegistry(db: DatabaseSync, path: string): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const version = pragma(db, "user_version");
    const application = pragma(db, "application_id");
    const from = startingVersion(db, path, version, application);
    for (let step = from; step < SCHEMA_VERSION; step++) {
      const migration = MIGRATIONS[step];
      if (typeof migration === "string") db.exec(migration);
      else migration(db);
    }
    if (from < SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    if (application !== APPLICATION_ID) db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

/** The schema version the file is at, or an error saying why it is not ours to open. */
function startingVersion(
  db: DatabaseSync,
  path: string,
  version: number,
  application: number,
): number {
  if (application !== APPLICATION_ID && application !== 0) {
    throw new AlphaNetError(
      `Cannot open registry ${path}: it is another program's SQLite database (application_id 0x${
        (application >>> 0).toString(16)
      })`,
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new AlphaNetError(
      `Cannot open registry ${path}: schema version ${version} is newer than ${SCHEMA_VERSION}`,
    );
  }
  if (application === APPLICATION_ID) return version;
  const tables = (db.prepare(
    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
  ).all() as { name: string }[]).map((row) => row.name);
  if (tables.length === 0 && version === 0) return 0;
  if (tables.length === 1 && tables[0] === "clients" && version in LEGACY_CLIENT_COLUMNS) {
    const columns = (db.prepare("PRAGMA table_info(clients)").all() as { name: string }[])
      .map((row) => row.name).join(",");
    if (columns === LEGACY_CLIENT_COLUMNS[version]) return version;
  }
  const shown = tables.length === 0 ? "no tables" : `tables ${tables.slice(0, 5).join(", ")}`;
  throw new AlphaNetError(
    `Cannot open registry ${path}: it is another program's SQLite database (${shown}, user_version ${version})`,
  );
}
