/**
 * Relay settings: one options type, its defaults in one constant, validated
 * in one place.
 *
 * @module
 */

import { splitHostPort } from "./host_port.ts";
import { bytesOfHex } from "./registry_key.ts";
import { DEFAULT_RELAY_PORT } from "../protocol/constants.ts";

/**
 * The relay's log levels, most verbose first: a level logs its own lines and
 * those of every level after it; `"silent"` logs nothing.
 *
 * @example Check a level read from the environment
 * ```ts
 * import { LOG_LEVELS, type LogLevel } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * function isLogLevel(value: string): value is LogLevel {
 *   return (LOG_LEVELS as readonly string[]).includes(value);
 * }
 * assert.ok(isLogLevel("warn"));
 * assert.ok(!isLogLevel("loud"));
 * ```
 */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;

/**
 * One of {@linkcode LOG_LEVELS}, as {@linkcode RelayConfig.logLevel} takes it.
 *
 * @example Compare verbosity
 * ```ts
 * import { LOG_LEVELS, type LogLevel } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * const level: LogLevel = "debug";
 * assert.ok(LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf("info"));
 * ```
 */
export type LogLevel = typeof LOG_LEVELS[number];

/**
 * The relay's log line formats: human-readable `key=value` text, or one JSON
 * object per line for log collectors.
 *
 * @example Every format the relay accepts
 * ```ts
 * import { LOG_FORMATS } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(LOG_FORMATS, ["text", "json"]);
 * ```
 */
export const LOG_FORMATS = ["text", "json"] as const;

/**
 * One of {@linkcode LOG_FORMATS}, as {@linkcode RelayConfig.logFormat} takes it.
 *
 * @example Log JSON lines
 * ```ts
 * import { type LogFormat, type RelayOptions } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * const format: LogFormat = "json";
 * const options: RelayOptions = { logFormat: format };
 * assert.equal(options.logFormat, "json");
 * ```
 */
export type LogFormat = typeof LOG_FORMATS[number];

/**
 * Who may register a new address at the relay: `"open"`, anyone; `"token"`,
 * only a client whose Proof carries a valid join token (`server.ts tokens
 * create` makes them). A key already registered never needs one.
 *
 * @example Every join mode the relay accepts
 * ```ts
 * import { JOIN_MODES } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(JOIN_MODES, ["open", "token"]);
 * ```
 */
export const JOIN_MODES = ["open", "token"] as const;

/**
 * One of {@linkcode JOIN_MODES}, as {@linkcode RelayConfig.join} takes it.
 *
 * @example A relay only token holders can join
 * ```ts
 * import type { JoinMode, RelayOptions } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * const join: JoinMode = "token";
 * const options: RelayOptions = { join };
 * assert.equal(options.join, "token");
 * ```
 */
export type JoinMode = typeof JOIN_MODES[number];

/**
 * The certificate chain and private key a relay serves TLS with, both PEM
 * text as `Deno.listenTls` takes them.
 *
 * @example Options of a relay that serves TLS
 * ```ts
 * import type { RelayOptions, RelayTls } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * // In production: Deno.readTextFileSync("relay.crt") and ("relay.key").
 * const tls: RelayTls = {
 *   cert: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
 *   key: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
 * };
 * const options: RelayOptions = { port: 443, tls };
 * assert.ok(options.tls?.cert.startsWith("-----BEGIN CERTIFICATE-----"));
 * ```
 */
export interface RelayTls {
  /** Certificate chain (PEM), the relay's own certificate first. */
  cert: string;
  /** Private key (PEM) of the first certificate: PKCS#8, RSA or EC. */
  key: string;
}

/**
 * Everything a relay can be told, each field with its default in
 * {@linkcode DEFAULT_RELAY_CONFIG}; `Relay.start` takes any subset of it as
 * {@linkcode RelayOptions}.
 *
 * @example A complete configuration from the defaults
 * ```ts
 * import { DEFAULT_RELAY_CONFIG, type RelayConfig } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * const config: RelayConfig = { ...DEFAULT_RELAY_CONFIG, vipRange: "100.64.0.0/10" };
 * assert.equal(config.port, 1337);
 * assert.equal(config.vipRange, "100.64.0.0/10");
 * ```
 */
