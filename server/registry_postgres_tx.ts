/**
 * Transactions of the PostgreSQL registry, on a pool of their own.
 *
 * postgres.js 3.4.9's `sql.begin()` can send BEGIN on a connection it never
 * reserved when BEGIN is the query that fills that connection's pipeline
 * (porsager/postgres#823, #1189; the fixes are not released): under load,
 * a few of thousands of joins then failed with UNSAFE_TRANSACTION. On a
 * pool that runs nothing but transactions, each connection carries one
 * transaction at a time, so its pipeline never fills and the race cannot
 * happen. (Reserving a connection by hand instead, `sql.reserve()`, meets
 * other bugs of the same release: a backend that dies mid-transaction makes
 * the driver throw from a timer, outside any promise, which ends the process.)
 *
 * @module
 */

import type postgres from "postgres";

/** A transaction's connection (bigint columns as numbers). */
export type RegistryTx = postgres.TransactionSql<{ int8: number }>;

/**
 * Runs `work` in one transaction on `sql`, which must be a pool of
 * transactions only (`RegistryConnections.transactionSql`); commits what
 * it resolves, rolls back what it throws, and rethrows.
 *
 * @param sql A pool that runs nothing but transactions.
 * @param work The transaction's statements.
 * @returns What `work` returned, once committed.
 */
export async function inTransaction<T, Types extends Record<string, unknown>>(
  sql: postgres.Sql<Types>,
  work: (tx: postgres.TransactionSql<Types>) => Promise<T>,
): Promise<T> {
  return await sql.begin(work) as T;
}
