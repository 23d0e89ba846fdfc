/**
 * Online marks a relay could not clear: a link that ended while PostgreSQL
 * was out of reach (its offline mark failed), or a join whose write failed
 * as unavailable (it may have landed: a reply lost with its connection)
 * and whose link is gone. Each is remembered by its link id, and cleared
 * once the registry answers again (after the relay's next good beat), so
 * an outage does not leave those clients online, and unreleasable, until
 * the relay restarts. Clearing by link id is always safe: the link is
 * over, and no other link carries its id.
 *
 * @module
 */

import type { Logger } from "./log.ts";
import type { RegistryConnections } from "./registry_postgres_pool.ts";

/**
 * Unsettled marks one relay remembers at most: past it the oldest are
 * forgotten (and the count logged); those clients stay online until the
 * relay closes or restarts, as before this memory existed.
 */
const MAX_UNSETTLED_MARKS = 65_536;

/** Marks cleared per statement when settling. */
const SETTLE_BATCH = 1000;

/** The links whose online marks wait to be cleared, oldest first. */
export class UnsettledMarks {
  readonly #connections: RegistryConnections;
  readonly #node: string;
  readonly #where: string;
  readonly #log: Logger | null;

  // Owned by the store's calls and the heartbeat.
  readonly #links = new Set<number>();
  #dropped = 0;

  /** Marks of `node` in the registry behind `connections`; `where` and `log` for the log lines. */
  constructor(
    connections: RegistryConnections,
    node: string,
    where: string,
    log: Logger | null,
  ) {
    this.#connections = connections;
    this.#node = node;
    this.#where = where;
    this.#log = log;
  }

  /** Links waiting now. */
  get size(): number {
    return this.#links.size;
  }

  /** Remembers that the mark of `link` (a link that is over) may still be set. */
  add(link: number): void {
    if (this.#links.has(link)) return;
    if (this.#links.size >= MAX_UNSETTLED_MARKS) {
      const oldest = this.#links.values().next().value!;
      this.#links.delete(oldest);
      this.#dropped++;
    }
    this.#links.add(link);
  }

  /**
   * Clears the remembered marks, a batch per statement, and logs how many;
   * stops at the first failure (the rest wait for the next try). Never
   * throws.
   */
  async settle(): Promise<void> {
    let settled = 0;
    try {
      while (this.#links.size > 0) {
        const batch = [...this.#links].slice(0, SETTLE_BATCH);
        await this.#connections.run(
          "clear offline marks",
          () =>
            this.#connections.sql`UPDATE alphanet.clients SET holder = NULL, link = NULL,
              last_seen = GREATEST(last_seen, ${Date.now()})
            WHERE holder = ${this.#node}
              AND link = ANY(string_to_array(${batch.join(",")}, ',')::bigint[])`,
        );
        for (const link of batch) this.#links.delete(link);
        settled += batch.length;
      }
    } catch {
      // Tried again after the next good beat.
    }
    if (settled === 0 && this.#dropped === 0) return;
    this.#log?.log(this.#dropped > 0 ? "warn" : "info", "registry-marks-settled", {
      registry: this.#where,
      node: this.#node,
      settled,
      waiting: this.#links.size,
      ...(this.#dropped > 0
        ? {
          dropped: this.#dropped,
          note:
            `over ${MAX_UNSETTLED_MARKS} marks waited: the dropped ones stay online until this relay restarts`,
        }
        : {}),
    });
    this.#dropped = 0;
  }
}
