/**
 * Whether a relay of a cluster is alive, as the PostgreSQL registry sees
 * it: each relay keeps a row in `alphanet.relays` (its node name, when it
 * started, when it was last seen) and refreshes it every few seconds. An
 * online mark (`clients.holder`) counts only while its relay was seen
 * within the relay's lease, so the clients of a relay killed without a
 * clean shutdown show offline, and can be released or expire, one lease
 * after its last beat, whether or not that relay ever starts again.
 * Timestamps are the database's clock, so relays' clocks need not agree.
 *
 * @module
 */

import type { Logger } from "./log.ts";
import type { RegistryConnections } from "./registry_postgres_pool.ts";

/** How often a relay refreshes its `relays` row by default (ms). */
export const RELAY_HEARTBEAT_MS = 5_000;

/**
 * Beats a relay's lease lasts: a relay that misses two beats in a row (a
 * slow statement, a short hiccup of the database) still counts as alive;
 * one that misses three is taken for dead, and its clients for offline.
 */
export const RELAY_LEASE_BEATS = 3;

/**
 * While beats keep failing, one line this often at most (ms): the first
 * failure is logged at once, the rest are counted into the next line.
 */
export const HEARTBEAT_LOG_MS = 60_000;

/**
 * A relay that starts forgets the rows of relays unseen this long (ms),
 * so node names that never come back (ports picked at random) do not pile
 * up; their clients, offline since, keep their rows and addresses.
 */
export const RELAY_FORGET_MS = 24 * 60 * 60 * 1000;

/** The shortest heartbeat interval accepted (ms): below it a relay would mostly beat. */
const MIN_HEARTBEAT_MS = 10;

/** Now by the database's clock, in unix ms: one clock measures every relay's lease. */
export const DB_NOW_MS = "(extract(epoch FROM statement_timestamp()) * 1000)::bigint";

/**
 * Whether the `relays` row aliased `r` is within its lease now: SQL, NULL
 * when the row is (a LEFT JOIN's) NULL.
 *
 * @param r The alias of `alphanet.relays` in the query.
 * @returns The SQL condition.
 */
export function relayLive(r: string): string {
  return `(${r}.seen_at + ${r}.lease_ms > ${DB_NOW_MS})`;
}

/**
 * The lease of a relay beating every `heartbeatMs`; throws RangeError for
 * an interval that is not a whole number of ms of at least 10.
 *
 * @param heartbeatMs The beat interval.
 * @returns The lease in ms.
 */
export function relayLeaseMs(heartbeatMs: number): number {
  if (!Number.isSafeInteger(heartbeatMs) || heartbeatMs < MIN_HEARTBEAT_MS) {
    throw new RangeError(
      `Cannot open registry: heartbeatMs ${heartbeatMs} is not a whole number of ms >= ${MIN_HEARTBEAT_MS}`,
    );
  }
  return RELAY_LEASE_BEATS * heartbeatMs;
}

/** Where and as whom a heartbeat beats, and where it logs. */
export interface HeartbeatTarget {
  /** The registry's connections: each beat is a call within their deadline. */
  readonly connections: RegistryConnections;
  /** This relay's node name. */
  readonly node: string;
  /** The database, as it may be shown (no password). */
  readonly where: string;
  readonly heartbeatMs: number;
  /** Where failures and recoveries are logged; null: nowhere. */
  readonly log: Logger | null;
  /** Runs after each good beat of the timer (the registry answers): never throws. */
  readonly afterBeat?: () => Promise<void>;
}

/**
 * A relay's row in `alphanet.relays`: written at start, refreshed on a
 * timer (never overlapping: the next beat is timed from the end of the
 * last), deleted at a clean close. A failed beat is logged within a rate
 * limit and never thrown; the next one tries again.
 */
export class RelayHeartbeat {
  readonly #target: HeartbeatTarget;
  readonly #leaseMs: number;
  /** When this relay started, by the database's clock: kept if the row is written again. */
  #startedAt = 0;

  // Owned by the timer.
  #timer: ReturnType<typeof setTimeout> | null = null;
  #beating: Promise<void> | null = null;
  #stopped = false;
  /** performance.now() of the last beat that succeeded. */
  #lastOk = 0;
  /** Beats failed in a row, and how many of them no line has reported yet. */
  #failures = 0;
  #unlogged = 0;
  #lastLogged = -Infinity;

  /** A heartbeat for `target`; nothing is written before {@linkcode start}. */
  constructor(target: HeartbeatTarget) {
    this.#target = target;
    this.#leaseMs = relayLeaseMs(target.heartbeatMs);
  }

