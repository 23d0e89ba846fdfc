/**
 * Command-line parsing shared by every command: the global flags (which may
 * come before or after the command), and parsers of `HOST:PORT`, `VIP:PORT`,
 * seconds and counts. Port numbers and the usage error are `flags/`'s, shared
 * with the relay.
 *
 * @module
 */

import type { parseArgs, ParseArgsConfig } from "node:util";
import { parseFlags } from "../flags/parse_args.ts";
import { parsePort } from "../flags/port.ts";
import { UsageError } from "../flags/usage_error.ts";
import { parseJoinToken } from "../crypto/join_token.ts";
import { parseIpv4 } from "../protocol/mod.ts";
import { webSocketEndpoint } from "../client/options.ts";
import { MAX_RELAYS, relayName as hostPortText } from "../client/relays.ts";
import { LOG_FORMATS, type LogFormat } from "./log.ts";

/** Relay address used when neither `--server` nor `ALPHANET_SERVER` is given. */
export const DEFAULT_SERVER = "127.0.0.1:1337";

/** A host and a TCP or virtual port. */
export interface HostPort {
  /** Host name or IPv4 address. */
  readonly hostname: string;
  /** Port number. */
  readonly port: number;
}

/**
 * Where a command's identity comes from: the file given with
 * `--identity-file`, the default file in the user's config folder, or none
 * (`--no-identity`: the relay keys the client on its real IP).
 */
export type IdentitySource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "default" }
  | { readonly kind: "none" };

/** The flags every command takes. */
export interface CommonOptions {
  /**
   * The relay to connect to: its host and port (a WebSocket URL's, when
   * `websocket` is set; the first of `relays` for a list).
   */
  readonly server: HostPort;
  /**
   * Every relay of `--server`, in its order: one, or several for a
   * comma-separated list (`HOST:PORT,HOST:PORT`), which the client tries in
   * turn (the `relays` option).
   */
  readonly relays: readonly HostPort[];
  /**
   * The relay's WebSocket endpoint when `--server` is a `ws://` or `wss://`
   * URL (the client then joins over WebSocket), else null (TCP to `server`).
   */
  readonly websocket: string | null;
  /** Which identity the client joins with (`--identity-file`, `--no-identity`). */
  readonly identity: IdentitySource;
  /** The join token (`--join-token`, else `$ALPHANET_JOIN_TOKEN`; checked to parse), or null. */
  readonly joinToken: string | null;
  /** The relay id to pin (`--relay-id`, else `$ALPHANET_RELAY_ID`; 64 lowercase hex digits), or null. */
  readonly relayId: string | null;
  /** How stderr event lines are written (`--log-format`). */
  readonly logFormat: LogFormat;
  /** Whether the TCP relay speaks TLS (`--tls`); false with a WebSocket URL (`wss://` says it). */
  readonly tls: boolean;
  /** PEM file of an authority to trust for the relay's certificate (`--ca-cert`), or null. */
  readonly caCertFile: string | null;
}

/**
 * Option specs of the global flags, for `parseArgs`. They go before or after
 * the command (`alphanet --server h:p whoami` = `alphanet whoami --server h:p`).
 */
