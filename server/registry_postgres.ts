/**
 * The registry of a cluster, in PostgreSQL: every relay shares it, so an
 * identity keeps its address whichever relay it joins. Atomic by
 * constraints, never by locks in our code: the address is the primary key
 * and the client's key unique, so two relays never hand out one address;
 * the walk's cursor moves by one `UPDATE ... RETURNING`; a join token's use
 * is spent by one conditional `UPDATE` in the transaction that inserts the
 * key it admits. Online marks name the relay that holds the link (its node
 * name) and the link (its id), so a relay clears only its own, and a link's
 * offline mark that lands late never clears a newer link's; a mark counts only while that
 * relay beats (`alphanet.relays`, see `registry_postgres_heartbeat.ts`), so
 * a relay killed without a clean close leaves no client shown online for
 * longer than its lease; its clients' addresses are freed (released,
 * expired) only `LAPSED_GRACE_MS` after that, or once its row is deleted,
 * as a relay that lost its lease may only be cut off from PostgreSQL.
 *
 * A database that cannot be reached fails a call within a few seconds
 * (connect and statement time-outs, and a deadline of each call's own for
 * a connection that went silent: see `registry_postgres_pool.ts`) with
 * {@linkcode RegistryUnavailable}; the relay refuses the join with a reason
 * clients retry.
 *
 * @module
 */

import { inTransaction } from "./registry_postgres_tx.ts";
import postgres from "postgres";
import { AlphaNetError, Closed } from "../errors.ts";
import type { AddressPool } from "./address_pool.ts";
import { redactedUrl } from "./config.ts";
import { type JoinTokenRecord, joinTokenRefusal, JoinTokenRefused } from "./join_tokens.ts";
import {
  type ClientRecord,
  KeyReleased,
  type NewJoinToken,
  PoolExhausted,
  type SecretRow,
} from "./registry.ts";
import { bytesOfHex, keyText, type RegistryKey } from "./registry_key.ts";
import type { Logger } from "./log.ts";
import {
  LAPSED_GRACE_MS,
  RELAY_HEARTBEAT_MS,
  RelayHeartbeat,
  relayHolds,
  relayLeaseMs,
  relayLive,
} from "./registry_postgres_heartbeat.ts";
import { expectPostgresSchema, migratePostgres } from "./registry_postgres_schema.ts";
import { RegistryConnections, type RegistrySql, unavailable } from "./registry_postgres_pool.ts";
import { PostgresWalk } from "./registry_postgres_walk.ts";
import type { RegistryTx } from "./registry_postgres_tx.ts";
import { RELAY_ID_BYTES } from "./registry_schema.ts";
import {
  type RegistryStore,
  RegistryUnavailable,
  type StoreAssignOptions,
} from "./registry_store.ts";
import { UnsettledMarks } from "./registry_postgres_marks.ts";

/** Offline clients one expiry pass frees at most, so a join never waits on a long delete. */
const EXPIRY_BATCH = 256;
/** A join checks for expired addresses at most this often. */
const EXPIRY_CHECK_MS = 1000;
/** A transaction that lost a deadlock or serialization race is tried again this often in all. */
const TRANSACTION_ATTEMPTS = 3;
/** How long close() lets queries in flight finish before it destroys the connections (ms). */
const END_TIMEOUT_MS = 2000;
/** How long close() waits for a beat in flight, then for its marks to be cleared (ms each). */
const CLOSE_STEP_MS = 3000;

/** SQLSTATEs of a transaction that lost a race and may simply be run again. */
const RETRY_CODES: ReadonlySet<string> = new Set(["40001", "40P01"]);

