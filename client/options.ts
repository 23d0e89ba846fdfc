/**
 * Client options with their defaults in one constant, validated in one place.
 *
 * @module
 */

import { parseJoinToken } from "../crypto/join_token.ts";
import {
  DEFAULT_RELAY_PORT,
  DEFAULT_WINDOW_BYTES,
  MAX_WINDOW_BYTES,
  MIN_WINDOW_BYTES,
} from "../protocol/constants.ts";
import { type Identity, MAX_SECRET_BYTES, MIN_SECRET_BYTES } from "./identity.ts";
import { MAX_RELAYS, parseRelays, type RelayEndpoint, relayEndpoint } from "./relays.ts";

/**
 * Largest receive window a connection grows to by default. With the zero-copy data
 * path, one connection on this project's loopback benchmark went 15–25% faster with
 * 4 MiB than with 1 MiB (fewer credit round trips, each a wake-up of three processes);
 * many connections share one allowance (`WINDOW_GROWTH_BYTES`), so 16 of them do not
 * each fill the relay's queues.
 */
const DEFAULT_MAX_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * How much all of a client's connections together may grow their receive windows
 * beyond the windows they announced (or `maxWindow - window`, if that is more, so one
 * connection can always reach its `maxWindow`).
 */
export const WINDOW_GROWTH_BYTES = 4 * 1024 * 1024;
/** Longest delay a timer can take (setTimeout fires at once beyond it). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How an established client reconnects after its link to the relay drops:
 * exponential backoff with full jitter. Attempt n (from 0) waits a uniformly
 * random time in `[0, min(maxDelayMs, initialDelayMs * 2^n)]`.
 *
 * @example The longest wait before each attempt
 * ```ts
 * import type { ReconnectOptions } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const reconnect: Required<ReconnectOptions> = {
 *   initialDelayMs: 50,
 *   maxDelayMs: 5_000,
 *   maxAttempts: 20,
 * };
 * const bound = (n: number) => Math.min(reconnect.maxDelayMs, reconnect.initialDelayMs * 2 ** n);
 * assert.deepEqual([0, 1, 2, 7, 8].map(bound), [50, 100, 200, 5_000, 5_000]);
 * ```
 */
export interface ReconnectOptions {
  /** Upper bound of the first attempt's delay, in ms. @default {100} */
  initialDelayMs?: number;
  /** Cap of the delay bound, in ms. @default {10000} */
  maxDelayMs?: number;
  /** Attempts before the client gives up and closes. @default {Infinity} */
  maxAttempts?: number;
}

/**
 * Options of `connect()`: where the relay is, who this client is, and how it
 * behaves on its link. Every field is optional; the defaults are in
 * {@linkcode DEFAULT_CLIENT_OPTIONS}.
 *
 * @example Options for a client with its own identity
 * ```ts
 * import { type ClientOptions, generateIdentity } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const options: ClientOptions = {
 *   hostname: "127.0.0.1",
 *   port: 1337,
 *   identity: await generateIdentity(),
 *   reconnect: { maxAttempts: 10 },
 * };
 * assert.equal(typeof options.identity, "object");
 * ```
 */