export interface RelayConfig {
  /** Interface to listen on. @default {"0.0.0.0"} */
  hostname: string;
  /** TCP port; 0 picks a free one. @default {1337} */
  port: number;
  /**
   * Serve the relay protocol over TLS with this certificate and key (clients
   * then connect with `tls: true`); null for plain TCP. @default {null}
   */
  tls: RelayTls | null;
  /**
   * TCP port of the operations endpoint (`/livez`, `/readyz`, `/metrics`
   * over plain HTTP); 0 picks a free one, null serves none. @default {null}
   */
  adminPort: number | null;
  /** Interface the operations endpoint listens on. @default {"127.0.0.1"} */
  adminHostname: string;
  /**
   * TCP port of the WebSocket carrier (`ws://HOST:PORT/`, or `wss://` with
   * `tls`), on `hostname`; 0 picks a free one, null serves none. Its links
   * are clients like TCP ones, and count against the same limits. @default {null}
   */
  websocketPort: number | null;
  /**
   * Whether the relay logs any promise rejection nobody handled, and any
   * exception thrown outside a promise (a dependency's timer), in the whole
   * process, and keeps running instead of letting Deno end the process. For
   * a process that is only a relay (`server.ts` turns it on); an application
   * that embeds a relay keeps its own handling. @default {false}
   */
  guardRejections: boolean;
  /** SQLite file of the registry, or ":memory:". @default {"./alphanet.db"} */
  db: string;
  /** CIDR the virtual IPs are drawn from; null for all public unicast IPv4. @default {null} */
  vipRange: string | null;
  /** Log verbosity. @default {"info"} */
  logLevel: LogLevel;
  /** Log line format. @default {"text"} */
  logFormat: LogFormat;
  /**
   * Whether a client without an identity may join, keyed by its real IP.
   * Anyone behind the same NAT can take such an address; `false` refuses
   * those clients with `InvalidIdentity`. @default {true}
   */
  ipIdentities: boolean;
  /**
   * Who may register a new address: anyone (`"open"`), or only a client
   * with a join token (`"token"`: others get `JoinTokenRequired`); a key
   * already registered reconnects without one. @default {"open"}
   */
  join: JoinMode;
  /**
   * A link that has not completed its handshake (a WebSocket's HTTP upgrade,
   * Hello, Proof, VirtualIP) this long is closed (HelloTimeout). @default {10000}
   */
  helloTimeoutMs: number;
  /** The relay pings a client it has not heard from this long. @default {15000} */
  keepaliveMs: number;
  /** A client the relay has not heard from this long is closed (PeerTimeout). @default {45000} */
  peerTimeoutMs: number;
  /** A virtual connection with no data either way this long is closed (Idle); 0 = never. @default {0} */
  socketIdleTimeoutMs: number;
  /** Links, TCP and WebSocket (handshake done or not), the relay holds; more are refused (ServerFull). @default {16384} */
  maxClients: number;
  /** Status, connection and echo requests per second per client (token bucket): enough for 5,000 connects a second. @default {10000} */
  requestRate: number;
  /** Requests a client may send at once above the rate. @default {20000} */
  requestBurst: number;
  /** Bytes per second the relay reads from one client; 0 = unlimited. @default {0} */
  maxBytesPerSec: number;
  /** A request whose destination does not answer this long fails with Timeout. @default {10000} */
  requestTimeoutMs: number;
  /** Requests one client may have in flight. @default {256} */
  maxPendingPerClient: number;
  /** Virtual connections one client may have open. @default {4096} */
  maxConnectionsPerClient: number;
  /**
   * Data the relay holds for one receiving client: credit given to senders
   * into it plus data queued to it. Senders get less credit (never under
   * 16 KiB per connection) instead of the relay queueing more. @default {67108864}
   */
  maxBufferedBytesPerClient: number;
  /** Data the relay holds for all clients together, counted as per client. @default {1073741824} */
  maxBufferedBytes: number;
  /** Control bytes (beyond data within credit) queued to a client before it counts as a slow consumer. @default {1048576} */
  maxQueuedControlBytes: number;
  /** Kernel accept backlog; the default 511 drops connect bursts. @default {4096} */
  tcpBacklog: number;
  /**
   * A frame whose first byte has arrived must be complete this long after it
   * (PeerTimeout): trickled bytes do not keep a link alive. @default {10000}
   */
  frameTimeoutMs: number;
  /** Links (TCP and WebSocket) from one source IP, handshake done or not (ServerFull); 0 = no limit. @default {1024} */
  maxLinksPerIp: number;
  /** Links from one source IP that have not completed the handshake (ServerFull); 0 = no limit. @default {64} */
  maxHandshakesPerIp: number;
  /** Status, connection and echo requests per second shared by all links of one source IP, bursts of twice that (RateLimited); 0 = no limit. @default {20000} */
  maxRequestsPerIp: number;
  /**
   * New addresses one source IP may register an hour, bursts of as many
   * (RateLimited); a known identity reconnects freely; 0 = no limit. @default {60}
   */
  maxNewIdentitiesPerIp: number;
  /** Free the address of a client offline and unseen this long (ms); 0 = never. @default {0} */
  addressTtlMs: number;
  /**
   * The shared registry of a cluster: `postgres://USER@HOST:PORT/DB` (or
   * `postgresql://`; the password in the URL or in `PGPASSWORD`). Null keeps
   * the registry in the SQLite file `db`. @default {null}
   */
  registry: string | null;
  /**
   * NATS servers of a cluster's presence, `nats://HOST:PORT`, several
   * separated by commas. With `meshPort` and `meshKey`, and a `registry`. @default {null}
   */
  nats: string | null;
  /**
   * TCP port of the links to the other relays of a cluster, on `hostname`;
   * 0 picks a free one. With `nats` and `meshKey`. @default {null}
   */
  meshPort: number | null;
  /**
   * The secret every relay of a cluster shares to authenticate its links:
   * 32 bytes (given as 64 hex digits or the bytes). Never sent in clear,
   * never logged (the resolved bytes print as `[redacted]`). @default {null}
   */
  meshKey: Uint8Array | null;
  /**
   * Where the other relays dial to reach this one's `meshPort`: a host
   * (`HOST`, the port then is `meshPort`), or `HOST:PORT` (`[IPV6]:PORT`)
   * when a NAT or proxy maps another port onto it. Defaults to `hostname`
   * unless that is a wildcard (`0.0.0.0`, `::`), where a mesh needs it
   * said. @default {null}
   */
  advertise: string | null;
  /**
   * PEM certificates of the authorities trusted for other relays' link
   * ports. Relay links use TLS when the relay serves TLS (`tls`): it serves
   * its link port with the same certificate and dials the others' over TLS,
   * checking each one's certificate against the host it dials, against these
   * authorities or, when null, the system's. @default {null}
   */
  meshCaCerts: string[] | null;
}

