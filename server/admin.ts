/**
 * `server.ts clients ...`: read and manage the registry of a relay without
 * stopping it. SQLite in WAL mode lets these commands run beside the relay;
 * a cluster's PostgreSQL registry (`--registry`) serves them beside every relay.
 *
 * @module
 */

import { parseFlags } from "../flags/parse_args.ts";
import { UsageError } from "../flags/usage_error.ts";
import { formatIpv4, parseIpv4 } from "../protocol/address.ts";
import {
  type AdminTarget,
  adminTarget,
  auditLogger,
  operator,
  targetField,
  withAdminRegistry,
} from "./admin_registry.ts";
import { DEFAULT_RELAY_CONFIG } from "./config.ts";
import type { Logger } from "./log.ts";
import type { ClientKind, ClientRecord } from "./registry.ts";
import { LAPSED_GRACE_MS } from "./registry_postgres_heartbeat.ts";
import type { RegistryStore } from "./registry_store.ts";

/** Usage text of the `clients` subcommand. */
export const ADMIN_USAGE =
  `Usage: deno run -A server.ts clients [list] [--db PATH | --registry URL] [--json]
       deno run -A server.ts clients show VIP [--db PATH | --registry URL] [--json]
       deno run -A server.ts clients release VIP [--db PATH | --registry URL] [--json]

Reads the registry of a relay, running or not:
  list      every client: virtual IP, kind (ip: keyed by real IP; key: by a public key;
            secret: a version 1 identity not yet claimed), first and last seen, online
            now, when its address expires if the relay runs with --address-ttl, and
            the public key of a key client
  show      one client
  release   forget a client, freeing its virtual IP (refused while it is online);
            logs one audit line on stderr

Flags:
  --db PATH             the relay's SQLite registry (default ${DEFAULT_RELAY_CONFIG.db})
  --registry URL        a cluster's PostgreSQL registry instead, postgres://USER@HOST:PORT/DB
  --json                machine-readable output
  --log-format FORMAT   text | json: the audit line's format (default text)
  --help                print this help and exit
`;

/** One client as printed by `--json`. */
interface ClientJson {
  readonly virtualIp: string;
  readonly kind: ClientKind;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly online: boolean;
  /** When the relay frees the address if the client stays away; null: never (or online). */
  readonly expires: string | null;
  /** Kind `key`: its public key, 64 hex digits (public); null for the other kinds. */
  readonly publicKey: string | null;
}

function toJson(record: ClientRecord, ttlMs: number): ClientJson {
  return {
    virtualIp: formatIpv4(record.address),
    kind: record.kind,
    firstSeen: new Date(record.firstSeen).toISOString(),
    lastSeen: new Date(record.lastSeen).toISOString(),
    online: record.online,
    expires: ttlMs > 0 && !record.online ? new Date(record.lastSeen + ttlMs).toISOString() : null,
    publicKey: record.publicKey,
  };
}

/** Widths of the text table's first columns; the timestamps are all one width. */
const IP_WIDTH = 15;
const KIND_WIDTH = 8;
const TIME_WIDTH = "2000-01-01T00:00:00.000Z".length;

const STATE_WIDTH = "offline".length;

/**
 * The text table's header row, aligned with {@linkcode toLine}; the EXPIRES
 * column only when the relay frees addresses (`--address-ttl`); the PUBLIC
 * KEY column, last, only when a key client is listed.
 */
function header(ttlMs: number, keys: boolean): string {
  const columns = [
    "VIRTUAL IP".padEnd(IP_WIDTH),
    "KIND".padEnd(KIND_WIDTH),
    "FIRST SEEN".padEnd(TIME_WIDTH),
    "LAST SEEN".padEnd(TIME_WIDTH),
    "STATE",
  ];
  if (ttlMs > 0) columns.push(columns.pop()!.padEnd(STATE_WIDTH), "EXPIRES");
  if (keys) columns.push(columns.pop()!.padEnd(ttlMs > 0 ? TIME_WIDTH : STATE_WIDTH), "PUBLIC KEY");
  return columns.join("  ");
}