  /** The lease this relay records: how long after a beat it still counts as alive (ms). */
  get leaseMs(): number {
    return this.#leaseMs;
  }

  /**
   * Takes the relay's row over as a new run: the row of its previous run
   * (a crash, or a kill) is deleted first, which clears that run's online
   * marks (see the schema's `relays_gone` trigger), then written afresh.
   * Also forgets relays unseen for {@linkcode RELAY_FORGET_MS}. Throws if
   * the database fails: a relay that cannot register itself does not start.
   */
  async start(): Promise<void> {
    const { connections, node } = this.#target;
    const sql = connections.sql;
    await sql.unsafe(
      `DELETE FROM alphanet.relays WHERE node = $1 OR seen_at < ${DB_NOW_MS} - $2`,
      [node, RELAY_FORGET_MS],
    );
    const [row] = await sql.unsafe(
      `INSERT INTO alphanet.relays (node, started_at, seen_at, lease_ms)
        VALUES ($1, ${DB_NOW_MS}, ${DB_NOW_MS}, $2)
        ON CONFLICT (node) DO UPDATE SET started_at = EXCLUDED.started_at,
          seen_at = EXCLUDED.seen_at, lease_ms = EXCLUDED.lease_ms
        RETURNING started_at`,
      [node, this.#leaseMs],
    );
    this.#startedAt = Number(row.started_at);
    this.#lastOk = performance.now();
    this.#schedule();
  }

  /**
   * Refreshes the row now, writing it again if it is gone (an operator
   * deleted it); throws if the database fails.
   */
  async beat(): Promise<void> {
    const { connections } = this.#target;
    await connections.run("beat", () =>
      connections.sql.unsafe(
        `INSERT INTO alphanet.relays (node, started_at, seen_at, lease_ms)
        VALUES ($1, $2, ${DB_NOW_MS}, $3)
        ON CONFLICT (node) DO UPDATE SET seen_at = EXCLUDED.seen_at, lease_ms = EXCLUDED.lease_ms`,
        [this.#target.node, this.#startedAt, this.#leaseMs],
        { prepare: true },
      ));
  }

  /**
   * Stops the timer and waits for a beat in flight (up to `waitMs`: a
   * registry gone silent does not hold a shutdown up), so that nothing
   * writes the row after this resolves. Idempotent.
   *
   * @param waitMs How long to wait for a beat in flight.
   */
  async stop(waitMs: number = Infinity): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#beating === null) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => {
      if (Number.isFinite(waitMs)) timer = setTimeout(resolve, waitMs);
    });
    await Promise.race([this.#beating, bound]);
    clearTimeout(timer);
  }

  /** Deletes the row (a clean close): its marks, if any are left, are cleared with it. */
  async remove(): Promise<void> {
    await this.#target.connections.sql`DELETE FROM alphanet.relays
      WHERE node = ${this.#target.node}`;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#beating = this.#timedBeat().finally(() => {
        this.#beating = null;
        this.#schedule();
      });
    }, this.#target.heartbeatMs);
  }

  /** One beat of the timer: never throws; failures and the recovery are logged. */
  async #timedBeat(): Promise<void> {
    const now = () => performance.now();
    try {
      await this.beat();
    } catch (error) {
      this.#failures++;
      this.#unlogged++;
      if (now() - this.#lastLogged >= HEARTBEAT_LOG_MS) {
        this.#lastLogged = now();
        this.#target.log?.log("warn", "registry-heartbeat-failed", {
          registry: this.#target.where,
          node: this.#target.node,
          failures: this.#unlogged,
          error: reason(error),
          note: `this relay's clients count as offline ${this.#leaseMs} ms after its last beat`,
        });
        this.#unlogged = 0;
      }
      return;
    }
    const downMs = Math.round(now() - this.#lastOk);
    this.#lastOk = now();
    await this.#target.afterBeat?.();
    if (this.#failures === 0) return;
    const lapsed = downMs >= this.#leaseMs;
    this.#target.log?.log(lapsed ? "warn" : "info", "registry-heartbeat-restored", {
      registry: this.#target.where,
      node: this.#target.node,
      failures: this.#failures,
      downMs,
      ...(lapsed
        ? { note: "the lease lapsed: this relay's clients showed offline meanwhile" }
        : {}),
    });
    this.#failures = 0;
    this.#unlogged = 0;
    this.#lastLogged = -Infinity;
  }
}

/** A failure in a few words: the error's code (SQLSTATE or connection code), else its name. */
function reason(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.name : "unknown";
}
