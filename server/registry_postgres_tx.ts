/**
 * Transactions of the PostgreSQL registry, each on a connection of its own.
 *
 * Not `sql.begin()`: in postgres.js 3.4.9 it can send BEGIN on a connection
 * it never reserved when BEGIN is the query that fills that connection's
 * pipeline (porsager/postgres#823 and #1189; the fixes are not released).
 * The transaction then fails as UNSAFE_TRANSACTION, and its connection goes
 * back to the pool inside the open transaction, where unrelated statements
 * would run in it. `sql.reserve()` takes an idle connection for this
 * transaction alone before anything is sent on it.
 *
 * @module
 */

import type postgres from "postgres";

/** A connection reserved for one transaction (bigint columns as numbers). */
export type RegistryTx = postgres.ReservedSql<{ int8: number }>;

/**
 * Runs `work` between BEGIN and COMMIT on a reserved connection; on any
 * error, rolls back and rethrows. A connection whose transaction could not
 * be ended (the rollback failed too) is never given back to the pool: it
 * stays out of use until the pool is closed or rebuilt.
 *
 * @param sql The registry's connections.
 * @param work The transaction's statements.
 * @returns What `work` returned, once committed.
 */
export async function inTransaction<T, Types extends Record<string, unknown>>(
  sql: postgres.Sql<Types>,
  work: (tx: postgres.ReservedSql<Types>) => Promise<T>,
): Promise<T> {
  const tx = await sql.reserve();
  let open = false;
  try {
    await tx`BEGIN`;
    open = true;
    const result = await work(tx);
    await tx`COMMIT`;
    open = false;
    return result;
  } catch (error) {
    if (open) {
      try {
        await tx`ROLLBACK`;
        open = false;
      } catch {
        // The connection is broken or stuck: it stays reserved (below), never reused mid-transaction.
      }
    }
    throw error;
  } finally {
    if (!open) tx.release();
  }
}
