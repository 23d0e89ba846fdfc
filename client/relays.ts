/**
 * A client's relays: the `relays` option parsed once at the boundary, and
 * the order a client tries them in. Relays of one cluster share one registry
 * (one relay id, one address per identity), so a client that loses one comes
 * back on another as the same host.
 *
 * @module
 */

import { DEFAULT_RELAY_PORT, MAX_PORT } from "../protocol/constants.ts";

/**
 * Most relays one client may list: a pass tries each in turn, each within
 * its own `handshakeTimeoutMs`, so the list bounds how long a pass takes.
 */
export const MAX_RELAYS = 32;

/** One relay a client may join over TCP (or TLS). */
export interface RelayEndpoint {
  /** Host name or IP address; an IPv6 address without its brackets. */
  readonly hostname: string;
  /** TCP port, 1..65535. */
  readonly port: number;
  /** `HOST:PORT`, an IPv6 host in brackets: how the client names it (`AlphaNetClient.relay`). */
  readonly name: string;
}

/**
 * `HOST:PORT` of a relay, with an IPv6 host in brackets.
 *
 * @param hostname The host; an IPv6 address without brackets.
 * @param port The port.
 * @returns The relay's name.
 */
export function relayName(hostname: string, port: number): string {
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

/** The endpoint of `hostname` and `port`, already checked. */
export function relayEndpoint(hostname: string, port: number): RelayEndpoint {
  return Object.freeze({ hostname, port, name: relayName(hostname, port) });
}

/**
 * Parses one entry of the `relays` option: `HOST:PORT`, `HOST` (port 1337),
 * `[IPV6]:PORT` or `[IPV6]`. TypeError for something that is not a host (a
 * URL, an IPv6 address without brackets, spaces, an empty host), RangeError
 * for a port outside 1..65535.
 */
export function parseRelayEntry(entry: unknown): RelayEndpoint {
  if (typeof entry !== "string") {
    throw new TypeError(`Cannot connect: relays entry ${String(entry)} is not a string`);
  }
  const quoted = JSON.stringify(entry);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) {
    throw new TypeError(
      `Cannot connect: relays entry ${quoted} is a URL: relays takes HOST:PORT entries ` +
        "(TCP, or TLS with tls: true); join a WebSocket endpoint with url",
    );
  }
  let hostname: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\[\]]*)\](?::(.*))?$/.exec(entry);
  if (bracketed !== null) {
    [, hostname, portText] = bracketed;
    if (!hostname.includes(":")) {
      throw new TypeError(
        `Cannot connect: relays entry ${quoted} has brackets around a host that is not IPv6`,
      );
    }
  } else {
    const colons = entry.split(":").length - 1;
    if (colons > 1) {
      throw new TypeError(
        `Cannot connect: relays entry ${quoted} is ambiguous: write an IPv6 address in ` +
          "brackets, [::1]:1337",
      );
    }
    [hostname, portText] = colons === 0 ? [entry, undefined] : entry.split(":");
  }
  if (hostname === "" || /[\s\/\[\]@]/.test(hostname)) {
    throw new TypeError(
      `Cannot connect: relays entry ${quoted} has no valid host (expected HOST:PORT, HOST or ` +
        "[IPV6]:PORT)",
    );
  }
  return relayEndpoint(
    hostname,
    portText === undefined ? DEFAULT_RELAY_PORT : parsePort(entry, portText),
  );
}

/** The port of an entry: decimal digits only, 1..65535; RangeError otherwise. */
function parsePort(entry: string, text: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= MAX_PORT)) {
    throw new RangeError(
      `Cannot connect: relays entry ${JSON.stringify(entry)} has port ` +
        `${JSON.stringify(text)}, not a number in 1..${MAX_PORT}`,
    );
  }
  return port;
}

/**
 * Parses the `relays` option: a non-empty array of at most
 * {@linkcode MAX_RELAYS} entries (RangeError otherwise; TypeError if it is
 * not an array), each parsed by {@linkcode parseRelayEntry}, no relay listed
 * twice (TypeError: a pass would try it twice).
 */
export function parseRelays(relays: unknown): readonly RelayEndpoint[] {
  if (!Array.isArray(relays)) {
    throw new TypeError('Cannot connect: relays is not an array of "HOST:PORT" strings');
  }
  if (relays.length === 0 || relays.length > MAX_RELAYS) {
    throw new RangeError(
      `Cannot connect: relays has ${relays.length} entries, not 1..${MAX_RELAYS}`,
    );
  }
  const endpoints = relays.map(parseRelayEntry);
  const seen = new Set<string>();
  for (const endpoint of endpoints) {
    const key = endpoint.name.toLowerCase();
    if (seen.has(key)) {
      throw new TypeError(`Cannot connect: relays lists ${endpoint.name} twice`);
    }
    seen.add(key);
  }
  return Object.freeze(endpoints);
}

/**
 * The order of one pass over `count` relays: all of them once, starting
 * after `after` (the relay the lost link was on, tried last so a dead relay
 * is not hammered first) and wrapping around; from the first when `after`
 * is null (the first join).
 *
 * @example After the second of three
 * ```ts
 * import assert from "node:assert/strict";
 * import { passOrder } from "./relays.ts";
 *
 * assert.deepEqual(passOrder(3, null), [0, 1, 2]);
 * assert.deepEqual(passOrder(3, 1), [2, 0, 1]);
 * ```
 */
export function passOrder(count: number, after: number | null): number[] {
  const start = after === null ? 0 : after + 1;
  return Array.from({ length: count }, (_, i) => (start + i) % count);
}
