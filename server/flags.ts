/**
 * The relay's command line: flags to {@linkcode RelayOptions}, with usage.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseCidr } from "../protocol/address.ts";
import { DEFAULT_RELAY_CONFIG, LOG_LEVELS, type LogLevel, type RelayOptions } from "./config.ts";

/** Usage text printed by `--help`. */
export const USAGE = `AlphaNET relay: permanent virtual IPv4 addresses and virtual sockets over TCP.

Usage: deno run -A server.ts [flags]

Flags:
  --hostname HOST      interface to listen on (default ${DEFAULT_RELAY_CONFIG.hostname})
  --port PORT          TCP port, 0 for any free port (default ${DEFAULT_RELAY_CONFIG.port})
  --db PATH            SQLite registry file, or :memory: (default ${DEFAULT_RELAY_CONFIG.db})
  --vip-range CIDR     draw virtual IPs from this block only (default: all public unicast IPv4)
  --log-level LEVEL    ${LOG_LEVELS.join(" | ")} (default ${DEFAULT_RELAY_CONFIG.logLevel})
  --help               print this help and exit

On start the relay prints one line: listening on HOST:PORT
`;

/** The outcome of parsing: options to run with, or a request for help. */
export type ParsedFlags = { readonly help: true } | {
  readonly help: false;
  readonly options: RelayOptions;
};

/** A flag or value the relay does not accept; the entrypoint exits 2 with its message. */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parses the relay's flags; throws {@linkcode UsageError} on anything unknown or invalid. */
export function parseRelayFlags(args: string[]): ParsedFlags {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        hostname: { type: "string" },
        port: { type: "string" },
        db: { type: "string" },
        "vip-range": { type: "string" },
        "log-level": { type: "string" },
        help: { type: "boolean" },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return { help: true };
  const options: { -readonly [K in keyof RelayOptions]: RelayOptions[K] } = {};
  if (values.hostname !== undefined) options.hostname = values.hostname as string;
  if (values.port !== undefined) options.port = parsePort(values.port as string);
  if (values.db !== undefined) options.db = values.db as string;
  if (values["vip-range"] !== undefined) {
    const text = values["vip-range"] as string;
    if (parseCidr(text) === null) {
      throw new UsageError(
        `Invalid --vip-range "${text}": expected a CIDR block such as 10.0.0.0/8`,
      );
    }
    options.vipRange = text;
  }
  if (values["log-level"] !== undefined) {
    const level = values["log-level"] as string;
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new UsageError(
        `Invalid --log-level "${level}": expected one of ${LOG_LEVELS.join(", ")}`,
      );
    }
    options.logLevel = level as LogLevel;
  }
  return { help: false, options };
}

function parsePort(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65_535) {
    throw new UsageError(`Invalid --port "${text}": expected a whole number from 0 to 65535`);
  }
  return Number(text);
}
