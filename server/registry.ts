/**
 * The persistent client registry: which client owns which virtual IPv4,
 * kept in SQLite so an address stays with its client across restarts.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { AlphaNetError, Closed } from "../errors.ts";
import type { AddressPool } from "./address_pool.ts";
import { AddressWalk } from "./address_walk.ts";
import { createPrivateFile, lockRegistryFile } from "./registry_file.ts";
import { type JoinTokenRecord, joinTokenRefusal, JoinTokenRefused } from "./join_tokens.ts";
import { bytesOfHex, type ClientKind, keyText, type RegistryKey } from "./registry_key.ts";
import { migrateRegistry, RELAY_ID_BYTES } from "./registry_schema.ts";
import { RegistryStatements } from "./registry_statements.ts";

export type { ClientKind, RegistryKey } from "./registry_key.ts";

/** Offline clients one expiry pass frees at most, so a join never waits on a long delete. */
const EXPIRY_BATCH = 256;
/** A join checks for expired addresses at most this often. */
const EXPIRY_CHECK_MS = 1000;

// node:sqlite reports constraint failures from prepared statements as
// code "ERR_SQLITE_ERROR" with the extended result code in `errcode`.
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;

/**
 * A registered client. Its key is deliberately not exposed (a real IP, a
 * secret's hash), except a public key, which is public.
 */
export interface ClientRecord {
  /** The client's permanent virtual IPv4 as a u32. */
  address: number;
  /** How the client is identified. */
  kind: ClientKind;
  /** Kind `key`: the raw Ed25519 public key as 64 lowercase hex digits; otherwise null. */
  publicKey: string | null;
  /** When the address was assigned, in unix ms. */
  firstSeen: number;
  /** When the client was last seen, in unix ms. */
  lastSeen: number;
  /** Whether a relay holds a live link for it now. */
  online: boolean;
}

/** Options of {@linkcode Registry.assign}. */
export interface AssignOptions {
  /** Mark the client online in the same statement (a relay admitting it). @default {false} */
  readonly online?: boolean;
  /**
   * The id of a join token that pays for a new key: one use is spent in the
   * transaction that inserts the key, or {@linkcode JoinTokenRefused} is
   * thrown and nothing written. Not spent for a key already registered.
   * @default {null}
   */
  readonly joinToken?: string | null;
  /**
   * The caller admitted the key as registered (no token, no allowance): if
   * its row is gone (an operator released it meanwhile, from another
   * process), throw {@linkcode KeyReleased} rather than register it anew
   * without those checks. @default {false}
   */
  readonly registered?: boolean;
  /**
   * Called before the address is returned if the key turned out to be
   * registered already (by another link since the caller found it new):
   * its address is a known key's, nothing was inserted and no join token
   * spent, so a caller that took a new key's allowance can give it back.
   * @default {undefined}
   */
  readonly onKnown?: () => void;
}

/**
 * A key admitted as registered was released before its join completed; the
 * client should join again (as a new key, with the checks a new key needs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyReleased } from "./registry.ts";
 *
 * assert.equal(new KeyReleased("Cannot assign: released").name, "KeyReleased");
 * ```
 */
export class KeyReleased extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyReleased";
  }
}

/** A version 1 row a legacy claim found by its tag. */
export interface SecretRow {
  /** The row's address. */
  readonly address: number;
  /** SHA-256 of the version 1 secret: the key of the claim's HMAC. */
  readonly hash: Uint8Array<ArrayBuffer>;
}

/** What {@linkcode Registry.createJoinToken} stores. */
export interface NewJoinToken {
  /** 16 lowercase hex digits. */
  readonly id: string;
  /** Raw Ed25519 public key of the token's seed, 32 bytes. */
  readonly publicKey: Uint8Array;
  /** How many new keys it may register; null: no limit. */
  readonly maxUses: number | null;
  /** When it stops admitting (unix ms); null: never. */
  readonly expiresAt: number | null;
}

/** How {@linkcode Registry.open} opens the file. */
export interface RegistryOptions {
  /**
   * Hold the file against every other relay, through a lock file beside it
   * (as a relay does); the `clients` commands open it shared, beside the relay.
   * @default {false}
   */
  exclusive?: boolean;
  /**
   * Free the address of a client offline and unseen this long; 0 never does.
   * The exclusive holder records it in the file for the `clients` commands.
   * @default {0}
   */
  addressTtlMs?: number;
  /** Called with the SQL of each statement as it runs: lets tests count a join's work. */
  onStatement?: (sql: string) => void;
}