export interface ClientOptions {
  /** Relay host. @default {"127.0.0.1"} */
  hostname?: string;
  /** Relay TCP port. @default {1337} */
  port?: number;
  /**
   * Several relays, tried in order: `"HOST:PORT"`, `"HOST"` (port 1337),
   * `"[IPV6]:PORT"` or `"[IPV6]"`; 1..32 entries, none twice. It replaces
   * `hostname` and `port` (giving either too, or `url`, is a TypeError); a
   * bad entry is a TypeError, a port outside 1..65535 or an empty list a
   * RangeError. `tls` and `caCerts` apply to every entry, each certificate
   * checked against its own host.
   *
   * `connect()` tries each relay once, in the listed order, and resolves on
   * the first that admits the client; it rejects at once with a fatal
   * refusal (the same as on one relay: a refused identity or join token,
   * `RelayIdMismatch`, a protocol error), and with an `AggregateError` of
   * every relay's error (in the listed order) when none admits it. After a
   * lost link, each reconnect attempt (see `reconnect`) is one pass over the
   * list that starts with the relay after the one the link was on and ends
   * with that one, with the usual backoff between passes. Listeners stay
   * bound across the move, as on any reconnect, and `AlphaNetClient.relay`
   * says where the client is.
   *
   * Relays of one cluster share one registry and one relay id: the client
   * keeps its virtual IP on every one of them, and `relayId`, when given,
   * must be theirs. Without `relayId` each entry is pinned to the id it
   * showed at its first join; a list of independent relays (each its own
   * registry, so its own id) then works too, but the virtual IP is each
   * relay's own and changes when the client moves.
   * @default {undefined}
   *
   * @example Fail over between the relays of a cluster
   * ```ts
   * import { type ClientOptions, connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * const options: ClientOptions = { relays: ["127.0.0.1:1337", "127.0.0.1:1338"] };
   * await using net = await connect(options);
   * assert.ok(options.relays?.includes(net.relay));
   * await assert.rejects(connect({ relays: ["127.0.0.1:1337"], port: 1337 }), TypeError);
   * ```
   */
  relays?: readonly string[];
  /**
   * The relay's WebSocket endpoint, `ws://HOST:PORT/` or `wss://HOST:PORT/`
   * (a string or a URL): the link is then a WebSocket, opened through the
   * platform's own `WebSocket` (subprotocol `alphanet`), in Deno and in
   * browsers alike, instead of a TCP connection to `hostname` and `port`.
   * The relay serves it when started with `--websocket-port`, at the path
   * `/` only. It cannot be combined with `hostname`, `port` or `tls` (the URL
   * names the relay, and `wss://` is TLS). Everything else is the same as on
   * TCP: the join, the identity and its permanent address, reconnects (to the
   * same URL) and the relay id pin. With `wss://` and a relay certificate
   * from a private authority, pass `caCerts` (Deno only: a browser trusts
   * the authorities its system does). Over WebSocket, `unref()` cannot let
   * Deno exit while the link is open: Deno's `WebSocket` always keeps the
   * process alive. @default {undefined}
   *
   * @example Join a relay over WebSocket
   * ```ts
   * import { type ClientOptions, connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * const options: ClientOptions = { url: "ws://127.0.0.1:8080/" };
   * await using net = await connect(options);
   * assert.match(net.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
   * await assert.rejects(
   *   connect({ url: "ws://127.0.0.1:8080/", port: 1337 }),
   *   TypeError,
   * );
   * ```
   */
  url?: string | URL;
  /**
   * Who this client is: the relay keys its permanent virtual IP on this
   * identity instead of its real IP, so clients behind one IP get distinct
   * addresses. Either an {@linkcode Identity} (`generateIdentity()`,
   * `importIdentity()`), whose private key signs each link's challenge and
   * never leaves the process; or a secret of 16..256 bytes (a string is taken
   * as UTF-8), from which the same key pair is derived every time, and with
   * which the client also claims the address a version 1 relay gave that
   * secret (docs/PROTOCOL.md §5.6). Keep either private. Without one the
   * relay keys the address on the real IP. @default {undefined}
   */
  identity?: Identity | string | Uint8Array;
  /**
   * A join token (`anj1.<id>.<secret>`, from the relay's operator: `server.ts
   * tokens create`). Needed only to register a new identity at a relay run
   * with `--join token`; an identity the relay already knows joins without
   * one, and a relay run with `--join open` ignores it. The token's secret
   * signs the join and never crosses the wire. @default {undefined}
   */
  joinToken?: string;
  /**
   * The id of the only relay this client may join: 64 lowercase hex digits,
   * as `AlphaNetClient.relayId` reports it (and `Relay.relayId`, or the
   * relay's debug `config` log line at start). Every link, reconnects included,
   * checks the relay's Challenge against it before signing anything; another
   * id ends the client with `RelayIdMismatch`, without a Proof sent and
   * without a retry. This stops a relay that forwards another relay's
   * Challenge from using this client's signature to take its address there
   * (when the client uses the same identity on both). Without it the client
   * pins the id of the first relay it joins, so only reconnects are checked.
   * @default {undefined}
   *
   * @example Pin the relay
   * ```ts
   * import { type ClientOptions, connect, RelayIdMismatch } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using first = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const options: ClientOptions = { port: 1337, relayId: first.relayId };
   * await using pinned = await connect(options);
   * assert.equal(pinned.relayId, first.relayId);
   * const other = "0".repeat(64) === first.relayId ? "1".repeat(64) : "0".repeat(64);
   * await assert.rejects(connect({ port: 1337, relayId: other }), RelayIdMismatch);
   * ```
   */
  relayId?: string;
  /**
   * Receive window of each virtual connection in bytes: how much a peer may
   * send before this client's application reads. Larger windows go faster on
   * long paths. @default {262144}
   */
  window?: number;
  /**
   * Largest receive window a connection grows to while its reader keeps
   * up: each credit grant that finds the reader waiting doubles the window,
   * so bulk transfers speed up without every connection reserving the
   * maximum. All connections together grow by at most 4 MiB (or by
   * `maxWindow - window`, if that is more), so many busy connections share
   * it. Set it equal to `window` for a fixed window; raise it (up to 16 MiB)
   * for long fat paths. @default {4194304}
   */
  maxWindow?: number;
  /** How long to wait for the relay's VirtualIP. @default {10000} */
  handshakeTimeoutMs?: number;
  /**
   * How long a status or connection request may take before it fails with
   * TimedOut. While the client is reconnecting, `connect()` and `status()`
   * first wait up to this long for the link to come back. @default {15000}
   */
  requestTimeoutMs?: number;
  /**
   * Interval of the client's Pings to the relay, sent on every link
   * whatever else is sent; the answers prove the relay alive. @default {15000}
   */
  keepaliveMs?: number;
  /**
   * If no frame at all arrives from the relay for this long, the link is
   * treated as dead (`PeerTimeout`) and reconnect starts. Must exceed
   * `keepaliveMs`. @default {45000}
   */
  peerTimeoutMs?: number;
  /**
   * Whether the relay speaks TLS (started with `--tls-cert` and `--tls-key`):
   * the link is then a TLS connection, the relay's certificate verified
   * against `hostname`. Reconnects use TLS too. @default {false}
   */
  tls?: boolean;
  /**
   * Certificates (PEM) of the authorities to trust for the relay's
   * certificate besides the default roots: a private CA, or the relay's own
   * self-signed certificate. Needs `tls: true`, or a `wss://` `url` in Deno
   * (its `WebSocket` takes them through `Deno.createHttpClient`; a browser
   * cannot be given any, so there it is a TypeError). @default {undefined}
   */
  caCerts?: string[];
  /**
   * Whether and how an established client reconnects after it loses its link
   * (EOF, reset, peer time-out, relay shutdown). `false` closes the client at
   * the first loss. The first `connect()` never retries. @default {true}
   */
  reconnect?: boolean | ReconnectOptions;
}

