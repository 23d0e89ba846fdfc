/**
 * The persistent client registry: which client owns which virtual IPv4,
 * kept in SQLite so an address stays with its client across restarts.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { AlphaNetError, Closed } from "../errors.ts";
import type { AddressPool } from "./address_pool.ts";

/** Bump when the schema changes, and add a migration in `#migrate`. */
const SCHEMA_VERSION = 2;

/** Statements that bring a database from version `index` to `index + 1`. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS clients (
    address INTEGER PRIMARY KEY, -- u32 virtual IPv4; the key guarantees no sharing
    key TEXT NOT NULL UNIQUE,    -- "ip:<real ip>" or "id:<hex sha-256 of identity>"
    kind TEXT NOT NULL CHECK (kind IN ('ip', 'identity')),
    first_seen INTEGER NOT NULL, -- unix ms
    last_seen INTEGER NOT NULL   -- unix ms
  );`,
  // 1 while a relay holds a live link for the client: lets operators see who is online.
  "ALTER TABLE clients ADD COLUMN online INTEGER NOT NULL DEFAULT 0;",
];

/** Random picks before falling back to a scan; a full scan is O(used addresses). */
const RANDOM_TRIES = 32;

// node:sqlite reports constraint failures from prepared statements as
// code "ERR_SQLITE_ERROR" with the extended result code in `errcode`.
// db.exec() errors carry no errcode, which is why inserts are prepared.
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;

/**
 * What identifies a client: its real IP, or the SHA-256 of the identity
 * secret it presents (see {@linkcode identityKey}).
 */
export type RegistryKey =
  | { kind: "ip"; realIp: string }
  | { kind: "identity"; identityHash: string };

/** A registered client. The key is deliberately not exposed. */
export interface ClientRecord {
  /** The client's permanent virtual IPv4 as a u32. */
  address: number;
  /** How the client is identified. */
  kind: "ip" | "identity";
  /** When the address was assigned, in unix ms. */
  firstSeen: number;
  /** When the client was last seen, in unix ms. */
  lastSeen: number;
  /** Whether a relay holds a live link for it now. */
  online: boolean;
}

/** A row as SQLite returns it: a null prototype and `online` as 0 or 1. */
type ClientRow = Omit<ClientRecord, "online"> & { online: number };

function toRecord(row: ClientRow): ClientRecord {
  return { ...row, online: row.online === 1 };
}

/**
 * Every address of the pool is taken, so a new client cannot get one.
 *
 * @example
 * ```ts
 * import { PoolExhausted } from "./registry.ts";
 * console.log(new PoolExhausted("Cannot assign: pool is full").name);
 * ```
 */
export class PoolExhausted extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolExhausted";
  }
}

/**
 * Hashes an identity secret into a registry key, so the secret itself is
 * never stored.
 *
 * @example
 * ```ts
 * import { identityKey } from "./registry.ts";
 * const key = identityKey(new Uint8Array(32));
 * console.log(key.kind); // "identity"
 * ```
 */
export function identityKey(identity: Uint8Array): RegistryKey {
  // Synchronous on purpose: the handshake then completes in the read loop's turn, so frames
  // pipelined behind Hello are handled in order, and a join leaves no promise behind.
  return { kind: "identity", identityHash: createHash("sha256").update(identity).digest("hex") };
}

/** The stored text form of a key; the prefix keeps the two kinds apart. */
function keyText(key: RegistryKey): string {
  if (key.kind === "ip") {
    if (key.realIp === "") throw new RangeError("Cannot use registry key: realIp is empty");
    return `ip:${key.realIp}`;
  }
  if (!/^[0-9a-f]{64}$/.test(key.identityHash)) {
    throw new RangeError("Cannot use registry key: identityHash is not lowercase SHA-256 hex");
  }
  return `id:${key.identityHash}`;
}

/** Uniform random integer in `[0, size)`, `size` ≤ 2^32, without modulo bias. */
function randomIndex(size: number): number {
  const word = new Uint32Array(1);
  const limit = 2 ** 32 - (2 ** 32 % size);
  for (;;) {
    crypto.getRandomValues(word);
    if (word[0] < limit) return word[0] % size;
  }
}

function constraintCode(error: unknown): number | null {
  if (!(error instanceof Error) || !("errcode" in error)) return null;
  const { errcode } = error as { errcode: unknown };
  return errcode === SQLITE_CONSTRAINT_PRIMARYKEY || errcode === SQLITE_CONSTRAINT_UNIQUE
    ? errcode
    : null;
}

/**
 * Maps client keys to permanent virtual IPv4 addresses in a SQLite file.
 *
 * @example
 * ```ts
 * import { AddressPool } from "./address_pool.ts";
 * import { Registry } from "./registry.ts";
 * using registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
 * const address = registry.assign({ kind: "ip", realIp: "192.0.2.7" });
 * console.log(registry.lookup({ kind: "ip", realIp: "192.0.2.7" }) === address); // true
 * ```
 */
export class Registry {
  #db: DatabaseSync;
  #pool: AddressPool;
  #closed = false;
  #selectByKey: StatementSync;
  #insert: StatementSync;
  #touch: StatementSync;
  #setOnline: StatementSync;
  #allOffline: StatementSync;
  #delete: StatementSync;
  #selectOne: StatementSync;
  #selectAll: StatementSync;
  #usedBetween: StatementSync;