/**
 * Options of a relay, as `Relay.start` takes them: any subset of
 * {@linkcode RelayConfig}; a field left out (or undefined) takes its default.
 *
 * @example Start a relay for a test: loopback, a free port, no file
 * ```ts
 * import { Relay, type RelayOptions } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * const options: RelayOptions = { hostname: "127.0.0.1", port: 0, db: ":memory:" };
 * await using relay = await Relay.start(options);
 * assert.equal(relay.addr.hostname, "127.0.0.1");
 * assert.notEqual(relay.addr.port, 0);
 * ```
 */
export type RelayOptions = Partial<Omit<RelayConfig, "meshKey">> & {
  /** {@linkcode RelayConfig.meshKey}: 64 hex digits, or the 32 bytes. @default {null} */
  meshKey?: string | Uint8Array | null;
};

/**
 * The defaults of every relay setting, frozen: what a relay started with no
 * options runs with.
 *
 * @example Read a default
 * ```ts
 * import { DEFAULT_RELAY_CONFIG } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_RELAY_CONFIG.port, 1337);
 * assert.equal(DEFAULT_RELAY_CONFIG.db, "./alphanet.db");
 * assert.ok(Object.isFrozen(DEFAULT_RELAY_CONFIG));
 * ```
 */
export const DEFAULT_RELAY_CONFIG: Readonly<RelayConfig> = Object.freeze({
  hostname: "0.0.0.0",
  port: DEFAULT_RELAY_PORT,
  tls: null,
  adminPort: null,
  adminHostname: "127.0.0.1",
  websocketPort: null,
  guardRejections: false,
  db: "./alphanet.db",
  vipRange: null,
  logLevel: "info",
  logFormat: "text",
  ipIdentities: true,
  join: "open",
  helloTimeoutMs: 10_000,
  keepaliveMs: 15_000,
  peerTimeoutMs: 45_000,
  socketIdleTimeoutMs: 0,
  maxClients: 16_384,
  requestRate: 10_000,
  requestBurst: 20_000,
  maxBytesPerSec: 0,
  requestTimeoutMs: 10_000,
  maxPendingPerClient: 256,
  maxConnectionsPerClient: 4096,
  maxBufferedBytesPerClient: 64 * 1024 * 1024,
  maxBufferedBytes: 1024 * 1024 * 1024,
  maxQueuedControlBytes: 1024 * 1024,
  tcpBacklog: 4096,
  frameTimeoutMs: 10_000,
  maxLinksPerIp: 1024,
  maxHandshakesPerIp: 64,
  maxRequestsPerIp: 20_000,
  maxNewIdentitiesPerIp: 60,
  addressTtlMs: 0,
  registry: null,
  nats: null,
  meshPort: null,
  meshKey: null,
  advertise: null,
  meshCaCerts: null,
});