/** The settings a client runs with: {@linkcode ClientOptions} with every default filled in. */
export interface ClientConfig {
  /** Relay host (the URL's, over WebSocket; the first relay's with `relays`). */
  readonly hostname: string;
  /** Relay port (the URL's, over WebSocket; the first relay's with `relays`). */
  readonly port: number;
  /** Every relay the client may join, in the order of the first pass (one without `relays`). */
  readonly relays: readonly RelayEndpoint[];
  /** The WebSocket endpoint of the link, or null for TCP. */
  readonly websocket: WebSocketConfig | null;
  /**
   * The identity: an Identity, a secret's bytes (checked: 16..256, a copy),
   * or null to be keyed on the real IP. Resolved into credentials at connect.
   */
  readonly identity: Identity | Uint8Array<ArrayBuffer> | null;
  /** The join token's text (checked to parse), or null. */
  readonly joinToken: string | null;
  /** The pinned relay id (64 lowercase hex digits), or null to pin the first relay joined. */
  readonly relayId: string | null;
  /** Initial receive window of each virtual connection, in bytes. */
  readonly window: number;
  /** Largest receive window a connection may grow to, in bytes. */
  readonly maxWindow: number;
  /** How long to wait for the VirtualIP. */
  readonly handshakeTimeoutMs: number;
  /** How long a request may take. */
  readonly requestTimeoutMs: number;
  /** Interval of Pings to the relay. */
  readonly keepaliveMs: number;
  /** Silence from the relay after which the link counts as dead. */
  readonly peerTimeoutMs: number;
  /** TLS settings of a TCP link, or null for plain TCP (and for WebSocket, whose URL says). */
  readonly tls: TlsConfig | null;
  /** Backoff of reconnect attempts, or null to close at the first link loss. */
  readonly reconnect: Readonly<Required<ReconnectOptions>> | null;
}

/** Where a client's WebSocket link goes. */
export interface WebSocketConfig {
  /** The endpoint, `ws://HOST:PORT/` or `wss://HOST:PORT/` (checked, normalized). */
  readonly url: string;
  /** Extra trusted authorities (PEM) for `wss://` in Deno, or undefined for the default roots. */
  readonly caCerts: readonly string[] | undefined;
}