function toLine(client: ClientJson, ttlMs: number, keys: boolean): string {
  const state = client.online ? "online" : "offline";
  const columns = [
    client.virtualIp.padEnd(IP_WIDTH),
    client.kind.padEnd(KIND_WIDTH),
    client.firstSeen.padEnd(TIME_WIDTH),
    client.lastSeen.padEnd(TIME_WIDTH),
    state,
  ];
  if (ttlMs > 0) columns.push(columns.pop()!.padEnd(STATE_WIDTH), client.expires ?? "-");
  if (keys) {
    columns.push(
      columns.pop()!.padEnd(ttlMs > 0 ? TIME_WIDTH : STATE_WIDTH),
      client.publicKey ?? "-",
    );
  }
  return columns.join("  ");
}

/** The table of `clients`, a header row first. */
function table(clients: readonly ClientJson[], ttlMs: number): string {
  const keys = clients.some((client) => client.publicKey !== null);
  return [header(ttlMs, keys), ...clients.map((client) => toLine(client, ttlMs, keys))].join(
    "\n",
  );
}

/**
 * Runs `clients ...` with the arguments after `clients`; resolves to the exit
 * code (0 done, 1 not found or refused, 2 usage). Throws UsageError.
 */
export function runClientsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    allowPositionals: true,
    options: {
      db: { type: "string" },
      registry: { type: "string" },
      json: { type: "boolean" },
      "log-format": { type: "string" },
      help: { type: "boolean" },
    },
  }, "clients");
  if (values.help) {
    console.log(ADMIN_USAGE);
    return Promise.resolve(0);
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
  const audit = auditLogger(values["log-format"], "clients");
  const where = adminTarget(values, "clients");
  return withAdminRegistry(
    where,
    (registry) =>
      runAction(registry, action, address, { json: values.json === true, audit, target: where }),
  );
}

/** How a checked action prints: its output format, and the audit log for releases. */
interface ActionOutput {
  readonly json: boolean;
  readonly audit: Logger;
  readonly target: AdminTarget;
}

/** Runs a checked `clients` action on an open registry; returns the exit code. */
async function runAction(
  registry: RegistryStore,
  action: string,
  address: number,
  { json, audit, target }: ActionOutput,
): Promise<number> {
  const ttlMs = await registry.addressTtlMs();
  if (action === "list") {
    const clients = (await registry.list()).map((record) => toJson(record, ttlMs));
    console.log(json ? JSON.stringify(clients) : table(clients, ttlMs));
    return 0;
  }
  const vip = formatIpv4(address);
  const record = await registry.get(address);
  if (record !== null && action === "show") {
    const client = toJson(record, ttlMs);
    console.log(json ? JSON.stringify(client) : table([client], ttlMs));
    return 0;
  }
  // One statement decides; what is read around it only words the outcome.
  if (action === "release" && await registry.release(address)) {
    const seen = record === null
      ? {}
      : { kind: record.kind, lastSeen: new Date(record.lastSeen).toISOString() };
    audit.log("info", "admin-release", { vip, ...seen, ...targetField(target), ...operator() });
    console.log(json ? JSON.stringify({ released: vip }) : `released ${vip}`);
    return 0;
  }
  const after = await registry.get(address);
  if (after === null) {
    console.error(`alphanet relay: no client has virtual IP ${vip}`);
  } else if (!after.online) {
    // PostgreSQL only: its relay's lease lapsed, but that relay may be cut off and still serve it.
    console.error(
      `alphanet relay: cannot release ${vip}: the relay that holds it stopped beating less than ${
        LAPSED_GRACE_MS / 60_000
      } minutes ago and may still serve it (wait, or delete that relay's row in alphanet.relays)`,
    );
  } else {
    console.error(`alphanet relay: cannot release ${vip}: the client is online now`);
  }
  return 1;
}