/**
 * Every address of the pool is taken, so a new client cannot get one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PoolExhausted } from "./registry.ts";
 *
 * assert.equal(new PoolExhausted("Cannot assign: pool is full").name, "PoolExhausted");
 * ```
 */
export class PoolExhausted extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolExhausted";
  }
}

function isPrimaryKeyConflict(error: unknown): boolean {
  return error instanceof Error && "errcode" in error &&
    (error as { errcode: unknown }).errcode === SQLITE_CONSTRAINT_PRIMARYKEY;
}

/**
 * Maps client keys to permanent virtual IPv4 addresses in a SQLite file.
 *
 * New addresses follow a keyed pseudo-random permutation of the pool from a
 * stored cursor, so a join costs the same whatever the pool's fill and no
 * one can predict the next address; once the walk has covered the pool,
 * addresses freed by release or expiry are reused. Exhaustion costs one
 * cursor read and one index probe.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AddressPool } from "./address_pool.ts";
 * import { Registry } from "./registry.ts";
 *
 * using registry = Registry.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
 * const address = registry.assign({ kind: "ip", realIp: "192.0.2.7" });
 * assert.equal(registry.lookup({ kind: "ip", realIp: "192.0.2.7" }), address);
 * ```
 */
export class Registry {
  // Static after construction.
  readonly #db: DatabaseSync;
  readonly #pool: AddressPool;
  readonly #sql: RegistryStatements;
  readonly #lock: Deno.FsFile | null;
  readonly #ttlMs: number;
  readonly #walk: AddressWalk;
  readonly #relayId: Uint8Array<ArrayBuffer>;

  // Owned by assign().
  #nextExpiryCheck = 0;
  #closed = false;

  private constructor(
    db: DatabaseSync,
    pool: AddressPool,
    lock: Deno.FsFile | null,
    options: RegistryOptions,
  ) {
    this.#db = db;
    this.#pool = pool;
    this.#lock = lock;
    this.#ttlMs = options.addressTtlMs ?? 0;
    this.#sql = new RegistryStatements(db, options.onStatement);
    this.#walk = new AddressWalk(this.#sql, pool);
    const row = this.#sql.use("relayId").get() as { id: Uint8Array } | undefined;
    if (row === undefined || row.id.length !== RELAY_ID_BYTES) {
      throw new AlphaNetError("Cannot open registry: it holds no relay id (the file was edited)");
    }
    this.#relayId = new Uint8Array(row.id);
  }

  /**
   * The relay's id: 32 random bytes made when the file was created (or
   * migrated to protocol version 2), the same on every open; new on every
   * open of `":memory:"`. Every Challenge carries it.
   */
  get relayId(): Uint8Array<ArrayBuffer> {
    return this.#relayId;
  }

  /**
   * Opens (creating if missing, 0600 in a folder created 0700) the registry
   * at `path`, or `":memory:"`. Throws {@linkcode AlphaNetError} if the file
   * is another program's database or, with `exclusive`, held by another relay.
   */
  static open(path: string, pool: AddressPool, options: RegistryOptions = {}): Registry {
    const ttl = options.addressTtlMs ?? 0;
    if (!Number.isFinite(ttl) || ttl < 0) {
      throw new RangeError(`Cannot open registry: addressTtlMs ${ttl} is negative`);
    }
    const onDisk = path !== ":memory:";
    if (onDisk) createPrivateFile(path);
    // Locked before SQLite opens the file: a second relay must change nothing in it.
    const lock = onDisk && options.exclusive === true ? lockRegistryFile(path) : null;
    let db: DatabaseSync | null = null;
    try {
      db = new DatabaseSync(path);
      db.exec("PRAGMA busy_timeout = 5000");
      // Recognised before anything is written, so another program's file is left as it was.
      migrateRegistry(db, path);
      // WAL lets readers run during writes; NORMAL is durable enough with WAL
      // (a power cut may lose the last commits, never corrupt the file).
      if (onDisk) db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      const registry = new Registry(db, pool, lock, options);
      if (options.exclusive === true) registry.#takeOver();
      return registry;
    } catch (error) {
      db?.close();
      lock?.close();
      throw error;
    }
  }