/** How a client's link speaks TLS. */
export interface TlsConfig {
  /** Extra trusted authorities (PEM), or undefined for the default roots only. */
  readonly caCerts: readonly string[] | undefined;
}

/**
 * Defaults of every {@linkcode ClientOptions} field but `identity` (none by
 * default: the relay keys the virtual IP on the client's real IP),
 * `joinToken` (none), `relayId` (pin the first relay joined), `url` (none:
 * TCP to `hostname` and `port`), `relays` (none: the one relay of `hostname`
 * and `port`) and `caCerts` (the default roots only).
 *
 * @example Start from the defaults
 * ```ts
 * import { type ClientOptions, DEFAULT_CLIENT_OPTIONS } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_CLIENT_OPTIONS.port, 1337);
 * const patient: ClientOptions = {
 *   requestTimeoutMs: DEFAULT_CLIENT_OPTIONS.requestTimeoutMs * 2,
 * };
 * assert.equal(patient.requestTimeoutMs, 30_000);
 * ```
 */
export const DEFAULT_CLIENT_OPTIONS: Readonly<
  & Required<
    Omit<
      ClientOptions,
      "identity" | "joinToken" | "relayId" | "reconnect" | "caCerts" | "url" | "relays"
    >
  >
  & { reconnect: Readonly<Required<ReconnectOptions>> }
> = Object.freeze({
  hostname: "127.0.0.1",
  port: DEFAULT_RELAY_PORT,
  window: DEFAULT_WINDOW_BYTES,
  maxWindow: DEFAULT_MAX_WINDOW_BYTES,
  handshakeTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepaliveMs: 15_000,
  peerTimeoutMs: 45_000,
  tls: false,
  reconnect: Object.freeze({ initialDelayMs: 100, maxDelayMs: 10_000, maxAttempts: Infinity }),
});

/**
 * Merges options over the defaults; throws TypeError or RangeError on a bad
 * value, SyntaxError on a join token that is not one.
 */
export function resolveClientConfig(options: ClientOptions = {}): ClientConfig {
  const d = DEFAULT_CLIENT_OPTIONS;
  const relays = resolveRelays(options);
  const websocket = resolveWebSocket(options);
  if (websocket === null && !canDialTcp()) {
    throw new TypeError(
      "Cannot connect: this platform has no TCP (no Deno.connect): join over WebSocket " +
        'with url: "wss://HOST:PORT/"',
    );
  }
  const endpoint = websocket === null
    ? relays?.[0] ?? null
    : webSocketEndpoint(new URL(websocket.url));
  const hostname = endpoint?.hostname ?? options.hostname ?? d.hostname;
  const port = endpoint?.port ?? options.port ?? d.port;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new RangeError(`Cannot connect: relay port ${port} is outside 1..65535`);
  }
  const config: ClientConfig = {
    hostname,
    port,
    relays: relays ?? Object.freeze([relayEndpoint(hostname, port)]),
    websocket,
    identity: resolveIdentity(options.identity),
    joinToken: resolveJoinToken(options.joinToken),
    relayId: resolveRelayId(options.relayId),
    window: options.window ?? d.window,
    maxWindow: options.maxWindow ?? Math.max(d.maxWindow, options.window ?? d.window),
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? d.handshakeTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? d.requestTimeoutMs,
    keepaliveMs: options.keepaliveMs ?? d.keepaliveMs,
    peerTimeoutMs: options.peerTimeoutMs ?? d.peerTimeoutMs,
    tls: websocket === null ? resolveTls(options.tls ?? d.tls, options.caCerts) : null,
    reconnect: resolveReconnect(options.reconnect ?? true),
  };
  if (
    !Number.isInteger(config.window) || config.window < MIN_WINDOW_BYTES ||
    config.window > MAX_WINDOW_BYTES
  ) {
    throw new RangeError(
      `Cannot connect: window ${config.window} is outside ${MIN_WINDOW_BYTES}..${MAX_WINDOW_BYTES}`,
    );
  }
  if (
    !Number.isInteger(config.maxWindow) || config.maxWindow < config.window ||
    config.maxWindow > MAX_WINDOW_BYTES
  ) {
    throw new RangeError(
      `Cannot connect: maxWindow ${config.maxWindow} is outside window..${MAX_WINDOW_BYTES}`,
    );
  }
  for (const field of ["handshakeTimeoutMs", "requestTimeoutMs"] as const) {
    if (!(config[field] > 0)) {
      throw new RangeError(`Cannot connect: ${field} ${config[field]} is not positive`);
    }
  }
  checkTimer("keepaliveMs", config.keepaliveMs, 1);
  checkTimer("peerTimeoutMs", config.peerTimeoutMs, config.keepaliveMs + 1);
  return config;
}

