/**
 * Command-line parsing shared by every command: the usage error type, the
 * common flags, and parsers of `HOST:PORT`, `VIP:PORT` and port numbers.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseIpv4 } from "../mod.ts";
import { describe, UsageError } from "./errors.ts";

/** Relay address used when neither `--server` nor `ALPHANET_SERVER` is given. */
export const DEFAULT_SERVER = "127.0.0.1:1337";

/** A host and a TCP or virtual port. */
export interface HostPort {
  /** Host name or IPv4 address. */
  readonly hostname: string;
  /** Port number. */
  readonly port: number;
}

/** The flags every command takes. */
export interface CommonOptions {
  /** The relay to connect to. */
  readonly server: HostPort;
  /** Path of the identity file, or null to be keyed on the real IP. */
  readonly identityFile: string | null;
}

/** Option specs of the common flags, for `parseArgs`. */
export const COMMON_OPTIONS = {
  server: { type: "string" },
  "identity-file": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Help text of the common flags, appended to every command's usage. */
export const COMMON_HELP = `Common flags:
  --server HOST:PORT     relay to use (default ${DEFAULT_SERVER}, or $ALPHANET_SERVER)
  --identity-file PATH   secret that keys this client's permanent virtual IP; created
                         (32 random bytes, hex, mode 0600) on first use. Recommended:
                         without it the relay keys the client on its real IP, so two
                         commands on one machine take the address from each other.
                         Give each command that runs at the same time its own file.
  -h, --help             show this help`;

/**
 * Runs `parseArgs` over `config` (strict, positionals allowed); turns its
 * errors into a one-line {@linkcode UsageError} prefixed with `command`.
 */
function parseCommand<T extends ParseArgsConfig>(
  command: string,
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    // Node's messages go on with advice about "--"; the first sentence is the point.
    throw new UsageError(`${command}: ${describe(error).split(". ")[0]}`);
  }
}

/**
 * Parses a command line: `options` (the common flags and the command's own),
 * exactly the positionals `names`. Returns null once `usage` is printed for
 * `--help`; throws UsageError on anything else wrong.
 */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  args: string[],
  usage: string,
  names: string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true }>> | null {
  const parsed = parseCommand(command, { args, options, allowPositionals: true });
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    return null;
  }
  expectPositionals(command, parsed.positionals, names);
  return parsed;
}

/** Throws a UsageError unless exactly `names.length` positionals were given. */
function expectPositionals(command: string, positionals: string[], names: string[]): void {
  if (positionals.length !== names.length) {
    const wanted = names.length === 0 ? "no arguments" : names.join(" ");
    throw new UsageError(
      `${command}: expected ${wanted}, got ${positionals.length} argument(s) (see ${command} --help)`,
    );
  }
}

/** Parses a port in `min..65535`; throws UsageError naming `what`. */
export function parsePort(text: string, what: string, min = 1): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < min || Number(text) > 65_535) {
    throw new UsageError(`bad ${what} "${text}": expected a port number in ${min}..65535`);
  }
  return Number(text);
}

/** Parses `HOST:PORT` (a bracketed IPv6 host works too). */
export function parseHostPort(text: string, what: string): HostPort {
  const colon = text.lastIndexOf(":");
  let hostname = colon > 0 ? text.slice(0, colon) : "";
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (hostname === "" || /\s/.test(hostname)) {
    throw new UsageError(`bad ${what} "${text}": expected HOST:PORT`);
  }
  return { hostname, port: parsePort(text.slice(colon + 1), `${what} port`) };
}

/** Parses a dotted-quad virtual IPv4. */
export function parseVip(text: string, what: string): string {
  if (parseIpv4(text) === null) {
    throw new UsageError(`bad ${what} "${text}": expected a virtual IPv4 like 83.12.4.200`);
  }
  return text;
}

/** Parses `VIP:PORT`, a virtual IPv4 and a virtual port. */
export function parseVipPort(text: string, what: string): HostPort {
  const colon = text.lastIndexOf(":");
  const hostname = colon < 0 ? "" : text.slice(0, colon);
  if (parseIpv4(hostname) === null) {
    throw new UsageError(`bad ${what} "${text}": expected VIP:PORT like 83.12.4.200:80`);
  }
  return { hostname, port: parsePort(text.slice(colon + 1), `${what} port`) };
}

/** Parses a positive number of seconds (decimals allowed) into ms. */
export function parseSeconds(text: string, what: string, minSeconds: number): number {
  const seconds = Number(text);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds < minSeconds) {
    throw new UsageError(`bad ${what} "${text}": expected seconds, at least ${minSeconds}`);
  }
  return seconds * 1000;
}

/** Parses a positive integer count. */
export function parseCount(text: string, what: string): number {
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) < 1) {
    throw new UsageError(`bad ${what} "${text}": expected a positive integer`);
  }
  return Number(text);
}

/** Resolves the common flags: `--server` (or `$ALPHANET_SERVER`) and `--identity-file`. */
export function commonOptions(
  values: { server?: string; "identity-file"?: string },
): CommonOptions {
  const server = values.server ?? Deno.env.get("ALPHANET_SERVER") ?? DEFAULT_SERVER;
  return {
    server: parseHostPort(server, values.server === undefined ? "ALPHANET_SERVER" : "--server"),
    identityFile: values["identity-file"] ?? null,
  };
}