export const COMMON_OPTIONS = {
  server: { type: "string" },
  "identity-file": { type: "string" },
  "no-identity": { type: "boolean" },
  "join-token": { type: "string" },
  "relay-id": { type: "string" },
  "log-format": { type: "string" },
  tls: { type: "boolean" },
  "ca-cert": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** `--json`, for the commands that print one result. */
export const JSON_OPTION = {
  json: { type: "boolean" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Help text of the global flags, appended to every command's usage. */
export const COMMON_HELP = `Global flags (before or after the command):
  --server RELAY         relay to use (default ${DEFAULT_SERVER}, or $ALPHANET_SERVER):
                         HOST:PORT joins over TCP; ws://HOST:PORT/ joins over
                         WebSocket (a relay run with --websocket-port), and
                         wss://HOST:PORT/ over WebSocket with TLS. Several
                         relays (of one cluster), comma-separated:
                         HOST:PORT,HOST:PORT,... (up to ${MAX_RELAYS}, TCP only; --tls
                         applies to each): joining tries them in order, and a
                         command that loses its relay tries the next ones
                         first, wrapping around
  --identity-file PATH   identity (a key pair) that keys this client's permanent
                         virtual IP; created (a new key pair, mode 0600, missing
                         folders 0700) on first use. A file of the old format (a
                         secret of 64 hex digits) keeps working, and keeps its
                         address. Without it every command uses one default file:
                         $XDG_CONFIG_HOME/alphanet/identity (else
                         ~/.config/alphanet/identity; macOS: ~/Library/Application
                         Support/alphanet/identity; Windows:
                         %APPDATA%\\alphanet\\identity). Commands running at the same
                         time with the same identity take the address from each
                         other (the older one ends with "a newer client with the
                         same identity took over"): give each long-running command
                         its own file. A file that others can read or write, that
                         another user owns, or that is damaged is refused (on
                         Windows only the content is checked).
  --no-identity          join without an identity: the relay keys the address on
                         your real IP, so anyone behind the same NAT can take the
                         address
  --join-token TOKEN     join token (anj1.ID.SECRET) from the relay's operator,
                         needed only to register a new identity at a relay run
                         with --join token; an identity the relay knows joins
                         without it. Default $ALPHANET_JOIN_TOKEN (the flag wins;
                         the variable keeps it out of the process list)
  --relay-id HEX         join only the relay with this id (64 hex digits, as
                         "alphanet whoami --json" prints it): checked before this client
                         signs anything, so another relay cannot pass on its
                         challenge. Default $ALPHANET_RELAY_ID (the flag wins).
                         Without it a command still pins the first relay it
                         joins for its reconnects
  --log-format FORMAT    text | json (default text): how the lines a command prints
                         on stderr while it runs are written (relay retries and
                         reconnects, refused connections, "listening on",
                         progress); json is one object per line: {"time", "level",
                         "event", "command", ...fields, "message"}. An error that
                         ends the command stays one plain "alphanet: ..." line.
  --tls                  the relay speaks TLS (it runs with --tls-cert); its
                         certificate must match the --server host. For a
                         HOST:PORT --server only: over WebSocket, use wss://
  --ca-cert FILE         trust this PEM CA (or self-signed) certificate for the
                         relay besides the system's roots; needs --tls or a
                         wss:// --server
  -h, --help             show this help`;

/** A command line split at the command: global flags before it, the command, the rest. */
export interface SplitCommandLine {
  /** The global flags found before the command, as given. */
  readonly globals: string[];
  /** The command's name, or undefined if there is none. */
  readonly command: string | undefined;
  /** Everything after the command. */
  readonly rest: string[];
}

/**
 * Splits `args` at the command name, taking the global flags in front of it
 * (`--server H:P`, `--server=H:P`, `--identity-file PATH`, `--no-identity`, `--join-token TOKEN`,
 * `--relay-id HEX`, `--log-format F`, `--tls`, `--ca-cert FILE`, `-h`, `--help`). Throws UsageError on any other flag before the command,
 * or a global flag without its value.
 */
export function splitCommandLine(args: string[]): SplitCommandLine {
  const globals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-")) return { globals, command: arg, rest: args.slice(i + 1) };
    const name = arg.startsWith("--") ? arg.slice(2).split("=")[0] : null;
    const spec = name === null
      ? Object.values(COMMON_OPTIONS).find((o) => "short" in o && `-${o.short}` === arg)
      : COMMON_OPTIONS[name as keyof typeof COMMON_OPTIONS];
    if (spec === undefined) {
      throw new UsageError(`unknown flag "${arg}" before the command`);
    }
    globals.push(arg);
    if (spec.type === "string" && !arg.includes("=")) {
      // As parseArgs: "--server -x" is a forgotten value, "--server=-x" a value.
      if (i + 1 >= args.length || args[i + 1].startsWith("-")) {
        throw new UsageError(`missing value of ${arg}`);
      }
      globals.push(args[++i]);
    } else if (spec.type === "boolean" && arg.includes("=")) {
      throw new UsageError(`${arg.split("=")[0]} takes no value`);
    }
  }
  return { globals, command: undefined, rest: [] };
}

/**
 * Parses a command line: `options` (the global flags and the command's own),
 * exactly the positionals `names`. Returns null once `usage` is printed for
 * `--help`; throws UsageError on anything else wrong.
 */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  usage: string,
  names: string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true }>> | null {
  const parsed = parseFlags({ args, options, allowPositionals: true });
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    return null;
  }
  expectPositionals(parsed.positionals, names);
  return parsed;
}