/**
 * The relays option, checked (see `relays.ts`): null without one; TypeError
 * when it comes with the options it replaces.
 */
function resolveRelays(options: ClientOptions): readonly RelayEndpoint[] | null {
  if (options.relays === undefined || options.relays === null) return null;
  const clash = (["hostname", "port", "url"] as const).filter((field) =>
    options[field] !== undefined && options[field] !== null
  );
  if (clash.length > 0) {
    throw new TypeError(
      `Cannot connect: relays cannot be combined with ${clash.join(", ")}: its entries name ` +
        `the relays (HOST:PORT, at most ${MAX_RELAYS})`,
    );
  }
  return parseRelays(options.relays);
}

/**
 * The identity option, checked: a secret as a copy of its bytes (RangeError
 * outside 16..256 bytes), an Identity as it is (TypeError unless it has a
 * 32-byte public key and an Ed25519 private key that may sign).
 */
function resolveIdentity(
  identity: Identity | string | Uint8Array | undefined,
): Identity | Uint8Array<ArrayBuffer> | null {
  if (identity === undefined || identity === null) return null;
  if (typeof identity === "string" || identity instanceof Uint8Array) {
    const bytes = typeof identity === "string"
      ? new TextEncoder().encode(identity)
      : new Uint8Array(identity);
    if (bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES) {
      throw new RangeError(
        `Cannot connect: an identity secret of ${bytes.length} bytes is outside ` +
          `${MIN_SECRET_BYTES}..${MAX_SECRET_BYTES}`,
      );
    }
    return bytes;
  }
  const { publicKey, privateKey } = identity as Partial<Identity>;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new TypeError(
      "Cannot connect: identity is not an Identity (a 32-byte publicKey and a privateKey), " +
        "a string or a Uint8Array",
    );
  }
  if (
    !(privateKey instanceof CryptoKey) || privateKey.type !== "private" ||
    privateKey.algorithm.name !== "Ed25519" || !privateKey.usages.includes("sign")
  ) {
    throw new TypeError(
      "Cannot connect: identity.privateKey is not an Ed25519 private CryptoKey with usage sign",
    );
  }
  return identity;
}

/** The join token option, checked: SyntaxError unless it is one (see crypto/join_token.ts). */
function resolveJoinToken(joinToken: string | undefined): string | null {
  if (joinToken === undefined || joinToken === null) return null;
  if (typeof joinToken !== "string") {
    throw new TypeError("Cannot connect: joinToken is not a string");
  }
  const parts = parseJoinToken(joinToken);
  if (typeof parts === "string") {
    throw new SyntaxError(
      `Cannot connect: the join token ${parts}; copy it again from the relay's operator`,
    );
  }
  return joinToken;
}

/** The relayId option, checked: RangeError unless it is 64 lowercase hex digits. */
function resolveRelayId(relayId: string | undefined): string | null {
  if (relayId === undefined || relayId === null) return null;
  if (typeof relayId !== "string" || !/^[0-9a-f]{64}$/.test(relayId)) {
    throw new RangeError(
      `Cannot connect: relayId ${JSON.stringify(String(relayId))} is not 64 lowercase hex digits ` +
        "(the relay's id as AlphaNetClient.relayId shows it)",
    );
  }
  return relayId;
}

function resolveTls(tls: boolean, caCerts: string[] | undefined): TlsConfig | null {
  if (caCerts !== undefined) {
    checkCaCerts(caCerts);
    if (!tls) throw new TypeError("Cannot connect: caCerts needs tls: true");
  }
  return tls ? Object.freeze({ caCerts: caCerts && Object.freeze([...caCerts]) }) : null;
}

/** Throws TypeError unless `caCerts` is an array of strings. */
function checkCaCerts(caCerts: unknown): asserts caCerts is string[] {
  if (!Array.isArray(caCerts) || !caCerts.every((cert) => typeof cert === "string")) {
    throw new TypeError("Cannot connect: caCerts is not an array of PEM strings");
  }
}

/**
 * The url option, checked: null without one; else a `ws:` or `wss:` URL
 * whose path is `/` (the only one the relay serves), on a platform with a
 * `WebSocket`, and without the TCP options that it replaces. TypeError for
 * anything else.
 */
