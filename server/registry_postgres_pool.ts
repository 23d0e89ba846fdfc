/**
 * The PostgreSQL registry's connections, with the bounds the server cannot
 * give: `connect_timeout` covers only new connections and
 * `statement_timeout` is enforced by the server, so a connection that is
 * half-open (a black-holed path, a frozen server) would hang every query
 * queued on it, and every join, probe and shutdown behind them. Here every
 * call has a deadline of its own: past it the call fails with
 * {@linkcode RegistryUnavailable} and the connections are thrown away and
 * made anew, so the next call does not queue behind a dead socket. Calls
 * waiting at once are capped: past the cap a call fails at once rather than
 * queue behind an outage.
 *
 * @module
 */

import postgres from "postgres";
import { RegistryUnavailable } from "./registry_store.ts";

/** Connections each relay keeps to the registry: joins are a round trip or two each. */
const POOL_CONNECTIONS = 4;
/**
 * Connections kept for transactions alone (see registry_postgres_tx.ts):
 * there a BEGIN never meets a connection with a full pipeline.
 */
const TRANSACTION_CONNECTIONS = 2;
/** A registry that does not accept a connection this long is unavailable (seconds). */
const CONNECT_TIMEOUT_S = 3;
/** Longest a statement may run, lock waits included, before the server cancels it. */
export const STATEMENT_TIMEOUT_MS = 5000;
/**
 * Longest a registry call may take before the client gives up on it (ms):
 * past the server's statement time-out, so a database that answers cancels
 * a slow statement itself first, and only a silent one meets this deadline.
 */
export const CALL_DEADLINE_MS = STATEMENT_TIMEOUT_MS + 2000;
/**
 * Registry calls one store lets wait at once: beyond it a call fails at once
 * with RegistryUnavailable (a join is refused with the reason clients retry)
 * instead of joining a queue that an outage only lengthens.
 */
export const MAX_PENDING_CALLS = 1024;
/** A transaction left idle this long (a relay gone mid-join) is ended by the server. */
const IDLE_IN_TRANSACTION_MS = 10_000;
/** Idle connections close after this long (seconds), so an idle relay holds none open. */
const IDLE_TIMEOUT_S = 60;

/** Error codes of connections that failed or ended: Node's and postgres.js's own. */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/** SQLSTATE classes of a database that cannot serve now: connection exception,
 * insufficient resources, operator intervention (shut down, statement time-out). */
const UNAVAILABLE_CLASSES: ReadonlySet<string> = new Set(["08", "53", "57"]);

/**
 * Waits for `promise` to settle, or `ms` at most (Infinity: no bound),
 * whichever comes first; never rejects. For shutdowns that a silent
 * database must not hold up.
 *
 * @param promise What to wait for.
 * @param ms The longest wait.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<void>((resolve) => {
    if (Number.isFinite(ms)) timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise.then(() => {}, () => {}), bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** The registry's connections, as postgres.js gives them (bigint columns as numbers). */
export type RegistrySql = postgres.Sql<{ int8: number }>;

/** How {@linkcode RegistryConnections} connects, and how long a call may take. */
interface RegistryConnectionOptions {
  /** The database's URL (password in it or in `PGPASSWORD`). */
  readonly url: string;
  /** The database as it may be shown (no password). */
  readonly where: string;
  /** `application_name` of the connections: who this is in `pg_stat_activity`. */
  readonly applicationName: string;
  /** A call's deadline (ms). @default {CALL_DEADLINE_MS} */
  readonly deadlineMs?: number;
}

/**
 * The registry's connection pool behind a per-call deadline: see the
 * module's documentation.
 */
export class RegistryConnections {
  readonly #options: RegistryConnectionOptions;
  readonly #deadlineMs: number;

  // Owned by the calls.
  #sql: RegistrySql;
  #transactionSql: RegistrySql;
  /** Bumped at each rebuild: a call's deadline throws away only the pool it ran on. */
  #generation = 0;
  /** performance.now() of the last call of the current pool that succeeded. */
  #answeredAt = -Infinity;
  #pending = 0;
  #ended = false;