/** Options of {@linkcode PostgresRegistry.open}. */
export interface PostgresRegistryOptions {
  /**
   * This relay's node name, which its online marks carry; null for the
   * admin commands, which mark nothing. @default {null}
   */
  readonly node?: string | null;
  /**
   * Free the address of a client offline and unseen this long; 0 never
   * does. A relay records it for the admin commands. @default {0}
   */
  readonly addressTtlMs?: number;
  /**
   * Create or migrate the schema (a relay), or only check it is there (the
   * admin commands). @default {true}
   */
  readonly migrate?: boolean;
  /**
   * How often a relay (a store with a `node`) refreshes its row in
   * `alphanet.relays` (ms); its clients count as online until
   * `RELAY_LEASE_BEATS` intervals after its last beat. Tests shorten it.
   * @default {RELAY_HEARTBEAT_MS}
   */
  readonly heartbeatMs?: number;
  /** Where a relay logs failed heartbeats (rate-limited) and their recovery. @default {null} */
  readonly log?: Logger | null;
  /**
   * How long after a relay's lease lapsed its clients' addresses may be
   * released or expire (ms): see `LAPSED_GRACE_MS`. Tests shorten it.
   * @default {LAPSED_GRACE_MS}
   */
  readonly lapsedGraceMs?: number;
  /**
   * How long one call may take before it fails as unavailable and the
   * connections are made anew (ms). Tests shorten it.
   * @default {CALL_DEADLINE_MS}
   */
  readonly deadlineMs?: number;
}

/**
 * Client rows as selected: online while the holder's relay is within its
 * lease; a client whose relay stopped beating was last seen, at the
 * latest, at that relay's last beat (as expiry counts it).
 */
const SELECT_CLIENTS = `SELECT c.address, c.kind, c.first_seen AS "firstSeen",
  CASE WHEN ${relayLive("r")} IS FALSE THEN GREATEST(c.last_seen, r.seen_at) ELSE c.last_seen END
    AS "lastSeen",
  COALESCE(${relayLive("r")}, false) AS online,
  CASE c.kind WHEN 'key' THEN substr(c.key, 5) END AS "publicKey"
  FROM alphanet.clients c LEFT JOIN alphanet.relays r ON r.node = c.holder`;

/**
 * Releases the client at $1 unless its holder's relay still holds it
 * (within its lease and the grace after it): one statement. A mark whose
 * relay has no row holds nothing.
 */
function releaseOffline(graceMs: number): string {
  return `DELETE FROM alphanet.clients c WHERE c.address = $1
  AND NOT EXISTS (SELECT 1 FROM alphanet.relays r
    WHERE r.node = c.holder AND ${relayHolds("r", graceMs)})`;
}

/**
 * Expires up to $2 clients held by relays past their lease and its grace,
 * and unseen since $1 (their last sighting: the later of their own and
 * their relay's last beat, so a client online for longer than the TTL is
 * not expired the moment its relay's lease lapses). Driven by the (few)
 * dead relays, through the holder index; rows another relay is expiring
 * are skipped, not waited for.
 */
function expireOrphans(graceMs: number): string {
  return `DELETE FROM alphanet.clients WHERE address IN (
  SELECT c.address FROM alphanet.relays r JOIN alphanet.clients c ON c.holder = r.node
  WHERE NOT ${relayHolds("r", graceMs)} AND GREATEST(c.last_seen, r.seen_at) < $1
  LIMIT $2 FOR UPDATE OF c SKIP LOCKED)`;
}

const TOKEN_COLUMNS = `id, public_key AS "publicKey", uses, max_uses AS "maxUses",
  expires_at AS "expiresAt", created_at AS "createdAt", revoked_at AS "revokedAt",
  last_used_at AS "lastUsedAt"`;

/** Thrown inside an insert's transaction when the key was registered meanwhile: rolls it back. */
class KeyTaken extends Error {}

/**
 * A registry in a PostgreSQL database, shared by every relay of a cluster.
 *
 * @example
 * ```ts ignore
 * import { AddressPool } from "./address_pool.ts";
 * import { PostgresRegistry } from "./registry_postgres.ts";
 *
 * const store = await PostgresRegistry.open(
 *   "postgres://alphanet@127.0.0.1:5432/alphanet",
 *   AddressPool.default(),
 *   { node: "10.0.0.1:7000" },
 * );
 * const address = await store.assign({ kind: "ip", realIp: "192.0.2.7" });
 * await store.close();
 * ```
 */