/**
 * The host and port a `ws://` or `wss://` URL names: the host without the
 * brackets a URL keeps around an IPv6 address, the port the scheme's default
 * (80, 443) when it names none.
 *
 * @param url A WebSocket URL.
 * @returns Its host and port.
 */
export function webSocketEndpoint(url: URL): { hostname: string; port: number } {
  return {
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(url.port || (url.protocol === "wss:" ? 443 : 80)),
  };
}

function resolveWebSocket(options: ClientOptions): WebSocketConfig | null {
  const { url, caCerts } = options;
  if (url === undefined || url === null) return null;
  if (typeof url !== "string" && !(url instanceof URL)) {
    throw new TypeError("Cannot connect: url is not a string or a URL");
  }
  const clash = (["hostname", "port", "tls"] as const).filter((field) =>
    options[field] !== undefined
  );
  if (clash.length > 0) {
    throw new TypeError(
      `Cannot connect: url cannot be combined with ${clash.join(", ")}: the URL names the ` +
        "relay (and wss:// is TLS)",
    );
  }
  const text = String(url);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new TypeError(
      `Cannot connect: url ${JSON.stringify(text)} is not a URL (expected ws://HOST:PORT/ ` +
        "or wss://HOST:PORT/)",
    );
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new TypeError(
      `Cannot connect: url ${JSON.stringify(text)} is not a ws:// or wss:// URL (the relay's ` +
        "WebSocket endpoint is ws://HOST:PORT/, or wss://HOST:PORT/ when it speaks TLS)",
    );
  }
  if (parsed.pathname !== "/" || parsed.hash !== "") {
    throw new TypeError(
      `Cannot connect: url ${JSON.stringify(text)} has the path ` +
        `${
          JSON.stringify(parsed.pathname + parsed.hash)
        }: the relay serves its WebSocket at "/" only`,
    );
  }
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== "function") {
    throw new TypeError("Cannot connect: url needs a WebSocket, and this platform has none");
  }
  if (caCerts !== undefined) {
    checkCaCerts(caCerts);
    if (parsed.protocol !== "wss:") {
      throw new TypeError("Cannot connect: caCerts needs a wss:// url (or tls: true)");
    }
    if (!canTrustCaCerts()) {
      throw new TypeError(
        "Cannot connect: caCerts with a wss:// url needs Deno (Deno.createHttpClient); a " +
          "browser trusts only the authorities its system does",
      );
    }
  }
  return Object.freeze({
    url: parsed.href,
    caCerts: caCerts && Object.freeze([...caCerts]),
  });
}

/** Whether this platform can open a TCP link: Deno can, a browser cannot. */
function canDialTcp(): boolean {
  const deno = (globalThis as { Deno?: { connect?: unknown } }).Deno;
  return typeof deno?.connect === "function";
}

/** Whether this platform's WebSocket can be given extra authorities: Deno's can. */
function canTrustCaCerts(): boolean {
  const deno = (globalThis as { Deno?: { createHttpClient?: unknown } }).Deno;
  return typeof deno?.createHttpClient === "function";
}

function resolveReconnect(
  option: boolean | ReconnectOptions,
): Readonly<Required<ReconnectOptions>> | null {
  if (option === false) return null;
  const d = DEFAULT_CLIENT_OPTIONS.reconnect!;
  if (option === true) return d;
  const policy = {
    initialDelayMs: option.initialDelayMs ?? d.initialDelayMs,
    maxDelayMs: option.maxDelayMs ?? Math.max(d.maxDelayMs, option.initialDelayMs ?? 0),
    maxAttempts: option.maxAttempts ?? d.maxAttempts,
  };
  checkTimer("reconnect.initialDelayMs", policy.initialDelayMs, 1);
  checkTimer("reconnect.maxDelayMs", policy.maxDelayMs, policy.initialDelayMs);
  const attempts = policy.maxAttempts;
  if (!(attempts === Infinity || (Number.isInteger(attempts) && attempts >= 1))) {
    throw new RangeError(
      `Cannot connect: reconnect.maxAttempts ${attempts} is not a positive integer or Infinity`,
    );
  }
  return Object.freeze(policy);
}

/** Throws unless `value` is a number of ms in `min..MAX_TIMER_MS`. */
function checkTimer(field: string, value: number, min: number): void {
  if (!(typeof value === "number" && value >= min && value <= MAX_TIMER_MS)) {
    throw new RangeError(`Cannot connect: ${field} ${value} is outside ${min}..${MAX_TIMER_MS}`);
  }
}