  /** Records the holder's settings and frees what expired while no relay ran. */
  #takeOver(): void {
    this.#sql.use("setSetting").run("address_ttl_ms", this.#ttlMs);
    if (this.#ttlMs > 0) { while (this.expire() === EXPIRY_BATCH) { /* next batch */ } }
  }

  /**
   * Returns the key's address, assigning a free one from the pool on first
   * sight. An address outside the current pool (the pool was narrowed since)
   * is still returned: permanence wins. With `online`, the client is marked
   * online by the same statement that finds or inserts it, so an operator's
   * `release` from another process can never free the address of a client
   * that is joining. Throws `PoolExhausted`.
   */
  assign(key: RegistryKey, now: number = Date.now(), options: AssignOptions = {}): number {
    this.#open("assign");
    const online = options.online === true;
    const token = options.joinToken ?? null;
    const text = keyText(key);
    const existing = this.#addressOf(text);
    if (existing !== null) {
      const marked = this.#sql.use(online ? "touchOnline" : "touch").run(now, existing);
      // Zero rows: an operator released it just now; the client gets a new address below.
      if (marked.changes > 0) {
        options.onKnown?.();
        return existing;
      }
    }
    if (options.registered === true) {
      throw new KeyReleased("Cannot assign: the address was released while its client joined");
    }
    if (this.#ttlMs > 0 && now >= this.#nextExpiryCheck) {
      // A full batch means more may be due: check again at the next join.
      this.#nextExpiryCheck = this.expire(now) === EXPIRY_BATCH ? 0 : now + EXPIRY_CHECK_MS;
    }
    this.#sql.exec("BEGIN IMMEDIATE");
    let address: number | null;
    let known: number | null;
    try {
      // Under the write lock: a process sharing the file may have registered the key since.
      known = this.#addressOf(text);
      address = known ??
        this.#walk.take((candidate) => this.#tryInsert(candidate, text, key, now, online));
      // Spent last, so a join refused for any other reason (a full pool) spends nothing.
      if (known === null && address !== null && token !== null) this.#spendToken(token, now);
      this.#sql.exec("COMMIT");
    } catch (error) {
      this.#sql.exec("ROLLBACK");
      throw error;
    }
    if (address === null) {
      throw new PoolExhausted(`Cannot assign an address: all ${this.#pool.size} are taken`);
    }
    if (known !== null) options.onKnown?.();
    return address;
  }

  /** Spends one use of the join token `id`; throws {@linkcode JoinTokenRefused} if it has none. */
  #spendToken(id: string, now: number): void {
    if (this.#sql.use("spendToken").run(now, id, now).changes > 0) return;
    const refusal = joinTokenRefusal(this.joinToken(id), now) ?? "invalid";
    throw new JoinTokenRefused(refusal, `Cannot spend join token ${id}: it is ${refusal}`);
  }

