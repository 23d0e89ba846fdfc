/**
 * The relay's command line: flags to {@linkcode RelayOptions}, with usage.
 * Numeric flags come from one table, so usage, parsing and validation agree.
 *
 * @module
 */

import { parseFlags } from "../flags/parse_args.ts";
import { parsePort } from "../flags/port.ts";
import { UsageError } from "../flags/usage_error.ts";
import { parseCidr } from "../protocol/address.ts";
import { parseDuration } from "./duration.ts";
import {
  DEFAULT_RELAY_CONFIG,
  isPostgresUrl,
  JOIN_MODES,
  LOG_FORMATS,
  LOG_LEVELS,
  redactedNatsUrls,
  redactedUrl,
  type RelayConfig,
  type RelayOptions,
} from "./config.ts";

/** A numeric flag: seconds on the command line become milliseconds in the config. */
interface NumericFlag {
  readonly flag: string;
  readonly field: keyof RelayConfig;
  readonly unit: "seconds" | "count";
  /** Whether 0 is allowed (it means "off" for these). */
  readonly zeroMeansOff: boolean;
  readonly help: string;
}

const MS_PER_SECOND = 1000;

const NUMERIC_FLAGS: readonly NumericFlag[] = [
  {
    flag: "keepalive",
    field: "keepaliveMs",
    unit: "seconds",
    zeroMeansOff: false,
    help: "ping a client quiet this long",
  },
  {
    flag: "peer-timeout",
    field: "peerTimeoutMs",
    unit: "seconds",
    zeroMeansOff: false,
    help: "close a client silent this long",
  },
  {
    flag: "socket-idle-timeout",
    field: "socketIdleTimeoutMs",
    unit: "seconds",
    zeroMeansOff: true,
    help: "close a virtual connection without data this long, 0 = never",
  },
  {
    flag: "request-timeout",
    field: "requestTimeoutMs",
    unit: "seconds",
    zeroMeansOff: false,
    help: "fail a request its destination does not answer",
  },
  {
    flag: "hello-timeout",
    field: "helloTimeoutMs",
    unit: "seconds",
    zeroMeansOff: false,
    help: "close a link that has not completed its handshake",
  },
  {
    flag: "max-clients",
    field: "maxClients",
    unit: "count",
    zeroMeansOff: false,
    help: "links (TCP and WebSocket) held at once; more get ServerFull",
  },
  {
    flag: "max-connections-per-client",
    field: "maxConnectionsPerClient",
    unit: "count",
    zeroMeansOff: false,
    help: "virtual connections per client",
  },
  {
    flag: "max-pending-per-client",
    field: "maxPendingPerClient",
    unit: "count",
    zeroMeansOff: false,
    help: "requests in flight per client",
  },
  {
    flag: "request-rate",
    field: "requestRate",
    unit: "count",
    zeroMeansOff: false,
    help: "requests per second per client",
  },
  {
    flag: "request-burst",
    field: "requestBurst",
    unit: "count",
    zeroMeansOff: false,
    help: "requests a client may send at once above the rate",
  },
  {
    flag: "max-buffered-bytes",
    field: "maxBufferedBytes",
    unit: "count",
    zeroMeansOff: false,
    help: "bytes of data the relay holds for all clients; senders slow down beyond",
  },
  {
    flag: "max-buffered-bytes-per-client",
    field: "maxBufferedBytesPerClient",
    unit: "count",
    zeroMeansOff: false,
    help: "bytes of data the relay holds for one receiving client",
  },
  {
    flag: "max-bytes-per-sec",
    field: "maxBytesPerSec",
    unit: "count",
    zeroMeansOff: true,
    help: "bytes per second read from one client, 0 = unlimited",
  },
  {
    flag: "frame-timeout",
    field: "frameTimeoutMs",
    unit: "seconds",
    zeroMeansOff: false,
    help: "close a link whose started frame is not complete this long after",
  },
  {
    flag: "max-links-per-ip",
    field: "maxLinksPerIp",
    unit: "count",
    zeroMeansOff: true,
    help: "links from one source IP; more get ServerFull, 0 = no limit",
  },
  {
    flag: "max-handshakes-per-ip",
    field: "maxHandshakesPerIp",
    unit: "count",
    zeroMeansOff: true,
    help: "links from one source IP still in their handshake; more get ServerFull, 0 = no limit",
  },
  {
    flag: "max-requests-per-ip",
    field: "maxRequestsPerIp",
    unit: "count",
    zeroMeansOff: true,
    help: "requests per second of all links of one source IP, bursts of 2x; 0 = no limit",
  },
  {
    flag: "max-new-identities-per-ip",
    field: "maxNewIdentitiesPerIp",
    unit: "count",
    zeroMeansOff: true,
    help: "new addresses one source IP may register an hour (RateLimited); 0 = no limit",
  },
];

