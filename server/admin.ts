/**
 * `server.ts clients ...`: read and manage the registry of a relay without
 * stopping it. SQLite in WAL mode lets these commands run beside the relay.
 *
 * @module
 */

import { parseFlags } from "../flags/parse_args.ts";
import { UsageError } from "../flags/usage_error.ts";
import { formatIpv4, parseIpv4 } from "../protocol/address.ts";
import { AddressPool } from "./address_pool.ts";
import { DEFAULT_RELAY_CONFIG } from "./config.ts";
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

/** Widths of the text table's first columns; the timestamps are all one width. */
const IP_WIDTH = 15;
const KIND_WIDTH = 8;
const TIME_WIDTH = "2000-01-01T00:00:00.000Z".length;

/** The text table's header row, aligned with {@linkcode toLine}. */
const HEADER = [
  "VIRTUAL IP".padEnd(IP_WIDTH),
  "KIND".padEnd(KIND_WIDTH),
  "FIRST SEEN".padEnd(TIME_WIDTH),
  "LAST SEEN".padEnd(TIME_WIDTH),
  "STATE",
].join("  ");

function toLine(client: ClientJson): string {
  return [
    client.virtualIp.padEnd(IP_WIDTH),
    client.kind.padEnd(KIND_WIDTH),
    client.firstSeen.padEnd(TIME_WIDTH),
    client.lastSeen.padEnd(TIME_WIDTH),
    client.online ? "online" : "offline",
  ].join("  ");
}

/**
 * Runs `clients ...` with the arguments after `clients`; returns the exit
 * code (0 done, 1 not found or refused, 2 usage). Throws UsageError.
 */
export function runClientsCommand(args: string[]): number {
  const { values, positionals } = parseFlags({
    args,
    allowPositionals: true,
    options: { db: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean" } },
  }, "clients");
  if (values.help) {
    console.log(ADMIN_USAGE);
    return 0;
  }
  const [action = "list", target, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`clients: unexpected argument "${extra[0]}"`);
  if (!["list", "show", "release"].includes(action)) {
    throw new UsageError(`clients: unknown action "${action}": expected list, show or release`);
  }
  if (action === "list" && target !== undefined) {
    throw new UsageError(`clients list: unexpected argument "${target}"`);
  }
  const address = action === "list" ? 0 : parseIpv4(target ?? "");
  if (address === null) {
    throw new UsageError(
      `clients ${action}: bad virtual IP "${target ?? ""}": expected a dotted quad`,
    );
  }
  const db = values.db ?? DEFAULT_RELAY_CONFIG.db;
  try {
    Deno.statSync(db);
  } catch {
    console.error(`alphanet relay: cannot open registry ${db}: no such file`);
    return 1;
  }
  try {
    using registry = Registry.open(db, AddressPool.default());
    return runAction(registry, action, address, values.json === true);
  } catch (error) {
    // SQLite's own words ("file is not a database"), one line, no stack: an operator's typo.
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    console.error(`alphanet relay: cannot read registry ${db}: ${why}`);
    return 1;
  }
}

/** Runs a checked `clients` action on an open registry; returns the exit code. */
function runAction(registry: Registry, action: string, address: number, json: boolean): number {
  if (action === "list") {
    const clients = registry.list().map(toJson);
    if (json) console.log(JSON.stringify(clients));
    else console.log([HEADER, ...clients.map(toLine)].join("\n"));
    return 0;
  }
  const vip = formatIpv4(address);
  const record = registry.get(address);
  if (record === null) {
    console.error(`alphanet relay: no client has virtual IP ${vip}`);
    return 1;
  }
  if (action === "show") {
    console.log(json ? JSON.stringify(toJson(record)) : `${HEADER}\n${toLine(toJson(record))}`);
    return 0;
  }
  if (record.online) {
    console.error(`alphanet relay: cannot release ${vip}: the client is online now`);
    return 1;
  }
  registry.release(address);
  console.log(json ? JSON.stringify({ released: vip }) : `released ${vip}`);
  return 0;
}
