/**
 * Every SQL statement the registry runs, prepared once, by name: one place to
 * read (and `EXPLAIN`) the queries, and one hook to count them.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";

// A key row's public key is public: shown to operators. The others' keys (real IPs, secret hashes) are not.
const CLIENT_COLUMNS = "address, kind, first_seen AS firstSeen, last_seen AS lastSeen, " +
  "online = 1 AS online, CASE kind WHEN 'key' THEN substr(key, 5) END AS publicKey";

const TOKEN_COLUMNS = "id, public_key AS publicKey, uses, max_uses AS maxUses, " +
  "expires_at AS expiresAt, created_at AS createdAt, revoked_at AS revokedAt, " +
  "last_used_at AS lastUsedAt";

/** The registry's statements; each is an index seek or a bounded range, never a scan of clients. */
export const REGISTRY_SQL = {
  selectByKey: "SELECT address FROM clients WHERE key = ?",
  insert: "INSERT INTO clients (address, key, kind, first_seen, last_seen, online) " +
    "VALUES (?, ?, ?, ?, ?, ?)",
  touch: "UPDATE clients SET last_seen = ? WHERE address = ?",
  // One statement: a release between finding the address and this cannot leave a ghost online.
  touchOnline: "UPDATE clients SET last_seen = ?, online = 1 WHERE address = ?",
  setOnline: "UPDATE clients SET online = ?, last_seen = ? WHERE address = ?",
  allOffline: "UPDATE clients SET online = 0 WHERE online = 1",
  // One statement: an online client is never released, whatever happens between two steps.
  releaseOffline: "DELETE FROM clients WHERE address = ? AND online = 0",
  expire: "DELETE FROM clients WHERE address IN " +
    "(SELECT address FROM clients WHERE online = 0 AND last_seen < ? LIMIT ?)",
  selectOne: `SELECT ${CLIENT_COLUMNS} FROM clients WHERE address = ?`,
  selectAll: `SELECT ${CLIENT_COLUMNS} FROM clients ORDER BY address`,
  walk: "SELECT key, next FROM pool_walks WHERE pool = ?",
  startWalk: "INSERT INTO pool_walks (pool, key, next) VALUES (?, ?, 0)",
  advanceWalk: "UPDATE pool_walks SET next = ? WHERE pool = ?",
  releasedFrom: "SELECT address FROM released WHERE address >= ? ORDER BY address LIMIT 1",
  unrelease: "DELETE FROM released WHERE address = ?",
  setting: "SELECT value FROM settings WHERE name = ?",
  setSetting: "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)",
  relayId: "SELECT id FROM relay LIMIT 1",
  // A legacy claim finds its version 1 row by tag, through the partial index of tags.
  secretByTag: "SELECT address, key FROM clients WHERE legacy_tag = ? AND kind = 'secret'",
  // One statement: the claimed row becomes the key's, and no second claim can find it again.
  claimSecret: "UPDATE clients SET key = ?, kind = 'key', legacy_tag = NULL, last_seen = ?, " +
    "online = ? WHERE legacy_tag = ? AND kind = 'secret' RETURNING address",
  token: `SELECT ${TOKEN_COLUMNS} FROM join_tokens WHERE id = ?`,
  tokens: `SELECT ${TOKEN_COLUMNS} FROM join_tokens ORDER BY created_at, id`,
  insertToken: "INSERT INTO join_tokens (id, public_key, max_uses, expires_at, created_at) " +
    "VALUES (?, ?, ?, ?, ?)",
  // One statement decides a use: a race for the last one is lost by all but one join.
  spendToken: "UPDATE join_tokens SET uses = uses + 1, last_used_at = ? WHERE id = ? " +
    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) " +
    "AND (max_uses IS NULL OR uses < max_uses)",
  revokeToken: "UPDATE join_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
} as const;

/** The name of one of {@linkcode REGISTRY_SQL}'s statements. */
export type RegistryStatementName = keyof typeof REGISTRY_SQL;

/** The prepared {@linkcode REGISTRY_SQL} of one connection. */
export class RegistryStatements {
  readonly #db: DatabaseSync;
  readonly #prepared: Record<RegistryStatementName, StatementSync>;
  readonly #onStatement: ((sql: string) => void) | undefined;

  /** Prepares every statement on `db`; `onStatement` hears each one as it runs. */
  constructor(db: DatabaseSync, onStatement?: (sql: string) => void) {
    this.#db = db;
    this.#onStatement = onStatement;
    this.#prepared = Object.fromEntries(
      Object.entries(REGISTRY_SQL).map(([name, sql]) => [name, db.prepare(sql)]),
    ) as Record<RegistryStatementName, StatementSync>;
  }

  /** The statement `name`, about to run. */
  use(name: RegistryStatementName): StatementSync {
    this.#onStatement?.(REGISTRY_SQL[name]);
    return this.#prepared[name];
  }

  /** Runs SQL without results, such as `BEGIN` and `COMMIT`. */
  exec(sql: string): void {
    this.#onStatement?.(sql);
    this.#db.exec(sql);
  }
}