function defaultText(entry: NumericFlag): string {
  const value = DEFAULT_RELAY_CONFIG[entry.field] as number;
  return String(entry.unit === "seconds" ? value / MS_PER_SECOND : value);
}

/** Usage text printed by `--help`. */
export const USAGE = `AlphaNET relay: permanent virtual IPv4 addresses and virtual sockets over TCP.

Usage: deno run -A server.ts [flags]

Flags:
${
  [
    ["--hostname HOST", `interface to listen on (default ${DEFAULT_RELAY_CONFIG.hostname})`],
    ["--port PORT", `TCP port, 0 for any free port (default ${DEFAULT_RELAY_CONFIG.port})`],
    [
      "--admin-port PORT",
      "serve /livez, /readyz, /metrics over HTTP on this port, 0 for any free port (default: off)",
    ],
    [
      "--websocket-port PORT",
      "also serve clients over WebSocket (ws://HOST:PORT/, wss:// with --tls-cert) on this port, 0 for any free port (default: off)",
    ],
    [
      "--admin-hostname HOST",
      `interface of --admin-port (default ${DEFAULT_RELAY_CONFIG.adminHostname})`,
    ],
    ["--db PATH", `SQLite registry file, or :memory: (default ${DEFAULT_RELAY_CONFIG.db})`],
    [
      "--registry URL",
      "keep the registry in PostgreSQL instead, postgres://USER@HOST:PORT/DB, shared by every relay of a cluster (password in the URL or PGPASSWORD)",
    ],
    [
      "--nats URL",
      "cluster: NATS servers for presence, nats://HOST:PORT[,nats://...] (with --mesh-port, --mesh-key-file, --registry)",
    ],
    [
      "--mesh-port PORT",
      "cluster: TCP port of the links to the other relays, on --hostname, 0 for any free port",
    ],
    [
      "--mesh-key-file FILE",
      "cluster: file of the secret the relays share, 64 hex digits (openssl rand -hex 32)",
    ],
    [
      "--advertise HOST[:PORT]",
      "cluster: where other relays dial to reach --mesh-port (default --hostname unless 0.0.0.0 or ::)",
    ],
    ["--tls-cert FILE", "serve TLS with this PEM certificate chain (with --tls-key)"],
    ["--tls-key FILE", "the PEM private key of --tls-cert; clients then need --tls"],
    [
      "--mesh-ca-file FILE",
      "cluster with --tls-cert: PEM CA trusted for the other relays' links (default: the system's)",
    ],
    [
      "--vip-range CIDR",
      "draw virtual IPs from this block only (default: all public unicast IPv4)",
    ],
    ["--log-level LEVEL", `${LOG_LEVELS.join(" | ")} (default ${DEFAULT_RELAY_CONFIG.logLevel})`],
    [
      "--log-format FORMAT",
      `text | json: one line per event (default ${DEFAULT_RELAY_CONFIG.logFormat})`,
    ],
    [
      "--ip-identities on|off",
      "let clients without an identity join, keyed by real IP (default on)",
    ],
    [
      "--join open|token",
      `who may register a new address: anyone, or only with a join token (default ${DEFAULT_RELAY_CONFIG.join})`,
    ],
    [
      "--address-ttl DURATION",
      "free an address offline this long, e.g. 90d or 12h; 0 = never (default 0)",
    ],
    ...NUMERIC_FLAGS.map((entry) => [
      `--${entry.flag} ${entry.unit === "seconds" ? "SEC" : "N"}`,
      `${entry.help} (default ${defaultText(entry)})`,
    ]),
    ["--help", "print this help and exit"],
  ].map(([name, help]) => `  ${name.padEnd(34)} ${help}`).join("\n")
}

Times are in seconds and may have decimals. On start the relay prints one line:
listening on HOST:PORT
with --websocket-port another one (websocket (tls) on HOST:PORT with --tls-cert):
websocket on HOST:PORT
and with --admin-port a last one:
admin on HOST:PORT

Registry commands (run beside a live relay): deno run -A server.ts clients --help
Join tokens (for --join token):                deno run -A server.ts tokens --help
`;

