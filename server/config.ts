/**
 * Relay settings: one options type, its defaults in one constant, validated
 * in one place.
 *
 * @module
 */

import { DEFAULT_RELAY_PORT } from "../protocol/constants.ts";

/** Log verbosity, most verbose first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];
/** Log line formats: human-readable `key=value` text, or one JSON object per line. */
export const LOG_FORMATS = ["text", "json"] as const;
/** One of {@linkcode LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/** Everything a relay can be told; every field is optional in {@linkcode RelayOptions}. */
export interface RelayConfig {
  /** Interface to listen on. @default {"0.0.0.0"} */
  hostname: string;
  /** TCP port; 0 picks a free one. @default {1337} */
  port: number;
  /** SQLite file of the registry, or ":memory:". @default {"./alphanet.db"} */
  db: string;
  /** CIDR the virtual IPs are drawn from; null for all public unicast IPv4. @default {null} */
  vipRange: string | null;
  /** Log verbosity. @default {"info"} */
  logLevel: LogLevel;
  /** Log line format. @default {"text"} */
  logFormat: LogFormat;
  /** A TCP connection that sends no Hello this long is closed. @default {10000} */
  helloTimeoutMs: number;
  /** The relay pings a client it has not heard from this long. @default {15000} */
  keepaliveMs: number;
  /** A client the relay has not heard from this long is closed (PeerTimeout). @default {45000} */
  peerTimeoutMs: number;
  /** A virtual connection with no data either way this long is closed (Idle); 0 = never. @default {0} */
  socketIdleTimeoutMs: number;
  /** TCP links (handshake done or not) the relay holds; more are refused (ServerFull). @default {16384} */
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
  /** Control bytes (beyond data within credit) queued to a client before it counts as a slow consumer. @default {1048576} */
  maxQueuedControlBytes: number;
  /** Kernel accept backlog; the default 511 drops connect bursts. @default {4096} */
  tcpBacklog: number;
}

/** Options of a relay: any subset of {@linkcode RelayConfig}. */
export type RelayOptions = Partial<RelayConfig>;

/** The defaults of every relay setting. */
export const DEFAULT_RELAY_CONFIG: Readonly<RelayConfig> = Object.freeze({
  hostname: "0.0.0.0",
  port: DEFAULT_RELAY_PORT,
  db: "./alphanet.db",
  vipRange: null,
  logLevel: "info",
  logFormat: "text",
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
  maxQueuedControlBytes: 1024 * 1024,
  tcpBacklog: 4096,
});

/** Merges `options` over the defaults; throws RangeError naming the first bad field. */
export function resolveRelayConfig(options: RelayOptions = {}): RelayConfig {
  const config: RelayConfig = { ...DEFAULT_RELAY_CONFIG, ...withoutUndefined(options) };
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65_535) {
    throw new RangeError(`Cannot start relay: port ${config.port} is outside 0..65535`);
  }
  if (!LOG_FORMATS.includes(config.logFormat)) {
    throw new RangeError(
      `Cannot start relay: log format "${config.logFormat}" is not one of ${
        LOG_FORMATS.join(", ")
      }`,
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
  ];
  for (const field of positive) {
    const value = config[field];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`Cannot start relay: ${field} ${value} is not a positive number`);
    }
  }
  for (const field of ["socketIdleTimeoutMs", "maxBytesPerSec"] as const) {
    const value = config[field];
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`Cannot start relay: ${field} ${value} is negative`);
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