/**
 * Merges `options` over the defaults and validates the result, the one place
 * relay settings are checked.
 *
 * @param options Any subset of the settings; undefined fields take their defaults.
 * @returns The complete configuration; throws `RangeError` naming the first bad field.
 */
export function resolveRelayConfig(options: RelayOptions = {}): RelayConfig {
  const { meshKey, ...rest } = withoutUndefined(options);
  const config: RelayConfig = {
    ...DEFAULT_RELAY_CONFIG,
    ...rest,
    meshKey: meshKey === undefined ? null : meshKeyBytes(meshKey),
  };
  checkCluster(config);
  checkPort(config.port, "port");
  checkPort(config.adminPort, "admin port");
  checkPort(config.websocketPort, "WebSocket port");
  if (
    config.tls !== null &&
    (typeof config.tls?.cert !== "string" || typeof config.tls?.key !== "string")
  ) {
    throw new TypeError("Cannot start relay: tls needs cert and key as PEM text");
  }
  if (!LOG_FORMATS.includes(config.logFormat)) {
    throw new RangeError(
      `Cannot start relay: log format "${config.logFormat}" is not one of ${
        LOG_FORMATS.join(", ")
      }`,
    );
  }
  if (!JOIN_MODES.includes(config.join)) {
    throw new RangeError(
      `Cannot start relay: join mode "${config.join}" is not one of ${JOIN_MODES.join(", ")}`,
    );
  }
  if (!LOG_LEVELS.includes(config.logLevel)) {
    throw new RangeError(
      `Cannot start relay: log level "${config.logLevel}" is not one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  const positive: (keyof RelayConfig)[] = [
    "helloTimeoutMs",
    "keepaliveMs",
    "peerTimeoutMs",
    "maxClients",
    "requestRate",
    "requestBurst",
    "requestTimeoutMs",
    "maxPendingPerClient",
    "maxConnectionsPerClient",
    "maxQueuedControlBytes",
    "tcpBacklog",
    "maxBufferedBytesPerClient",
    "maxBufferedBytes",
  ];
  for (const field of positive) {
    const value = config[field];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`Cannot start relay: ${field} ${value} is not a positive number`);
    }
  }
  for (const field of ["socketIdleTimeoutMs", "maxBytesPerSec", "addressTtlMs"] as const) {
    const value = config[field];
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`Cannot start relay: ${field} ${value} is negative`);
    }
  }
  if (!Number.isFinite(config.frameTimeoutMs) || config.frameTimeoutMs <= 0) {
    throw new RangeError(
      `Cannot start relay: frameTimeoutMs ${config.frameTimeoutMs} is not a positive number`,
    );
  }
  for (
    const field of [
      "maxLinksPerIp",
      "maxHandshakesPerIp",
      "maxRequestsPerIp",
      "maxNewIdentitiesPerIp",
    ] as const
  ) {
    if (!Number.isInteger(config[field]) || config[field] < 0) {
      throw new RangeError(`Cannot start relay: ${field} ${config[field]} is not a whole number`);
    }
  }
  if (config.peerTimeoutMs <= config.keepaliveMs) {
    throw new RangeError(
      `Cannot start relay: peerTimeoutMs ${config.peerTimeoutMs} must exceed keepaliveMs ${config.keepaliveMs}`,
    );
  }
  return config;
}

function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<
    T
  >;
}

/** Throws a RangeError naming `what` unless `port` is null (off) or a TCP port, 0 picking a free one. */
function checkPort(port: number | null, what: string): void {
  if (port !== null && (!Number.isInteger(port) || port < 0 || port > 65_535)) {
    throw new RangeError(`Cannot start relay: ${what} ${port} is outside 0..65535`);
  }
}

/** Bytes of the mesh key: 32, like DERP's. */
export const MESH_KEY_BYTES = 32;

/** Hosts that mean "every interface": nobody can dial them. */
const WILDCARD_HOSTS: ReadonlySet<string> = new Set(["0.0.0.0", "::", "[::]", ""]);

/**
 * The mesh key's bytes, which print as `[redacted]` (a log line of the whole
 * config, or a key passed to a template string, shows nothing of it).
 */
class MeshKey extends Uint8Array {
  override toString(): string {
    return "[redacted]";
  }
  toJSON(): string {
    return "[redacted]";
  }
  [Symbol.for("Deno.customInspect")](): string {
    return "MeshKey [redacted]";
  }
}

/** The 32 bytes of a mesh key given as 64 hex digits or as bytes; RangeError otherwise. */
function meshKeyBytes(key: string | Uint8Array | null): Uint8Array | null {
  if (key === null) return null;
  let source = key instanceof Uint8Array ? key : null;
  if (typeof key === "string") {
    // The text is never echoed: it may be a key with one digit wrong.
    source = /^[0-9a-fA-F]{64}$/.test(key) ? bytesOfHex(key.toLowerCase()) : null;
    if (source === null) throw new RangeError("Cannot start relay: meshKey is not 64 hex digits");
  }
  if (source === null || source.length !== MESH_KEY_BYTES) {
    throw new RangeError(`Cannot start relay: meshKey is not ${MESH_KEY_BYTES} bytes`);
  }
  const bytes = new MeshKey(MESH_KEY_BYTES);
  bytes.set(source);
  if (source !== key) source.fill(0); // only the MeshKey, which never prints, keeps it
  return bytes;
}

/**
 * Whether `url` is a PostgreSQL URL the registry can use: `postgres://` or
 * `postgresql://` with a host.
 *
 * @param url The text of `--registry`.
 * @returns Whether it is such a URL.
 */
export function isPostgresUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return (parsed.protocol === "postgres:" || parsed.protocol === "postgresql:") &&
    parsed.hostname !== "";
}

/**
 * A registry URL as it may be logged or shown: its password replaced by `***`.
 *
 * @param url A `postgres://` URL.
 * @returns The same URL without its password.
 */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === "") return url;
    parsed.password = "***";
    return parsed.toString();
  } catch {
    return "[unparsable URL]";
  }
}