/** The PEM files of `--tls-cert` and `--tls-key`, as given: the caller reads them. */
export interface TlsFiles {
  /** Path of the certificate chain. */
  readonly cert: string;
  /** Path of the private key. */
  readonly key: string;
  /** Path of `--mesh-ca-file`: the CA trusted for other relays' links; null: the system's. */
  readonly meshCa: string | null;
}

/** The outcome of parsing: options to run with, or a request for help. */
export type ParsedFlags = { readonly help: true } | {
  readonly help: false;
  readonly options: RelayOptions;
  /** The TLS files to read into `options.tls`, or null for plain TCP. */
  readonly tlsFiles: TlsFiles | null;
};

/** Parses the relay's flags; throws {@linkcode UsageError} on anything unknown or invalid. */
export function parseRelayFlags(args: string[]): ParsedFlags {
  const { values } = parseFlags({
    args,
    allowPositionals: false,
    options: {
      hostname: { type: "string" },
      port: { type: "string" },
      "admin-port": { type: "string" },
      "websocket-port": { type: "string" },
      "admin-hostname": { type: "string" },
      db: { type: "string" },
      "vip-range": { type: "string" },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      "ip-identities": { type: "string" },
      join: { type: "string" },
      "address-ttl": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "mesh-ca-file": { type: "string" },
      registry: { type: "string" },
      nats: { type: "string" },
      "mesh-port": { type: "string" },
      "mesh-key-file": { type: "string" },
      advertise: { type: "string" },
      help: { type: "boolean" },
      ...Object.fromEntries(
        NUMERIC_FLAGS.map((entry) => [entry.flag, { type: "string" as const }]),
      ),
    },
  }) as { values: Record<string, string | boolean | undefined> };
  if (values.help) return { help: true };
  const options: Record<string, unknown> = {};
  if (values.hostname !== undefined) options.hostname = values.hostname as string;
  if (values.port !== undefined) {
    options.port = parsePort(values.port as string, "--port", { min: 0 });
  }
  if (values["admin-port"] !== undefined) {
    options.adminPort = parsePort(values["admin-port"] as string, "--admin-port", { min: 0 });
  }
  if (values["websocket-port"] !== undefined) {
    options.websocketPort = parsePort(values["websocket-port"] as string, "--websocket-port", {
      min: 0,
    });
  }
  if (values["admin-hostname"] !== undefined) {
    options.adminHostname = values["admin-hostname"] as string;
  }
  if (values.db !== undefined) options.db = values.db as string;
  if (values["vip-range"] !== undefined) {
    const text = values["vip-range"] as string;
    if (parseCidr(text) === null) {
      throw new UsageError(
        `bad --vip-range "${text}": expected a CIDR block such as 10.0.0.0/8`,
      );
    }
    options.vipRange = text;
  }
  if (values["log-level"] !== undefined) {
    options.logLevel = parseChoice("log-level", values["log-level"] as string, LOG_LEVELS);
  }
  if (values["log-format"] !== undefined) {
    options.logFormat = parseChoice("log-format", values["log-format"] as string, LOG_FORMATS);
  }
  if (values["ip-identities"] !== undefined) {
    const choice = parseChoice("ip-identities", values["ip-identities"] as string, ON_OFF);
    options.ipIdentities = choice === "on";
  }
  if (values.join !== undefined) {
    options.join = parseChoice("join", values.join as string, JOIN_MODES);
  }
  if (values["address-ttl"] !== undefined) {
    const text = values["address-ttl"] as string;
    const ms = parseDuration(text);
    if (ms === null) {
      throw new UsageError(`bad --address-ttl "${text}": expected a duration such as 90d or 12h`);
    }
    options.addressTtlMs = ms;
  }
  parseClusterFlags(values, options);
  for (const entry of NUMERIC_FLAGS) {
    const text = values[entry.flag];
    if (typeof text === "string") options[entry.field] = parseNumeric(entry, text);
  }
  return { help: false, options: options as RelayOptions, tlsFiles: parseTlsFiles(values) };
}

/**
 * `--registry`, `--nats`, `--mesh-port`, `--mesh-key-file` and
 * `--advertise`, each on its own; their combinations are checked by
 * `resolveRelayConfig`. The mesh key is read here, and never echoed.
 */
