/**
 * What the registry commands (`clients`, `tokens`) share: opening the
 * registry beside a running relay (a SQLite file shared, never the relay's
 * lock; or the PostgreSQL database of a cluster, never migrated), one-line
 * errors, the audit logger and who ran the command.
 *
 * @module
 */

import { AlphaNetError } from "../errors.ts";
import { oneLine } from "../flags/one_line.ts";
import { UsageError } from "../flags/usage_error.ts";
import { AddressPool } from "./address_pool.ts";
import { DEFAULT_RELAY_CONFIG, LOG_FORMATS, type LogFormat, redactedUrl } from "./config.ts";
import { registryFlag } from "./flags.ts";
import { Logger } from "./log.ts";
import { PostgresRegistry } from "./registry_postgres.ts";
import { type RegistryStore, SqliteRegistryStore } from "./registry_store.ts";

/** The registry a command works on: a relay's SQLite file, or a cluster's PostgreSQL database. */
export type AdminTarget = { readonly db: string } | { readonly registry: string };

/**
 * The registry of a command's `--db` or `--registry` (one or the other;
 * neither: the default file). Throws {@linkcode UsageError} naming `command`.
 *
 * @param values The command's flags.
 * @param command The command's name, for the error.
 * @returns Where the registry is.
 */
export function adminTarget(
  values: { db?: string; registry?: string },
  command: string,
): AdminTarget {
  const registry = registryFlag(values, `${command}: `);
  return registry === undefined ? { db: values.db ?? DEFAULT_RELAY_CONFIG.db } : { registry };
}

/**
 * How an audit line names the registry: `{ db }` or `{ registry }` (its URL
 * without the password).
 *
 * @param target Where the registry is.
 * @returns The audit fields.
 */
export function targetField(target: AdminTarget): { db: string } | { registry: string } {
  return "db" in target ? { db: target.db } : { registry: redactedUrl(target.registry) };
}

/**
 * The audit logger of a command's `--log-format`; throws {@linkcode UsageError}
 * naming `command` for a format that is not one.
 *
 * @param format The flag's value, or undefined for the default.
 * @param command The command's name, for the error.
 * @returns A logger of info and above, to stderr.
 */
export function auditLogger(format: string | undefined, command: string): Logger {
  const chosen = format ?? DEFAULT_RELAY_CONFIG.logFormat;
  if (!(LOG_FORMATS as readonly string[]).includes(chosen)) {
    throw new UsageError(`${command}: bad --log-format "${chosen}": expected one of text, json`);
  }
  return new Logger("info", chosen as LogFormat);
}

/**
 * Opens the registry of `target` beside the relays that use it (a SQLite
 * file shared; a PostgreSQL registry as it is, never migrated), runs `body`
 * on it and closes it. A missing file, another program's database, a
 * database out of reach or a SQL error is one line on stderr and exit code
 * 1, never a stack.
 *
 * @param target Where the registry is.
 * @param body The command's work; returns its exit code.
 * @returns The exit code.
 */
export async function withAdminRegistry(
  target: AdminTarget,
  body: (registry: RegistryStore) => number | Promise<number>,
): Promise<number> {
  const where = "db" in target ? target.db : redactedUrl(target.registry);
  if ("db" in target) {
    try {
      Deno.statSync(target.db);
    } catch {
      console.error(`alphanet relay: cannot open registry ${target.db}: no such file`);
      return 1;
    }
  }
  let registry: RegistryStore | null = null;
  try {
    registry = "db" in target
      ? SqliteRegistryStore.open(target.db, AddressPool.default())
      : await PostgresRegistry.open(target.registry, AddressPool.default(), { migrate: false });
    return await body(registry);
  } catch (error) {
    if (error instanceof AlphaNetError) {
      // Our own words already name the registry: "cannot open registry X: it is another program's…".
      console.error(`alphanet relay: ${oneLine(error)}`);
      return 1;
    }
    // The database's own words ("file is not a database"), one line, no stack: an operator's typo.
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    console.error(`alphanet relay: cannot read registry ${where}: ${why}`);
    return 1;
  } finally {
    await registry?.close();
  }
}

/**
 * Who ran the command, as far as the granted permissions let us see: for
 * the audit lines.
 *
 * @returns `{ uid }`, or nothing where it cannot be read.
 */
export function operator(): { uid?: number } {
  if (Deno.build.os === "windows") return {};
  if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted") return {};
  return { uid: Deno.uid() ?? undefined };
}