/**
 * NATS servers (`nats://…`, comma-separated) as they may be logged or shown:
 * a password replaced by `***`, and a user without one too, since NATS
 * takes a lone user part as a token (`nats://TOKEN@host`).
 *
 * @param urls One NATS URL, or several separated by commas.
 * @returns The same list without secrets.
 */
export function redactedNatsUrls(urls: string): string {
  return urls.split(",").map((url) => {
    try {
      const parsed = new URL(url.trim());
      if (parsed.password !== "" || parsed.username === "") return redactedUrl(url);
      parsed.username = "***";
      return parsed.toString();
    } catch {
      return "[unparsable URL]";
    }
  }).join(",");
}

/** The NATS servers of `nats`, or a RangeError: each `nats://HOST[:PORT]`. */
function checkNats(nats: string): void {
  for (const server of nats.split(",")) {
    let url: URL | null = null;
    try {
      url = new URL(server);
    } catch {
      // Reported below.
    }
    if (url === null || url.protocol !== "nats:" || url.hostname === "" || url.pathname !== "") {
      throw new RangeError(
        `Cannot start relay: nats server "${redactedNatsUrls(server)}" is not nats://HOST:PORT`,
      );
    }
  }
}

/**
 * The cluster settings together: `nats`, `meshPort` and `meshKey` all or
 * none, and only with a PostgreSQL `registry` (relays that share a network
 * share its registry); a mesh needs a host the others can dial, and a
 * relay on a shared registry a name of its own there (a wildcard hostname
 * needs `advertise`). Fills in `advertise` from a hostname that is not a
 * wildcard.
 */