function parseClusterFlags(
  values: Record<string, string | boolean | undefined>,
  options: Record<string, unknown>,
): void {
  const registry = registryFlag(values, "");
  if (registry !== undefined) options.registry = registry;
  const nats = values.nats as string | undefined;
  if (nats !== undefined) {
    if (!nats.split(",").every((server) => /^nats:\/\/[^\s/,]+$/.test(server))) {
      throw new UsageError(
        `bad --nats "${redactedNatsUrls(nats)}": expected nats://HOST:PORT[,nats://HOST:PORT]`,
      );
    }
    options.nats = nats;
  }
  if (values["mesh-port"] !== undefined) {
    options.meshPort = parsePort(values["mesh-port"] as string, "--mesh-port", { min: 0 });
  }
  const keyFile = values["mesh-key-file"] as string | undefined;
  if (keyFile !== undefined) options.meshKey = readMeshKey(keyFile);
  if (values.advertise !== undefined) options.advertise = values.advertise as string;
}

/**
 * `--registry`, checked: a PostgreSQL URL, and not with `--db`. Throws
 * {@linkcode UsageError}, its message after `prefix` (a command's name and
 * ": ", or nothing for the relay), never with the URL's password.
 *
 * @param values The parsed flags.
 * @param prefix What the message starts with.
 * @returns The URL, or undefined when the flag was not given.
 */
export function registryFlag(
  values: { db?: unknown; registry?: unknown },
  prefix: string,
): string | undefined {
  const registry = values.registry as string | undefined;
  if (registry === undefined) return undefined;
  if (values.db !== undefined) {
    throw new UsageError(`${prefix}--registry and --db are alternatives`);
  }
  if (!isPostgresUrl(registry)) {
    throw new UsageError(
      `${prefix}bad --registry "${redactedUrl(registry)}": expected postgres://USER@HOST:PORT/DB`,
    );
  }
  return registry;
}

/** The 64 hex digits of a mesh key file (surrounding whitespace trimmed), lowercase. */
function readMeshKey(path: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    const why = error instanceof Error ? error.name : "unreadable";
    throw new UsageError(`cannot read --mesh-key-file ${path}: ${why}`);
  }
  // Like a private key: anyone who reads it can join the relay links (null mode: Windows).
  const mode = Deno.statSync(path).mode;
  if (mode !== null && (mode & 0o077) !== 0) {
    throw new UsageError(
      `--mesh-key-file ${path} is open to other users (mode ${
        (mode & 0o777).toString(8).padStart(4, "0")
      }): chmod 600 ${path}`,
    );
  }
  const key = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(key)) {
    throw new UsageError(
      `bad --mesh-key-file ${path}: expected 64 hex digits (32 random bytes: openssl rand -hex 32)`,
    );
  }
  return key.toLowerCase();
}

/** `--tls-cert` and `--tls-key`: both or neither. */
function parseTlsFiles(values: Record<string, string | boolean | undefined>): TlsFiles | null {
  const cert = values["tls-cert"] as string | undefined;
  const key = values["tls-key"] as string | undefined;
  const meshCa = (values["mesh-ca-file"] as string | undefined) ?? null;
  if (meshCa !== null && cert === undefined) {
    throw new UsageError(
      "--mesh-ca-file needs --tls-cert (relay links use TLS when the relay does)",
    );
  }
  if (cert === undefined && key === undefined) return null;
  if (cert === undefined) throw new UsageError("--tls-key needs --tls-cert");
  if (key === undefined) throw new UsageError("--tls-cert needs --tls-key");
  return { cert, key, meshCa };
}

/** `text` if it is one of `choices`; else a UsageError naming the flag and the choices. */
/** The values of an on/off flag. */
const ON_OFF = ["on", "off"] as const;

function parseChoice<T extends string>(flag: string, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`bad --${flag} "${text}": expected one of ${choices.join(", ")}`);
  }
  return text as T;
}

function parseNumeric(entry: NumericFlag, text: string): number {
  const pattern = entry.unit === "seconds" ? /^[0-9]+(\.[0-9]+)?$/ : /^[0-9]+$/;
  const value = Number(text);
  const expected = entry.unit === "seconds" ? "a number of seconds" : "a whole number";
  if (!pattern.test(text) || !Number.isSafeInteger(Math.round(value))) {
    throw new UsageError(`bad --${entry.flag} "${text}": expected ${expected}`);
  }
  if (value === 0 && !entry.zeroMeansOff) {
    throw new UsageError(`bad --${entry.flag} "${text}": expected more than 0`);
  }
  return entry.unit === "seconds" ? Math.round(value * MS_PER_SECOND) : value;
}
