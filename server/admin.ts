/**
 * `server.ts clients ...`: read and manage the registry of a relay without
 * stopping it. SQLite in WAL mode lets these commands run beside the relay.
 *
 * @module
 */

import { AlphaNetError } from "../errors.ts";
import { oneLine } from "../flags/one_line.ts";
import { parseFlags } from "../flags/parse_args.ts";
import { UsageError } from "../flags/usage_error.ts";
import { formatIpv4, parseIpv4 } from "../protocol/address.ts";
import { AddressPool } from "./address_pool.ts";
import { DEFAULT_RELAY_CONFIG, LOG_FORMATS, type LogFormat } from "./config.ts";
import { Logger } from "./log.ts";
import { type ClientRecord, Registry } from "./registry.ts";

/** Usage text of the `clients` subcommand. */
export const ADMIN_USAGE = `Usage: deno run -A server.ts clients [list] [--db PATH] [--json]
       deno run -A server.ts clients show VIP [--db PATH] [--json]
       deno run -A server.ts clients release VIP [--db PATH] [--json]

Reads the registry of a relay, running or not:
  list      every client: virtual IP, identity kind, first and last seen, online now,
            and when its address expires if the relay runs with --address-ttl
  show      one client
  release   forget a client, freeing its virtual IP (refused while it is online);
            logs one audit line on stderr

Flags:
  --db PATH             the relay's SQLite registry (default ${DEFAULT_RELAY_CONFIG.db})
  --json                machine-readable output
  --log-format FORMAT   text | json: the audit line's format (default text)
  --help                print this help and exit
`;

/** One client as printed by `--json`. */
interface ClientJson {
  readonly virtualIp: string;
  readonly kind: "ip" | "identity";
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly online: boolean;
  /** When the relay frees the address if the client stays away; null: never (or online). */
  readonly expires: string | null;
}

function toJson(record: ClientRecord, ttlMs: number): ClientJson {
  return {
    virtualIp: formatIpv4(record.address),
    kind: record.kind,
    firstSeen: new Date(record.firstSeen).toISOString(),
    lastSeen: new Date(record.lastSeen).toISOString(),
    online: record.online,
    expires: ttlMs > 0 && !record.online ? new Date(record.lastSeen + ttlMs).toISOString() : null,
  };
}

/** Widths of the text table's first columns; the timestamps are all one width. */
const IP_WIDTH = 15;
const KIND_WIDTH = 8;
const TIME_WIDTH = "2000-01-01T00:00:00.000Z".length;

const STATE_WIDTH = "offline".length;

/**
 * The text table's header row, aligned with {@linkcode toLine}; the EXPIRES
 * column only when the relay frees addresses (`--address-ttl`).
 */
function header(ttlMs: number): string {
  const columns = [
    "VIRTUAL IP".padEnd(IP_WIDTH),
    "KIND".padEnd(KIND_WIDTH),
    "FIRST SEEN".padEnd(TIME_WIDTH),
    "LAST SEEN".padEnd(TIME_WIDTH),
    "STATE",
  ];
  if (ttlMs > 0) columns.push(columns.pop()!.padEnd(STATE_WIDTH), "EXPIRES");
  return columns.join("  ");
}

function toLine(client: ClientJson, ttlMs: number): string {
  const state = client.online ? "online" : "offline";
  const columns = [
    client.virtualIp.padEnd(IP_WIDTH),
    client.kind.padEnd(KIND_WIDTH),
    client.firstSeen.padEnd(TIME_WIDTH),
    client.lastSeen.padEnd(TIME_WIDTH),
    ttlMs > 0 ? state.padEnd(STATE_WIDTH) : state,
  ];
  if (ttlMs > 0) columns.push(client.expires ?? "-");
  return columns.join("  ");
}

/**
 * Runs `clients ...` with the arguments after `clients`; returns the exit
 * code (0 done, 1 not found or refused, 2 usage). Throws UsageError.
 */
export function runClientsCommand(args: string[]): number {
  const { values, positionals } = parseFlags({
    args,
    allowPositionals: true,
    options: {
      db: { type: "string" },
      json: { type: "boolean" },
      "log-format": { type: "string" },
      help: { type: "boolean" },
    },
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
  const format = values["log-format"] ?? DEFAULT_RELAY_CONFIG.logFormat;
  if (!(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`clients: bad --log-format "${format}": expected one of text, json`);
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
    const audit = new Logger("info", format as LogFormat);
    return runAction(registry, action, address, { json: values.json === true, audit, db });
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

/** How a checked action prints: its output format, and the audit log for releases. */
interface ActionOutput {
  readonly json: boolean;
  readonly audit: Logger;
  readonly db: string;
}

/** Runs a checked `clients` action on an open registry; returns the exit code. */
function runAction(
  registry: Registry,
  action: string,
  address: number,
  { json, audit, db }: ActionOutput,
): number {
  const ttlMs = registry.addressTtlMs;
  if (action === "list") {
    const clients = registry.list().map((record) => toJson(record, ttlMs));
    if (json) console.log(JSON.stringify(clients));
    else console.log([header(ttlMs), ...clients.map((client) => toLine(client, ttlMs))].join("\n"));
    return 0;
  }
  const vip = formatIpv4(address);
  const record = registry.get(address);
  if (record !== null && action === "show") {
    const client = toJson(record, ttlMs);
    console.log(json ? JSON.stringify(client) : `${header(ttlMs)}\n${toLine(client, ttlMs)}`);
    return 0;
  }
  // One statement decides; what is read around it only words the outcome.
  if (action === "release" && registry.release(address)) {
    const seen = record === null
      ? {}
      : { kind: record.kind, lastSeen: new Date(record.lastSeen).toISOString() };
    audit.log("info", "admin-release", { vip, ...seen, db, ...operator() });
    console.log(json ? JSON.stringify({ released: vip }) : `released ${vip}`);
    return 0;
  }
  if (registry.get(address) === null) {
    console.error(`alphanet relay: no client has virtual IP ${vip}`);
  } else {
    console.error(`alphanet relay: cannot release ${vip}: the client is online now`);
  }
  return 1;
}

/** Who ran the command, as far as the granted permissions let us see. */
function operator(): { uid?: number } {
  if (Deno.build.os === "windows") return {};
  if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted") return {};
  return { uid: Deno.uid() ?? undefined };
}