export class PostgresRegistry implements RegistryStore {
  // Static after construction.
  readonly #connections: RegistryConnections;
  readonly #where: string;
  readonly #node: string | null;
  readonly #ttlMs: number;
  readonly #pool: AddressPool;
  readonly #relayId: Uint8Array<ArrayBuffer>;
  /** The statements that free addresses, with the grace after a lapsed lease. */
  readonly #releaseOffline: string;
  readonly #expireOrphans: string;
  /** A relay's row in `alphanet.relays`; null for the admin commands. */
  readonly #heartbeat: RelayHeartbeat | null;
  /** A relay's marks that an outage kept it from clearing; null for the admin commands. */
  readonly #unsettled: UnsettledMarks | null;

  // Owned by the calls.
  /** Built on the first new key: the admin commands never need it. */
  #walk: Promise<PostgresWalk> | null = null;
  #nextExpiryCheck = 0;
  #closing: Promise<void> | null = null;

  private constructor(
    connections: RegistryConnections,
    where: string,
    pool: AddressPool,
    relayId: Uint8Array<ArrayBuffer>,
    options: PostgresRegistryOptions,
  ) {
    this.#connections = connections;
    this.#where = where;
    this.#pool = pool;
    this.#relayId = relayId;
    this.#node = options.node ?? null;
    this.#ttlMs = options.addressTtlMs ?? 0;
    const graceMs = options.lapsedGraceMs ?? LAPSED_GRACE_MS;
    this.#releaseOffline = releaseOffline(graceMs);
    this.#expireOrphans = expireOrphans(graceMs);
    const log = options.log ?? null;
    const unsettled = this.#node === null
      ? null
      : new UnsettledMarks(connections, this.#node, where, log);
    this.#unsettled = unsettled;
    this.#heartbeat = this.#node === null ? null : new RelayHeartbeat({
      connections,
      node: this.#node,
      where,
      heartbeatMs: options.heartbeatMs ?? RELAY_HEARTBEAT_MS,
      log,
      // The registry answers again: marks an outage left set are cleared now.
      afterBeat: () => unsettled!.size === 0 ? Promise.resolve() : unsettled!.settle(),
    });
  }

  /**
   * Connects to `url` (password in it or in `PGPASSWORD`), creates or
   * migrates the schema (or, without `migrate`, checks it), and reads the
   * network's id. A relay takes over its row in `alphanet.relays` (the
   * marks of its previous run cleared), starts beating, records its
   * address TTL and frees what expired.
   * Rejects with {@linkcode RegistryUnavailable} if the database cannot be
   * reached, {@linkcode AlphaNetError} if it holds no registry of ours.
   */
  static async open(
    url: string,
    pool: AddressPool,
    options: PostgresRegistryOptions = {},
  ): Promise<PostgresRegistry> {
    const ttl = options.addressTtlMs ?? 0;
    if (!Number.isFinite(ttl) || ttl < 0) {
      throw new RangeError(`Cannot open registry: addressTtlMs ${ttl} is negative`);
    }
    relayLeaseMs(options.heartbeatMs ?? RELAY_HEARTBEAT_MS); // RangeError before connecting
    const grace = options.lapsedGraceMs ?? LAPSED_GRACE_MS;
    if (!Number.isSafeInteger(grace) || grace < 0) {
      throw new RangeError(`Cannot open registry: lapsedGraceMs ${grace} is not a whole ms >= 0`);
    }
    const where = redactedUrl(url);
    let registry: PostgresRegistry | null = null;
    const connections = new RegistryConnections({
      url,
      where,
      applicationName: options.node ? `alphanet-relay ${options.node}` : "alphanet-admin",
      deadlineMs: options.deadlineMs,
    });
    const sql = connections.sql;
    try {
      // On the transaction pool: its migration is a transaction (see inTransaction).
      if (options.migrate ?? true) await migratePostgres(connections.transactionSql, where);
      else await expectPostgresSchema(sql, where);
      const [meta] = await sql`SELECT network_id FROM alphanet.meta`;
      const id = meta?.network_id as Uint8Array | undefined;
      if (id === undefined || id.length !== RELAY_ID_BYTES) {
        throw new AlphaNetError(`Cannot open registry ${where}: it holds no network id`);
      }
      registry = new PostgresRegistry(connections, where, pool, new Uint8Array(id), options);
      if (registry.#node !== null) await registry.#takeOver();
      return registry;
    } catch (error) {
      if (registry !== null) await registry.#heartbeat?.stop();
      await connections.end(0);
      throw unavailable(error, `open registry ${where}`);
    }
  }

  /**
   * Starts this relay's heartbeat (its previous run's marks cleared),
   * records its address TTL for the admin commands, and frees what expired
   * meanwhile.
   */
  async #takeOver(): Promise<void> {
    await this.#heartbeat!.start();
    await this
      .#sql`INSERT INTO alphanet.settings (name, value) VALUES ('address_ttl_ms', ${this.#ttlMs})
      ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`;
    if (this.#ttlMs > 0) {
      while ((await this.#expire(Date.now())) === EXPIRY_BATCH) {
        /* next */
      }
    }
  }

  /** The network's id, one for every relay of the cluster. */
  get relayId(): Uint8Array<ArrayBuffer> {
    return this.#relayId;
  }

  /** The connections now: a deadline that passed may have replaced them since the last call. */
  get #sql(): RegistrySql {
    return this.#connections.sql;
  }

  /**
   * Runs `body` as one call: refused once closed; within its deadline; a
   * database out of reach as RegistryUnavailable.
   */
  #call<T>(action: string, body: () => Promise<T>): Promise<T> {
    if (this.#closing !== null) {
      return Promise.reject(new Closed(`Cannot ${action}: registry is closed`));
    }
    return this.#connections.run(action, body);
  }

  /** See {@linkcode RegistryStore.lookup}. */
  lookup(key: RegistryKey): Promise<number | null> {
    return this.#call("look up", async () => {
      const text = keyText(key);
      const [row] = await this.#sql`SELECT address FROM alphanet.clients WHERE key = ${text}`;
      return row === undefined ? null : row.address as number;
    });
  }

  /** See {@linkcode RegistryStore.secretRow}. */
  secretRow(tag: Uint8Array): Promise<SecretRow | null> {
    return this.#call("look up a version 1 row", async () => {
      const [row] = await this.#sql`SELECT address, key FROM alphanet.clients
        WHERE legacy_tag = ${tag} AND kind = 'secret'`;
      const hash = row === undefined ? null : bytesOfHex((row.key as string).slice(3));
      return row === undefined || hash === null ? null : { address: row.address as number, hash };
    });
  }

  /** See {@linkcode RegistryStore.claimSecretRow}; null also if the key was registered meanwhile. */
  claimSecretRow(
    tag: Uint8Array,
    key: RegistryKey,
    now: number = Date.now(),
    options: StoreAssignOptions = {},
  ): Promise<number | null> {
    const link = options.online === true ? options.link ?? 0 : null;
    return this.#settling(
      link,
      this.#call("claim a version 1 row", async () => {
        const text = keyText(key);
        const holder = this.#holder(link !== null);
        try {
          const [row] = await this.#sql`UPDATE alphanet.clients SET key = ${text}, kind = 'key',
            legacy_tag = NULL, last_seen = ${now}, holder = ${holder}, link = ${link}
          WHERE legacy_tag = ${tag} AND kind = 'secret' RETURNING address`;
          return row === undefined ? null : row.address as number;
        } catch (error) {
          // The key was registered by another link meanwhile: the join goes on as that key's.
          if (error instanceof postgres.PostgresError && error.code === "23505") return null;
          throw error;
        }
      }),
    );
  }

  /**
   * See {@linkcode RegistryStore.assign}: a known key in one statement; a
   * new one in one transaction that advances the walk, inserts the row and
   * spends the join token, or writes nothing.
   */
  assign(
    key: RegistryKey,
    now: number = Date.now(),
    options: StoreAssignOptions = {},
  ): Promise<number> {
    const link = options.online === true ? options.link ?? 0 : null;
    return this.#settling(
      link,
      this.#call("assign", async () => {
        const text = keyText(key);
        const holder = this.#holder(link !== null);
        for (let attempt = 1;; attempt++) {
          const existing = await this.#touch(text, now, holder, link);
          if (existing !== null) {
            options.onKnown?.();
            return existing;
          }
          if (options.registered === true) {
            throw new KeyReleased(
              "Cannot assign: the address was released while its client joined",
            );
          }
          if (this.#ttlMs > 0 && now >= this.#nextExpiryCheck) {
            // A full batch means more may be due: check again at the next join.
            this.#nextExpiryCheck = (await this.#expire(now)) === EXPIRY_BATCH
              ? 0
              : now + EXPIRY_CHECK_MS;
          }
          try {
            return await this.#insertNew(text, key, now, holder, link, options.joinToken ?? null);
          } catch (error) {
            // Registered by another relay meanwhile: it is a known key now (touched above).
            if (error instanceof KeyTaken && attempt < TRANSACTION_ATTEMPTS) continue;
            if (isRetryable(error) && attempt < TRANSACTION_ATTEMPTS) continue;
            throw error instanceof KeyTaken
              ? new Error("Cannot assign: the key keeps moving")
              : error;
          }
        }
      }),
    );
  }

  /**
   * The key's address, seen at `now` (and held by `holder` through `link` if
   * not null), or null if it has none.
   */
  async #touch(
    text: string,
    now: number,
    holder: string | null,
    link: number | null,
  ): Promise<number | null> {
    const [row] = holder === null
      ? await this.#sql`UPDATE alphanet.clients SET last_seen = ${now} WHERE key = ${text}
          RETURNING address`
      : await this.#sql`UPDATE alphanet.clients SET last_seen = ${now}, holder = ${holder},
          link = ${link} WHERE key = ${text} RETURNING address`;
    return row === undefined ? null : row.address as number;
  }

  /** Inserts a new key at a free address, spending `token`, in one transaction. */
  async #insertNew(
    text: string,
    key: RegistryKey,
    now: number,
    holder: string | null,
    link: number | null,
    token: string | null,
  ): Promise<number> {
    const walk = await (this.#walk ??= PostgresWalk.open(this.#sql, this.#pool).catch((error) => {
      this.#walk = null; // tried again at the next join
      throw error;
    }));
    const address = await inTransaction(this.#connections.transactionSql, async (tx) => {
      const taken = await walk.take(tx, (candidate) => tryInsert(tx, candidate));
      if (taken !== null && token !== null) await spendToken(tx, token, now);
      return taken;
    });
    if (address === null) {
      throw new PoolExhausted(`Cannot assign an address: all ${this.#pool.size} are taken`);
    }
    return address;

    async function tryInsert(tx: RegistryTx, candidate: number): Promise<boolean> {
      const [row] = await tx`INSERT INTO alphanet.clients
          (address, key, kind, first_seen, last_seen, holder, link)
        VALUES (${candidate}, ${text}, ${key.kind}, ${now}, ${now}, ${holder}, ${link})
        ON CONFLICT DO NOTHING RETURNING address`;
      if (row !== undefined) return true;
      const [known] = await tx`SELECT 1 FROM alphanet.clients WHERE key = ${text}`;
      if (known !== undefined) throw new KeyTaken();
      return false;
    }
  }

  #holder(online: boolean): string | null {
    if (!online) return null;
    if (this.#node === null) {
      throw new TypeError("Cannot mark a client online: this registry was opened without a node");
    }
    return this.#node;
  }

  /** See {@linkcode RegistryStore.joinToken}. */
  joinToken(id: string): Promise<JoinTokenRecord | null> {
    return this.#call("read a join token", () => readToken(this.#sql, id));
  }

  /** See {@linkcode RegistryStore.joinTokens}. */
  joinTokens(): Promise<JoinTokenRecord[]> {
    return this.#call("list join tokens", async () => {
      const rows = await this.#sql.unsafe(
        `SELECT ${TOKEN_COLUMNS} FROM alphanet.join_tokens ORDER BY created_at, id`,
      );
      return rows.map(toToken);
    });
  }

  /** See {@linkcode RegistryStore.createJoinToken}. */
  createJoinToken(token: NewJoinToken, now: number = Date.now()): Promise<JoinTokenRecord> {
    return this.#call("create a join token", async () => {
      await this.#sql`INSERT INTO alphanet.join_tokens
          (id, public_key, max_uses, expires_at, created_at)
        VALUES (${token.id}, ${token.publicKey}, ${token.maxUses}, ${token.expiresAt}, ${now})`;
      return (await readToken(this.#sql, token.id))!;
    });
  }

  /** See {@linkcode RegistryStore.revokeJoinToken}. */
  revokeJoinToken(id: string, now: number = Date.now()): Promise<boolean> {
    return this.#call("revoke a join token", async () => {
      const result = await this.#sql`UPDATE alphanet.join_tokens SET revoked_at = ${now}
        WHERE id = ${id} AND revoked_at IS NULL`;
      return result.count > 0;
    });
  }

  /**
   * See {@linkcode RegistryStore.markOffline}: clears the mark only if this
   * relay holds it for `link`.
   */
  markOffline(address: number, link: number, now: number = Date.now()): Promise<void> {
    return this.#settling(
      link,
      this.#call("mark offline", async () => {
        const holder = this.#holder(true);
        await this.#sql`UPDATE alphanet.clients SET holder = NULL, link = NULL,
          last_seen = GREATEST(last_seen, ${now})
        WHERE address = ${address} AND holder = ${holder} AND link = ${link}`;
      }),
    );
  }

  /**
   * `call`, which may have set (a join) or failed to clear (a leave) the
   * online mark of `link`; if it fails as unavailable, the link is over (its
   * join refused, or it left), so its mark is remembered and cleared once
   * the registry answers again. Rejects as `call` does.
   */
  async #settling<T>(link: number | null, call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      if (error instanceof RegistryUnavailable && link !== null) this.#unsettled?.add(link);
      throw error;
    }
  }

  /**
   * See {@linkcode RegistryStore.markAllOffline}: the marks of this relay's
   * node name, while this run holds it.
   */
  markAllOffline(): Promise<void> {
    return this.#call("mark offline", () => this.#clearOwnMarks(this.#holder(true)!, 0));
  }

  /**
   * Clears the marks under `holder`, only while this run holds that node
   * name (never another relay's marks), as last seen at `seenAt` at the
   * latest (0: as they were).
   */
  async #clearOwnMarks(holder: string, seenAt: number): Promise<void> {
    await this.#sql`UPDATE alphanet.clients SET holder = NULL, link = NULL,
        last_seen = GREATEST(last_seen, ${seenAt})
      WHERE holder = ${holder} AND EXISTS (SELECT 1 FROM alphanet.relays
        WHERE node = ${holder} AND run_id = ${this.#heartbeat!.runId})`;
  }

  /** See {@linkcode RegistryStore.get}. */
  get(address: number): Promise<ClientRecord | null> {
    return this.#call("get", async () => {
      const [row] = await this.#sql.unsafe(`${SELECT_CLIENTS} WHERE c.address = $1`, [address], {
        prepare: true,
      });
      return row === undefined ? null : toClient(row);
    });
  }

  /** See {@linkcode RegistryStore.list}. */
  list(): Promise<ClientRecord[]> {
    return this.#call("list", async () => {
      const rows = await this.#sql.unsafe(`${SELECT_CLIENTS} ORDER BY c.address`);
      return rows.map(toClient);
    });
  }

  /**
   * See {@linkcode RegistryStore.release}: one statement, so an online
   * client is never released, nor one whose relay's lease lapsed less than
   * the grace ago (that relay may be cut off only, and still serve it).
   */
  release(address: number): Promise<boolean> {
    return this.#call("release", async () => {
      const result = await this.#sql.unsafe(this.#releaseOffline, [address], { prepare: true });
      return result.count > 0;
    });
  }

  /** See {@linkcode RegistryStore.expire}. */
  expire(now: number = Date.now()): Promise<number> {
    return this.#call("expire", () => this.#expire(now));
  }

  /** Frees up to EXPIRY_BATCH offline clients unseen for the TTL: marked offline, then orphaned. */
  async #expire(now: number): Promise<number> {
    if (this.#ttlMs === 0) return 0;
    const cutoff = now - this.#ttlMs;
    // Rows another relay is expiring are skipped, not waited for.
    const offline = await this.#sql`DELETE FROM alphanet.clients WHERE address IN (
      SELECT address FROM alphanet.clients WHERE holder IS NULL AND last_seen < ${cutoff}
      LIMIT ${EXPIRY_BATCH} FOR UPDATE SKIP LOCKED)`;
    if (offline.count >= EXPIRY_BATCH) return offline.count;
    const orphans = await this.#sql.unsafe(
      this.#expireOrphans,
      [cutoff, EXPIRY_BATCH - offline.count],
      { prepare: true },
    );
    return offline.count + orphans.count;
  }

  /** See {@linkcode RegistryStore.addressTtlMs}: the value the last relay to start recorded. */
  addressTtlMs(): Promise<number> {
    return this.#call("read settings", async () => {
      const [row] = await this.#sql`SELECT value FROM alphanet.settings
        WHERE name = 'address_ttl_ms'`;
      return row === undefined ? 0 : row.value as number;
    });
  }

  /**
   * Stops the heartbeat, clears this relay's online marks (its links are
   * gone: seen until now) and deletes its row in `alphanet.relays`, then
   * closes the connections once the queries in flight are done. Each step
   * is bounded (a call's deadline, then END_TIMEOUT_MS), so a registry that
   * went silent delays a shutdown by seconds, never for good. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#heartbeat !== null) {
        await this.#heartbeat.stop(CLOSE_STEP_MS);
        // Best effort: a registry out of reach keeps the marks, shown offline after the lease.
        await this.#connections.run("mark offline", async () => {
          await this.#clearOwnMarks(this.#node!, Date.now());
          await this.#heartbeat!.remove();
        }, CLOSE_STEP_MS).catch(() => {});
      }
      await this.#connections.end(END_TIMEOUT_MS);
    })();
    return this.#closing;
  }
}

/** Spends one use of the join token `id` in `tx`; throws JoinTokenRefused (rolling it back) if it has none. */
async function spendToken(tx: RegistryTx, id: string, now: number): Promise<void> {
  // One statement decides a use: a race for the last one is lost by all but one join.
  const result = await tx`UPDATE alphanet.join_tokens SET uses = uses + 1, last_used_at = ${now}
    WHERE id = ${id} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${now})
      AND (max_uses IS NULL OR uses < max_uses)`;
  if (result.count > 0) return;
  const refusal = joinTokenRefusal(await readToken(tx, id), now) ?? "invalid";
  throw new JoinTokenRefused(refusal, `Cannot spend join token ${id}: it is ${refusal}`);
}

async function readToken(
  sql: postgres.Sql<{ int8: number }> | RegistryTx,
  id: string,
): Promise<JoinTokenRecord | null> {
  const [row] = await sql.unsafe(
    `SELECT ${TOKEN_COLUMNS} FROM alphanet.join_tokens WHERE id = $1`,
    [id],
    { prepare: true },
  );
  return row === undefined ? null : toToken(row);
}

function toToken(row: postgres.Row): JoinTokenRecord {
  return {
    id: row.id,
    publicKey: new Uint8Array(row.publicKey),
    uses: row.uses,
    maxUses: row.maxUses,
    expiresAt: row.expiresAt,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
    lastUsedAt: row.lastUsedAt,
  };
}

function toClient(row: postgres.Row): ClientRecord {
  return {
    address: row.address,
    kind: row.kind,
    publicKey: row.publicKey,
    firstSeen: row.firstSeen,
    lastSeen: row.lastSeen,
    online: row.online,
  };
}

/** Whether a transaction lost a deadlock or serialization race. */
function isRetryable(error: unknown): boolean {
  return error instanceof postgres.PostgresError && RETRY_CODES.has(error.code);
}