function checkCluster(config: RelayConfig): void {
  if (
    config.meshCaCerts !== null &&
    (!Array.isArray(config.meshCaCerts) ||
      !config.meshCaCerts.every((pem) => typeof pem === "string"))
  ) {
    throw new TypeError("Cannot start relay: meshCaCerts must be PEM strings");
  }
  if (config.meshCaCerts !== null && config.tls === null) {
    throw new RangeError(
      "Cannot start relay: meshCaCerts needs tls (relay links use TLS when the relay serves it)",
    );
  }
  if (config.registry !== null && !isPostgresUrl(config.registry)) {
    throw new RangeError(
      `Cannot start relay: registry "${
        redactedUrl(config.registry)
      }" is not a postgres://USER@HOST:PORT/DB URL`,
    );
  }
  if (config.nats !== null) checkNats(config.nats);
  checkPort(config.meshPort, "mesh port");
  const mesh = [config.nats !== null, config.meshPort !== null, config.meshKey !== null];
  if (mesh.some(Boolean) && !mesh.every(Boolean)) {
    throw new RangeError(
      "Cannot start relay: nats, meshPort and meshKey go together (a cluster needs all three)",
    );
  }
  if (mesh[0] && config.registry === null) {
    throw new RangeError(
      "Cannot start relay: a cluster (nats, meshPort, meshKey) needs a shared registry (postgres://)",
    );
  }
  if (config.advertise !== null) {
    const host = splitHostPort(config.advertise)?.hostname ?? config.advertise;
    if (!/^[^\s/?#@]+$/.test(config.advertise) || WILDCARD_HOSTS.has(host)) {
      throw new RangeError(
        `Cannot start relay: advertise "${config.advertise}" is not a host other relays can dial`,
      );
    }
  } else if (!WILDCARD_HOSTS.has(config.hostname)) {
    config.advertise = config.hostname;
  } else if (mesh[0]) {
    throw new RangeError(
      `Cannot start relay: hostname ${config.hostname} is a wildcard, so a mesh needs advertise (the host other relays dial)`,
    );
  } else if (config.registry !== null) {
    // The node name (HOST:PORT) marks this relay's clients in the shared registry: with a
    // wildcard, two relays on different machines would both be 0.0.0.0:PORT.
    throw new RangeError(
      `Cannot start relay: hostname ${config.hostname} is a wildcard, so a relay on a shared registry needs advertise (its own name among the registry's relays)`,
    );
  }
}

/**
 * The name a relay holds its clients' online marks under in a shared
 * registry: `ADVERTISE:MESHPORT` in a cluster, else `HOST:PORT` of its
 * relay port (the advertised host if any). Unique per running relay as long
 * as the hosts are.
 *
 * @param config The relay's resolved settings.
 * @param relayPort The relay port it listens on (the real one, when 0 was asked).
 * @param meshPort The mesh port it listens on, or null without a mesh.
 * @returns The node name.
 */
export function relayNodeName(
  config: RelayConfig,
  relayPort: number,
  meshPort: number | null,
): string {
  const host = config.advertise ?? config.hostname;
  return meshPort === null ? `${host}:${relayPort}` : advertisedMesh(host, meshPort);
}

/**
 * Where other relays dial this one's relay links: `advertise` itself when it
 * names a port, else its host (bracketed if IPv6) with `meshPort`.
 *
 * @param advertise The `advertise` setting (or the hostname it defaults to).
 * @param meshPort The mesh port the relay listens on (the real one, when 0 was asked).
 * @returns `HOST:PORT`.
 */
export function advertisedMesh(advertise: string, meshPort: number): string {
  if (splitHostPort(advertise) !== null) return advertise;
  return advertise.includes(":") ? `[${advertise}]:${meshPort}` : `${advertise}:${meshPort}`;
}
