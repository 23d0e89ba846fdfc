/**
 * What the registry commands (`clients`, `tokens`) share: opening the
 * registry beside a running relay (shared, never the relay's lock), one-line
 * errors, the audit logger and who ran the command.
 *
 * @module
 */

import { AlphaNetError } from "../errors.ts";
import { oneLine } from "../flags/one_line.ts";
import { UsageError } from "../flags/usage_error.ts";
import { AddressPool } from "./address_pool.ts";
import { DEFAULT_RELAY_CONFIG, LOG_FORMATS, type LogFormat } from "./config.ts";
import { Logger } from "./log.ts";
import { Registry } from "./registry.ts";

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
 * Opens the registry `db` shared (beside a relay that holds it), runs
 * `body` on it and closes it. A missing file, another program's database or
 * a SQLite error is one line on stderr and exit code 1, never a stack.
 *
 * @param db The registry file.
 * @param body The command's work; returns its exit code.
 * @returns The exit code.
 */
export async function withAdminRegistry(
  db: string,
  body: (registry: Registry) => number | Promise<number>,
): Promise<number> {
  try {
    Deno.statSync(db);
  } catch {
    console.error(`alphanet relay: cannot open registry ${db}: no such file`);
    return 1;
  }
  try {
    using registry = Registry.open(db, AddressPool.default());
    return await body(registry);
  } catch (error) {
    if (error instanceof AlphaNetError) {
      // Our own words already name the file: "cannot open registry X: it is another program's…".
      console.error(`alphanet relay: ${oneLine(error)}`);
      return 1;
    }
    // SQLite's own words ("file is not a database"), one line, no stack: an operator's typo.
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    console.error(`alphanet relay: cannot read registry ${db}: ${why}`);
    return 1;
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
