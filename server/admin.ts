/**
 * `server.ts clients ...`: read and manage the registry of a relay without
 * stopping it. SQLite in WAL mode lets these commands run beside the relay.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { formatIpv4, parseIpv4 } from "../protocol/address.ts";
import { AddressPool } from "./address_pool.ts";
import { DEFAULT_RELAY_CONFIG } from "./config.ts";
import { UsageError } from "./flags.ts";
import { type ClientRecord, Registry } from "./registry.ts";

/** Usage text of the `clients` subcommand. */
export const ADMIN_USAGE = `Usage: deno run -A server.ts clients [list] [--db PATH] [--json]
       deno run -A server.ts clients show VIP [--db PATH] [--json]
       deno run -A server.ts clients release VIP [--db PATH] [--json]

Reads the registry of a relay, running or not:
  list      every client: virtual IP, identity kind, first and last seen, online now
  show      one client
  release   forget a client, freeing its virtual IP (refused while it is online)

Flags:
  --db PATH   the relay's SQLite registry (default ${DEFAULT_RELAY_CONFIG.db})
  --json      machine-readable output
  --help      print this help and exit
`;

/** One client as printed by `--json`. */
interface ClientJson {
  readonly virtualIp: string;
  readonly kind: "ip" | "identity";
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly online: boolean;
}

function toJson(record: ClientRecord): ClientJson {
  return {
    virtualIp: formatIpv4(record.address),
    kind: record.kind,
    firstSeen: new Date(record.firstSeen).toISOString(),
    lastSeen: new Date(record.lastSeen).toISOString(),
    online: record.online,
  };
}

function toLine(client: ClientJson): string {
  return [
    client.virtualIp.padEnd(15),
    client.kind.padEnd(8),
    client.firstSeen,
    client.lastSeen,
    client.online ? "online" : "offline",
  ].join("  ");
}

/**
 * Runs `clients ...` with the arguments after `clients`; returns the exit
 * code (0 done, 1 not found or refused, 2 usage). Throws UsageError.
 */
export function runClientsCommand(args: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { db: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean" } },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(ADMIN_USAGE);
    return 0;
  }
  const [action = "list", target, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`Unexpected argument "${extra[0]}"`);
  const db = values.db ?? DEFAULT_RELAY_CONFIG.db;
  try {
    Deno.statSync(db);
  } catch {
    console.error(`alphanet relay: cannot open registry ${db}: no such file`);
    return 1;
  }
  const json = values.json === true;
  using registry = Registry.open(db, AddressPool.default());
  switch (action) {
    case "list": {
      if (target !== undefined) throw new UsageError(`Unexpected argument "${target}"`);
      const clients = registry.list().map(toJson);
      if (json) console.log(JSON.stringify(clients));
      else for (const client of clients) console.log(toLine(client));
      return 0;
    }
    case "show":
    case "release": {
      const address = target === undefined ? null : parseIpv4(target);
      if (address === null) {
        throw new UsageError(`Invalid virtual IP "${target ?? ""}": expected a dotted quad`);
      }
      const record = registry.get(address);
      if (record === null) {
        console.error(`alphanet relay: no client has virtual IP ${target}`);
        return 1;
      }
      if (action === "show") {
        console.log(json ? JSON.stringify(toJson(record)) : toLine(toJson(record)));
        return 0;
      }
      if (record.online) {
        console.error(`alphanet relay: cannot release ${target}: the client is online now`);
        return 1;
      }
      registry.release(address);
      console.log(json ? JSON.stringify({ released: target }) : `released ${target}`);
      return 0;
    }
    default:
      throw new UsageError(`Unknown clients action "${action}": expected list, show or release`);
  }
}