  /** Inserts the client at `address`; false if the address is taken. */
  #tryInsert(
    address: number,
    text: string,
    key: RegistryKey,
    now: number,
    online: boolean,
  ): boolean {
    try {
      this.#sql.use("insert").run(address, text, key.kind, now, now, online ? 1 : 0);
      return true;
    } catch (error) {
      if (isPrimaryKeyConflict(error)) return false;
      throw error;
    }
  }

  #addressOf(text: string): number | null {
    const row = this.#sql.use("selectByKey").get(text) as { address: number } | undefined;
    return row === undefined ? null : row.address;
  }

  /** The key's address, or null if it was never assigned. */
  lookup(key: RegistryKey): number | null {
    this.#open("look up");
    return this.#addressOf(keyText(key));
  }

  /**
   * The version 1 row whose legacy tag is `tag` (SHA-256 of the row's secret
   * hash), or null: no such row, or it was claimed already.
   */
  secretRow(tag: Uint8Array): SecretRow | null {
    this.#open("look up a version 1 row");
    const row = this.#sql.use("secretByTag").get(tag) as
      | { address: number; key: string }
      | undefined;
    const hash = row === undefined ? null : bytesOfHex(row.key.slice(3));
    return row === undefined || hash === null ? null : { address: row.address, hash };
  }

  /**
   * Re-keys the version 1 row tagged `tag` to `key` (kind `key`, tag
   * cleared), in one statement; returns its address, or null if no row has
   * that tag any more (claimed by another link just now). The caller has
   * checked the claim's HMAC, and that `key` is not registered.
   */
  claimSecretRow(
    tag: Uint8Array,
    key: RegistryKey,
    now: number = Date.now(),
    options: AssignOptions = {},
  ): number | null {
    this.#open("claim a version 1 row");
    const text = keyText(key);
    const row = this.#sql.use("claimSecret").get(text, now, options.online ? 1 : 0, tag) as
      | { address: number }
      | undefined;
    return row?.address ?? null;
  }

  /** Stores a new join token with no uses; throws if its id is taken. */
  createJoinToken(token: NewJoinToken, now: number = Date.now()): JoinTokenRecord {
    this.#open("create a join token");
    this.#sql.use("insertToken").run(
      token.id,
      token.publicKey,
      token.maxUses,
      token.expiresAt,
      now,
    );
    return this.joinToken(token.id)!;
  }

  /** The join token `id`, or null. */
  joinToken(id: string): JoinTokenRecord | null {
    this.#open("read a join token");
    const row = this.#sql.use("token").get(id) as JoinTokenRecord | undefined;
    return row === undefined ? null : { ...row };
  }

  /** Every join token, oldest first. */
  joinTokens(): JoinTokenRecord[] {
    this.#open("list join tokens");
    return (this.#sql.use("tokens").all() as unknown as JoinTokenRecord[]).map((row) => ({
      ...row,
    }));
  }

  /** Revokes the join token `id` at `now`; false if there is none or it was revoked already. */
  revokeJoinToken(id: string, now: number = Date.now()): boolean {
    this.#open("revoke a join token");
    return Number(this.#sql.use("revokeToken").run(now, id).changes) > 0;
  }

  /** Records that the client at `address` was seen at `now` (unix ms). */
  touch(address: number, now: number = Date.now()): void {
    this.#open("touch");
    this.#sql.use("touch").run(now, address);
  }

  /**
   * Records whether a relay holds a live link for the client at `address`
   * (and that it was seen at `now`), for operators listing clients.
   */
  markOnline(address: number, online: boolean, now: number = Date.now()): void {
    this.#open("mark online");
    this.#sql.use("setOnline").run(online ? 1 : 0, now, address);
  }

  /** Marks every client offline: a relay starting up holds no links (after a crash too). */
  markAllOffline(): void {
    this.#open("mark offline");
    this.#sql.use("allOffline").run();
  }

  /**
   * Forgets the client at `address` if it is offline, freeing its address,
   * in one statement: a client coming online meanwhile is never released.
   * False if no offline client was there; {@linkcode get} then tells why.
   */
  release(address: number): boolean {
    this.#open("release");
    return Number(this.#sql.use("releaseOffline").run(address).changes) > 0;
  }

  /**
   * Frees up to a batch of addresses of clients offline and unseen for the
   * address TTL as of `now`; returns how many. Does nothing with no TTL.
   */
  expire(now: number = Date.now()): number {
    this.#open("expire");
    if (this.#ttlMs === 0) return 0;
    const run = this.#sql.use("expire").run(now - this.#ttlMs, EXPIRY_BATCH);
    return Number(run.changes);
  }

  /**
   * The address TTL in ms the relay holding the file runs with (0: none),
   * as it recorded it; what the `clients` commands show expiry times from.
   */
  get addressTtlMs(): number {
    this.#open("read settings");
    const row = this.#sql.use("setting").get("address_ttl_ms") as { value: number } | undefined;
    return row?.value ?? 0;
  }

  /** The client at `address`, or null. */
  get(address: number): ClientRecord | null {
    this.#open("get");
    const row = this.#sql.use("selectOne").get(address) as ClientRow | undefined;
    return row === undefined ? null : toRecord(row);
  }

  /** Every registered client, by ascending address. */
  list(): ClientRecord[] {
    this.#open("list");
    return (this.#sql.use("selectAll").all() as unknown as ClientRow[]).map(toRecord);
  }

  /** Closes the database and lets go of the file; calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
    this.#lock?.close();
  }

  /** Closes the database, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(action: string): void {
    if (this.#closed) throw new Closed(`Cannot ${action}: registry is closed`);
  }
}

/** A row as SQLite returns it: a null prototype and `online` as 0 or 1. */
type ClientRow = Omit<ClientRecord, "online"> & { online: number };

function toRecord(row: ClientRow): ClientRecord {
  return { ...row, online: row.online === 1 };
}