  /** Connects lazily: the first query opens the first connection. */
  constructor(options: RegistryConnectionOptions) {
    this.#options = options;
    this.#deadlineMs = options.deadlineMs ?? CALL_DEADLINE_MS;
    if (!Number.isSafeInteger(this.#deadlineMs) || this.#deadlineMs <= 0) {
      throw new RangeError(`Cannot open registry: deadlineMs ${this.#deadlineMs} is not positive`);
    }
    this.#sql = this.#connect(POOL_CONNECTIONS);
    this.#transactionSql = this.#connect(TRANSACTION_CONNECTIONS);
  }

  /** The current pool: a call that began before a rebuild may still hold the previous one. */
  get sql(): RegistrySql {
    return this.#sql;
  }

  /** The current pool of transactions' connections (see `inTransaction`). */
  get transactionSql(): RegistrySql {
    return this.#transactionSql;
  }

  /**
   * Runs `body` within the deadline; its failure as
   * {@linkcode RegistryUnavailable} when the database cannot be reached or
   * serve now, else as it is. A deadline that passes also rebuilds the pool
   * (once per pool, however many calls it failed), unless another call of
   * that pool succeeded within the deadline: then the database is busy (a
   * burst of new keys waits for the pool walk's row), not gone.
   *
   * @param action What the call does, for the error ("assign").
   * @param body The call's statements.
   * @param deadlineMs This call's deadline, if shorter than the store's.
   * @returns What `body` resolves to.
   */
  async run<T>(action: string, body: () => Promise<T>, deadlineMs?: number): Promise<T> {
    const deadline = Math.min(deadlineMs ?? Infinity, this.#deadlineMs);
    const what = `${action}: registry ${this.#options.where}`;
    if (this.#pending >= MAX_PENDING_CALLS) {
      throw new RegistryUnavailable(
        `Cannot ${what}: ${MAX_PENDING_CALLS} registry calls are waiting already`,
      );
    }
    this.#pending++;
    const generation = this.#generation;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlinePassed()), deadline);
    });
    const running = Promise.try(body);
    try {
      const result = await Promise.race([running, expired]);
      if (generation === this.#generation) this.#answeredAt = performance.now();
      return result;
    } catch (error) {
      if (error instanceof DeadlinePassed) {
        // Its statements fail if the old pool is destroyed; nobody waits for them.
        running.catch(() => {});
        if (performance.now() - this.#answeredAt >= deadline) this.#rebuild(generation);
        throw new RegistryUnavailable(
          `Cannot ${what}: the database did not answer within ${deadline} ms`,
        );
      }
      throw unavailable(error, what);
    } finally {
      clearTimeout(timer);
      this.#pending--;
    }
  }

  /**
   * Closes the connections: queries in flight get up to `timeoutMs` to
   * finish, then the sockets are destroyed. Resolves within about that
   * bound, whatever the sockets do.
   *
   * @param timeoutMs How long queries in flight may still run.
   */
  async end(timeoutMs: number): Promise<void> {
    this.#ended = true;
    const ends = [this.#sql, this.#transactionSql].map((sql) =>
      sql.end({ timeout: timeoutMs / 1000 }).catch(() => {})
    );
    await settleWithin(Promise.all(ends), timeoutMs + 1000);
  }

  /** Throws away the pool of `generation` (if it is still the current one) for a new one. */
  #rebuild(generation: number): void {
    if (generation !== this.#generation || this.#ended) return;
    this.#generation++;
    this.#answeredAt = -Infinity;
    const old = [this.#sql, this.#transactionSql];
    this.#sql = this.#connect(POOL_CONNECTIONS);
    this.#transactionSql = this.#connect(TRANSACTION_CONNECTIONS);
    for (const sql of old) sql.end({ timeout: 0 }).catch(() => {});
  }

  /** A pool of `max` connections. */
  #connect(max: number): RegistrySql {
    return postgres(this.#options.url, {
      max,
      connect_timeout: CONNECT_TIMEOUT_S,
      idle_timeout: IDLE_TIMEOUT_S,
      fetch_types: false,
      onnotice: () => {},
      connection: {
        application_name: this.#options.applicationName,
        statement_timeout: STATEMENT_TIMEOUT_MS,
        idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
      },
      // bigint columns (addresses, unix ms, counts, link ids) as numbers: all below 2^53.
      types: {
        int8: {
          to: 20,
          from: [20],
          serialize: (value: number) => String(value),
          parse: (text: string) => Number(text),
        },
      },
    });
  }
}

/** A call's deadline passed (internal: reported as RegistryUnavailable). */
class DeadlinePassed extends Error {}

/**
 * `error` as {@linkcode RegistryUnavailable} if it says the database cannot
 * be reached or cannot serve now; otherwise `error` itself.
 *
 * @param error What a call threw.
 * @param what What the call did, and where ("assign: registry postgres://...").
 * @returns The error to throw.
 */
export function unavailable(error: unknown, what: string): unknown {
  if (error instanceof RegistryUnavailable) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return error;
  const postgresError = error instanceof postgres.PostgresError;
  if (postgresError ? UNAVAILABLE_CLASSES.has(code.slice(0, 2)) : CONNECTION_CODES.has(code)) {
    return new RegistryUnavailable(`Cannot ${what}: the database is unavailable (${code})`, {
      cause: error,
    });
  }
  return error;
}
