/**
 * Whether a relay of a cluster is alive, as the PostgreSQL registry sees
 * it: each relay keeps a row in `alphanet.relays` (its node name, the id of
 * this run, when it started, when it was last seen) and refreshes it every
 * few seconds. An online mark (`clients.holder`) shows online only while
 * its relay was seen within the relay's lease, so the clients of a relay
 * killed without a clean shutdown show offline one lease after its last
 * beat. Their addresses are freed (released, or expired) only
 * {@linkcode LAPSED_GRACE_MS} later, or once the relay's row is gone: a
 * relay that lost its lease may be alive and cut off from PostgreSQL only,
 * still serving those clients, and there is no fencing to stop it.
 * Timestamps are the database's clock, so relays' clocks need not agree.
 *
 * @module
 */

import { inTransaction } from "./registry_postgres_tx.ts";
import { AlphaNetError } from "../errors.ts";
import type { Logger } from "./log.ts";
import { type RegistryConnections, settleWithin } from "./registry_postgres_pool.ts";

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
const HEARTBEAT_LOG_MS = 60_000;

/**
 * How long after a relay's lease lapsed its clients' addresses stay theirs
 * (ms): shown offline, but neither released nor expired. A relay cut off
 * from PostgreSQL (a partition, a database gone silent) loses its lease
 * while it keeps serving its clients, as it must; freeing their addresses
 * at once would let two live clients share one. Past the grace, or once
 * the relay's row is deleted (its next start, its clean close, an
 * operator), they are freed as usual.
 */
export const LAPSED_GRACE_MS = 10 * 60 * 1000;

/**
 * A relay that starts forgets the rows of relays unseen this long that
 * hold no online mark (ms), so node names that never come back (ports
 * picked at random) do not pile up. A row that still holds marks is never
 * forgotten this way: forgetting it would clear the marks of a relay that
 * may only be cut off; its clients are freed by the grace above instead.
 */
const RELAY_FORGET_MS = 24 * 60 * 60 * 1000;

/** The shortest heartbeat interval accepted (ms): below it a relay would mostly beat. */
const MIN_HEARTBEAT_MS = 10;

/** How long past another run's lease a start keeps waiting on it before it gives up (ms). */
const STARTUP_SLACK_MS = 5_000;

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
  return relayHolds(r, 0);
}

/**
 * Whether the `relays` row aliased `r` still holds its clients' addresses:
 * within its lease plus `graceMs` (see {@linkcode LAPSED_GRACE_MS}). SQL.
 *
 * @param r The alias of `alphanet.relays` in the query.
 * @param graceMs The grace after the lease, a whole number of ms.
 * @returns The SQL condition.
 */
export function relayHolds(r: string, graceMs: number): string {
  return `(${r}.seen_at + ${r}.lease_ms + ${Math.trunc(graceMs)} > ${DB_NOW_MS})`;
}

/**
 * Another running relay beats under this relay's node name: two relays
 * would share one set of online marks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NodeTaken } from "./registry_postgres_heartbeat.ts";
 *
 * assert.equal(new NodeTaken("Cannot start").name, "NodeTaken");
 * ```
 */
export class NodeTaken extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "NodeTaken";
  }
}

/** The largest run id: run ids are random below 2^52, so they stay exact as numbers. */
const RUN_ID_LIMIT = 2 ** 52;