/** Throws a UsageError unless exactly `names.length` positionals were given. */
function expectPositionals(positionals: string[], names: string[]): void {
  if (positionals.length < names.length) {
    throw new UsageError(`missing ${names.slice(positionals.length).join(" ")}`);
  }
  if (positionals.length > names.length) {
    throw new UsageError(`unexpected argument "${positionals[names.length]}"`);
  }
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

/** Parses a number of seconds, at least `minSeconds` (decimals allowed), into ms. */
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

/**
 * Resolves the global flags: `--server` (or `$ALPHANET_SERVER`; `HOST:PORT`,
 * or a `ws://`/`wss://` URL for the WebSocket carrier),
 * `--identity-file` or `--no-identity`, `--join-token` (or
 * `$ALPHANET_JOIN_TOKEN`), `--relay-id` (or `$ALPHANET_RELAY_ID`), `--log-format`, `--tls` and `--ca-cert`.
 */
export function commonOptions(
  values: {
    server?: string;
    "identity-file"?: string;
    "no-identity"?: boolean;
    "join-token"?: string;
    "relay-id"?: string;
    "log-format"?: string;
    tls?: boolean;
    "ca-cert"?: string;
  },
): CommonOptions {
  const server = values.server ?? Deno.env.get("ALPHANET_SERVER") ?? DEFAULT_SERVER;
  const from = values.server === undefined ? "ALPHANET_SERVER" : "--server";
  const relays = server.includes(",") ? parseServerList(server, from) : null;
  const websocket = relays === null && isUrl(server) ? parseWebSocketUrl(server, from) : null;
  const tls = values.tls ?? false;
  if (websocket !== null && tls) {
    throw new UsageError(
      `--tls is for a HOST:PORT relay; over WebSocket the URL says it: use wss://${
        websocket.slice(websocket.indexOf("://") + 3)
      }`,
    );
  }
  if (values["ca-cert"] !== undefined) {
    if (websocket === null && !tls) throw new UsageError("--ca-cert needs --tls");
    if (websocket !== null && !websocket.startsWith("wss:")) {
      throw new UsageError("--ca-cert needs a wss:// relay (TLS); this one is ws://");
    }
  }
  const file = values["identity-file"];
  if (file !== undefined && values["no-identity"]) {
    throw new UsageError("--no-identity cannot be used with --identity-file");
  }
  const first = relays?.[0] ??
    (websocket === null ? parseHostPort(server, from) : webSocketEndpoint(new URL(websocket)));
  return {
    server: first,
    relays: relays ?? [first],
    websocket,
    identity: file !== undefined
      ? { kind: "file", path: file }
      : values["no-identity"]
      ? { kind: "none" }
      : { kind: "default" },
    joinToken: joinTokenOf(values["join-token"]),
    relayId: relayIdOf(values["relay-id"]),
    logFormat: parseLogFormat(values["log-format"] ?? "text"),
    tls,
    caCertFile: values["ca-cert"] ?? null,
  };
}

/**
 * Parses a comma-separated `--server` list: each entry `HOST:PORT` (a
 * bracketed IPv6 host works too), 1..32 of them, none twice. UsageError for
 * an empty entry, a URL (over WebSocket a command joins one relay), or a
 * relay listed twice.
 */
export function parseServerList(text: string, what: string): HostPort[] {
  const entries = text.split(",");
  if (entries.length > MAX_RELAYS) {
    throw new UsageError(
      `bad ${what} "${text}": ${entries.length} relays, at most ${MAX_RELAYS}`,
    );
  }
  const seen = new Set<string>();
  return entries.map((entry) => {
    if (entry === "") {
      throw new UsageError(`bad ${what} "${text}": an empty entry; expected HOST:PORT,HOST:PORT`);
    }
    if (isUrl(entry)) {
      throw new UsageError(
        `bad ${what} "${text}": a list takes HOST:PORT entries only; a ws:// or wss:// ` +
          "relay is given alone",
      );
    }
    const relay = parseHostPort(entry, `${what} entry`);
    const key = formatHostPort(relay).toLowerCase();
    if (seen.has(key)) throw new UsageError(`bad ${what} "${text}": ${entry} is listed twice`);
    seen.add(key);
    return relay;
  });
}

/**
 * The join token of `--join-token`, else of `$ALPHANET_JOIN_TOKEN` (empty
 * counts as unset), or null. UsageError if it is not one; the message never
 * repeats the token, which is a secret.
 */
function joinTokenOf(flag: string | undefined): string | null {
  const from = flag !== undefined ? "--join-token" : "ALPHANET_JOIN_TOKEN";
  const token = flag ?? (Deno.env.get("ALPHANET_JOIN_TOKEN") || undefined);
  if (token === undefined) return null;
  const parts = parseJoinToken(token);
  if (typeof parts === "string") {
    throw new UsageError(
      `bad ${from}: the join token ${parts}; copy it again from the relay's operator`,
    );
  }
  return token.trim();
}

/**
 * The relay id of `--relay-id`, else of `$ALPHANET_RELAY_ID` (empty counts
 * as unset), or null; upper-case hex is accepted and lowered. UsageError
 * unless it is 64 hex digits.
 */
function relayIdOf(flag: string | undefined): string | null {
  const from = flag !== undefined ? "--relay-id" : "ALPHANET_RELAY_ID";
  const text = flag ?? (Deno.env.get("ALPHANET_RELAY_ID") || undefined);
  if (text === undefined) return null;
  const id = text.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(id)) {
    throw new UsageError(
      `bad ${from} "${text}": expected the relay's id, 64 hex digits ("alphanet whoami --json" prints it)`,
    );
  }
  return id;
}

