/** A fresh database in a private PostgreSQL, so the steps of one test share one server. */

import postgres from "postgres";
import type { Postgres } from "../_helpers/cluster_engines.ts";

/** Creates the database `name` in `pg` and returns its URL. */
export async function freshDatabase(pg: Postgres, name: string): Promise<string> {
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return pg.url.replace(/\/postgres$/, `/${name}`);
}

/** Runs `body` with one connection to `url`, for checks the store does not expose. */
export async function withSql<T>(
  url: string,
  body: (sql: postgres.Sql) => Promise<T>,
): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await body(sql);
  } finally {
    await sql.end();
  }
}