/** A random run id in [1, 2^52). */
function newRunId(): number {
  const [high, low] = crypto.getRandomValues(new Uint32Array(2));
  return ((high & 0xfffff) * 2 ** 32 + low) % (RUN_ID_LIMIT - 1) + 1;
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
interface HeartbeatTarget {
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
  /** This run's id: its beats touch only the row that carries it. */
  readonly #runId = newRunId();
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

  /** This run's id, as `relays.run_id` holds it. */
  get runId(): number {
    return this.#runId;
  }

  /**
   * Takes the node name's row for this run. A row of a previous run that
   * lapsed (a crash, a kill) is deleted first, which clears that run's
   * online marks (the schema's `relays_gone` trigger). A row within its
   * lease is waited on, up to its lease: if it beats meanwhile, another
   * relay runs under this name, and this one refuses to start
   * ({@linkcode NodeTaken}); if it lapses, it was a dead run's (a relay
   * restarted at once after a crash). Also forgets relays unseen for
   * {@linkcode RELAY_FORGET_MS} that hold no marks. Throws if the database
   * fails: a relay that cannot register itself does not start.
   */
  async start(): Promise<void> {
    const { connections, node, where } = this.#target;
    const waitStarted = performance.now();
    let firstSeen: number | null = null;
    for (;;) {
      const held = await connections.run("start", () => this.#claim());
      if (held === null) break;
      const waited = performance.now() - waitStarted;
      if (firstSeen === null) {
        firstSeen = held.seenAt;
        this.#target.log?.log("info", "registry-node-wait", {
          registry: where,
          node,
          leaseMs: held.leaseMs,
          note:
            "another run holds this node name within its lease: a relay restarted at once after a crash waits it out",
        });
      } else if (held.seenAt !== firstSeen || waited > held.leaseMs + STARTUP_SLACK_MS) {
        throw new NodeTaken(
          `Cannot open registry ${where}: another running relay beats under the node name ${node}; give each relay its own --advertise (and port)`,
        );
      }
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(MIN_HEARTBEAT_MS, Math.min(250, held.leaseMs / 6)))
      );
    }
    this.#lastOk = performance.now();
    this.#schedule();
  }

  /**
   * One try of {@linkcode start}, in one transaction: the row taken for this
   * run (null), or the beat of the other run that holds it within its lease.
   */
  #claim(): Promise<{ seenAt: number; leaseMs: number } | null> {
    const { connections, node } = this.#target;
    return inTransaction(connections.transactionSql, async (tx) => {
      const [row] = await tx.unsafe(
        `SELECT seen_at, lease_ms, ${relayLive("r")} AS live FROM alphanet.relays r
          WHERE node = $1 FOR UPDATE`,
        [node],
      );
      if (row !== undefined && row.live === true) {
        return { seenAt: Number(row.seen_at), leaseMs: Number(row.lease_ms) };
      }
      // Deleting the rows runs the trigger that clears their marks.
      if (row !== undefined) await tx`DELETE FROM alphanet.relays WHERE node = ${node}`;
      await tx.unsafe(
        `DELETE FROM alphanet.relays r WHERE r.seen_at < ${DB_NOW_MS} - $1
          AND NOT EXISTS (SELECT 1 FROM alphanet.clients c WHERE c.holder = r.node)`,
        [RELAY_FORGET_MS],
      );
      const [mine] = await tx.unsafe(
        `INSERT INTO alphanet.relays (node, run_id, started_at, seen_at, lease_ms)
          VALUES ($1, $2, ${DB_NOW_MS}, ${DB_NOW_MS}, $3) RETURNING started_at`,
        [node, this.#runId, this.#leaseMs],
      );
      this.#startedAt = Number(mine.started_at);
      return null;
    });
  }

  /**
   * Refreshes this run's row now; writes it again if it is gone (an
   * operator deleted it); throws {@linkcode NodeTaken} if another run holds
   * the node name now, or the database's error. Returns whether the lease
   * had lapsed before this beat, by the database's clock: what every reader
   * of the registry saw meanwhile (a row written again had lapsed, too).
   */
  async beat(): Promise<boolean> {
    const { connections, node } = this.#target;
    return await connections.run("beat", async () => {
      // The FROM subquery reads the row as it was before this UPDATE.
      const beaten = await connections.sql.unsafe(
        `UPDATE alphanet.relays r SET seen_at = ${DB_NOW_MS}, lease_ms = $3
          FROM (SELECT seen_at + lease_ms AS until FROM alphanet.relays
            WHERE node = $1 AND run_id = $2) before
          WHERE r.node = $1 AND r.run_id = $2
          RETURNING before.until < ${DB_NOW_MS} AS lapsed`,
        [node, this.#runId, this.#leaseMs],
        { prepare: true },
      );
      if (beaten.count > 0) return beaten[0].lapsed === true;
      const written = await connections.sql.unsafe(
        `INSERT INTO alphanet.relays (node, run_id, started_at, seen_at, lease_ms)
          VALUES ($1, $2, $3, ${DB_NOW_MS}, $4) ON CONFLICT (node) DO NOTHING`,
        [node, this.#runId, this.#startedAt, this.#leaseMs],
      );
      if (written.count > 0) return true;
      throw new NodeTaken(
        `Cannot beat: another relay took the node name ${node} (its own start, after this relay's lease lapsed)`,
      );
    });
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
    if (this.#beating !== null) await settleWithin(this.#beating, waitMs);
  }

  /** Deletes this run's row (a clean close): its marks, if any are left, are cleared with it. */
  async remove(): Promise<void> {
    await this.#target.connections.sql`DELETE FROM alphanet.relays
      WHERE node = ${this.#target.node} AND run_id = ${this.#runId}`;
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
    let lapsed: boolean;
    try {
      lapsed = await this.beat();
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
          note: error instanceof NodeTaken
            ? "another relay runs under this node name: give each relay its own --advertise"
            : `this relay's clients count as offline ${this.#leaseMs} ms after its last beat`,
        });
        this.#unlogged = 0;
      }
      return;
    }
    const downMs = Math.round(now() - this.#lastOk);
    this.#lastOk = now();
    await this.#target.afterBeat?.();
    if (this.#failures === 0) return;
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