/** Parses `--log-format`. */
function parseLogFormat(text: string): LogFormat {
  const format = LOG_FORMATS.find((f) => f === text);
  if (format === undefined) {
    throw new UsageError(`bad --log-format "${text}": expected ${LOG_FORMATS.join(" or ")}`);
  }
  return format;
}

/** Whether `text` starts with a URL scheme (`ws://...`), rather than being `HOST:PORT`. */
function isUrl(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
}

/**
 * Parses a relay's WebSocket URL: `ws://HOST:PORT/` or `wss://HOST:PORT/`,
 * path `/` (the only one a relay serves). Returns it normalized; UsageError
 * for another scheme or path.
 */
export function parseWebSocketUrl(text: string, what: string): string {
  const expected = "expected HOST:PORT, ws://HOST:PORT/ or wss://HOST:PORT/";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`bad ${what} "${text}": ${expected}`);
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new UsageError(`bad ${what} "${text}": ${expected}`);
  }
  if (url.pathname !== "/" || url.hash !== "") {
    throw new UsageError(
      `bad ${what} "${text}": a relay serves its WebSocket at the path / only (ws://HOST:PORT/)`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new UsageError(`bad ${what} "${text}": a relay's URL takes no user name or password`);
  }
  return url.href;
}

/**
 * How a command names its relay in what it prints: the WebSocket URL as
 * given to `--server`, else `HOST:PORT`, or the list `HOST:PORT,HOST:PORT`.
 */
export function relayName(common: Pick<CommonOptions, "relays" | "websocket">): string {
  return common.websocket ?? common.relays.map(formatHostPort).join(",");
}

/** `HOST:PORT` of `address`, with an IPv6 host in brackets. */
export function formatHostPort(address: HostPort): string {
  return hostPortText(address.hostname, address.port);
}