  private constructor(db: DatabaseSync, pool: AddressPool) {
    this.#db = db;
    this.#pool = pool;
    this.#selectByKey = db.prepare("SELECT address FROM clients WHERE key = ?");
    this.#insert = db.prepare(
      "INSERT INTO clients (address, key, kind, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)",
    );
    this.#touch = db.prepare("UPDATE clients SET last_seen = ? WHERE address = ?");
    this.#setOnline = db.prepare("UPDATE clients SET online = ?, last_seen = ? WHERE address = ?");
    this.#allOffline = db.prepare("UPDATE clients SET online = 0 WHERE online = 1");
    this.#delete = db.prepare("DELETE FROM clients WHERE address = ?");
    const columns =
      "address, kind, first_seen AS firstSeen, last_seen AS lastSeen, online = 1 AS online";
    this.#selectOne = db.prepare(`SELECT ${columns} FROM clients WHERE address = ?`);
    this.#selectAll = db.prepare(`SELECT ${columns} FROM clients ORDER BY address`);
    this.#usedBetween = db.prepare(
      "SELECT address FROM clients WHERE address BETWEEN ? AND ? ORDER BY address",
    );
  }

  /** Opens (creating if missing) the registry at `path`, or `":memory:"`. */
  static open(path: string, pool: AddressPool): Registry {
    const db = new DatabaseSync(path);
    try {
      // WAL lets readers run during writes; NORMAL is durable enough with WAL
      // (a power cut may lose the last commits, never corrupt the file).
      if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("PRAGMA busy_timeout = 5000");
      Registry.#migrate(db, path);
      return new Registry(db, pool);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  static #migrate(db: DatabaseSync, path: string): void {
    db.exec("BEGIN IMMEDIATE");
    try {
      const { user_version: version } = db.prepare("PRAGMA user_version").get() as {
        user_version: number;
      };
      if (version > SCHEMA_VERSION) {
        throw new AlphaNetError(
          `Cannot open registry ${path}: schema version ${version} is newer than ${SCHEMA_VERSION}`,
        );
      }
      for (let step = version; step < SCHEMA_VERSION; step++) db.exec(MIGRATIONS[step]);
      if (version < SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }

  /**
   * Returns the key's address, assigning a random free one from the pool on
   * first sight. An address outside the current pool (the pool was narrowed
   * since) is still returned: permanence wins. Throws `PoolExhausted`.
   */
  assign(key: RegistryKey, now: number = Date.now()): number {
    this.#open("assign");
    const text = keyText(key);
    const existing = this.#addressOf(text);
    if (existing !== null) {
      this.#touch.run(now, existing);
      return existing;
    }
    for (let attempt = 0; attempt < RANDOM_TRIES; attempt++) {
      const address = this.#tryInsert(this.#pool.at(randomIndex(this.#pool.size)), text, key, now);
      if (address !== null) return address;
    }
    // The pool is nearly full: random picks keep colliding, so scan for a gap.
    for (;;) {
      const free = this.#firstFree();
      if (free === null) {
        throw new PoolExhausted(`Cannot assign an address: all ${this.#pool.size} are taken`);
      }
      const address = this.#tryInsert(free, text, key, now);
      if (address !== null) return address;
    }
  }

  /** Inserts and returns the address taken, or null if `address` is taken. */
  #tryInsert(address: number, text: string, key: RegistryKey, now: number): number | null {
    try {
      this.#insert.run(address, text, key.kind, now, now);
      return address;
    } catch (error) {
      const code = constraintCode(error);
      if (code === SQLITE_CONSTRAINT_PRIMARYKEY) return null;
      if (code === SQLITE_CONSTRAINT_UNIQUE) {
        // Another process sharing the file registered this key first.
        const winner = this.#addressOf(text);
        if (winner !== null) return winner;
      }
      throw error;
    }
  }

  /** The lowest unused pool address, or null if every one is used. */
  #firstFree(): number | null {
    for (const range of this.#pool.ranges) {
      let candidate = range.first;
      for (const row of this.#usedBetween.iterate(range.first, range.last)) {
        const used = (row as { address: number }).address;
        if (used > candidate) return candidate;
        candidate = used + 1;
      }
      if (candidate <= range.last) return candidate;
    }
    return null;
  }

  #addressOf(text: string): number | null {
    const row = this.#selectByKey.get(text) as { address: number } | undefined;
    return row === undefined ? null : row.address;
  }

  /** The key's address, or null if it was never assigned. */
  lookup(key: RegistryKey): number | null {
    this.#open("look up");
    return this.#addressOf(keyText(key));
  }

  /** Records that the client at `address` was seen at `now` (unix ms). */
  touch(address: number, now: number = Date.now()): void {
    this.#open("touch");
    this.#touch.run(now, address);
  }

  /**
   * Records whether a relay holds a live link for the client at `address`
   * (and that it was seen at `now`), for operators listing clients.
   */
  markOnline(address: number, online: boolean, now: number = Date.now()): void {
    this.#open("mark online");
    this.#setOnline.run(online ? 1 : 0, now, address);
  }

  /** Marks every client offline: a relay starting up holds no links (after a crash too). */
  markAllOffline(): void {
    this.#open("mark offline");
    this.#allOffline.run();
  }

  /** Forgets the client at `address`, freeing it; false if none was there. */
  release(address: number): boolean {
    this.#open("release");
    return Number(this.#delete.run(address).changes) > 0;
  }

  /** The client at `address`, or null. */
  get(address: number): ClientRecord | null {
    this.#open("get");
    const row = this.#selectOne.get(address) as ClientRow | undefined;
    return row === undefined ? null : toRecord(row);
  }

  /** Every registered client, by ascending address. */
  list(): ClientRecord[] {
    this.#open("list");
    return (this.#selectAll.all() as unknown as ClientRow[]).map(toRecord);
  }

  /** Closes the database; calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /** Closes the database, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(action: string): void {
    if (this.#closed) throw new Closed(`Cannot ${action}: registry is closed`);
  }
}
