/**
 * Opens the AlphaNET client a command runs with: the relay from `--server`
 * (over TLS with `--tls`, trusting `--ca-cert`; over WebSocket for a `ws://`
 * or `wss://` URL; a comma-separated list becomes the client's `relays`),
 * the identity from
 * `--identity-file` (else the default file; none with `--no-identity`), the
 * join token from `--join-token` (else `$ALPHANET_JOIN_TOKEN`).
 * Long-running commands keep trying to join a relay that is down, with the
 * client's own reconnect backoff, so they can start at boot before the relay
 * does.
 *
 * @module
 */

import { type AlphaNetClient, connect } from "../mod.ts";
import { DEFAULT_CLIENT_OPTIONS } from "../client/options.ts";
import { backoffDelay, isFatal } from "../client/reconnect.ts";
import {
  type CommonOptions,
  formatHostPort,
  type HostPort,
  type IdentitySource,
  relayName,
} from "./args.ts";
import { oneLine } from "../flags/one_line.ts";
import { RuntimeError, stateOf } from "./errors.ts";
import { defaultIdentityPath, type IdentityFileContent, loadIdentity } from "./identity.ts";
import type { EventLog } from "./log.ts";

/** How a command wants its client. */
export interface SessionOptions {
  /**
   * Whether the client reconnects after losing the relay: true for the
   * long-running commands (expose, forward), whose listeners survive it.
   */
  readonly reconnect: boolean;
  /** Name printed before the retry and reconnect notices on stderr. */
  readonly command: string;
  /** Where those notices go. */
  readonly log: EventLog;
  /** How long a request (status, connect, ping) may take, in ms. @default {15000} */
  readonly requestTimeoutMs?: number;
  /**
   * Keep trying to join while the relay cannot be reached, until this signal
   * aborts (then {@linkcode openClient} resolves null). Without it the first
   * failure throws. @default {undefined}
   */
  readonly retryUntil?: AbortSignal;
}

/**
 * Connects to the relay and waits for the virtual IP. Throws RuntimeError
 * (one line) if the identity file or the relay fails; with `retryUntil`,
 * retries what a later attempt may fix (printing one line each time the
 * reason changes) and resolves null if stopped first.
 */
export async function openClient(
  common: CommonOptions,
  options: SessionOptions & { readonly retryUntil: AbortSignal },
): Promise<AlphaNetClient | null>;
export async function openClient(
  common: CommonOptions,
  options: SessionOptions,
): Promise<AlphaNetClient>;
export async function openClient(
  common: CommonOptions,
  options: SessionOptions,
): Promise<AlphaNetClient | null> {
  const identity = await identityOf(common.identity);
  const caCerts = common.caCertFile === null ? undefined : [await readCaCert(common.caCertFile)];
  const where = relayName(common);
  const relay = common.websocket !== null
    ? { url: common.websocket }
    : common.relays.length > 1
    ? { relays: common.relays.map(formatHostPort), tls: common.tls }
    : { hostname: common.server.hostname, port: common.server.port, tls: common.tls };
  const join = (): Promise<AlphaNetClient> =>
    connect({
      ...relay,
      caCerts,
      identity,
      joinToken: common.joinToken ?? undefined,
      relayId: common.relayId ?? undefined,
      reconnect: options.reconnect,
      requestTimeoutMs: options.requestTimeoutMs,
    });
  const stop = options.retryUntil;
  let net: AlphaNetClient | null;
  try {
    net = stop === undefined
      ? await join()
      : await joinWithRetry(join, options, common.relays, where, stop);
  } catch (error) {
    throw new RuntimeError(joinFailure(error, common.relays, where), { cause: error });
  }
  if (net !== null && options.reconnect) reportStates(net, options, common.relays, where);
  return net;
}

/**
 * The line of a failed join: "cannot join relay at HOST:PORT: <why>"; for a
 * list that every relay refused, "cannot join any relay of A,B: A: <why>;
 * B: <why>" (the client's AggregateError holds their errors in list order).
 */
function joinFailure(error: unknown, relays: readonly HostPort[], where: string): string {
  if (relays.length > 1 && error instanceof AggregateError) {
    const each = relays.map((relay, i) => `${formatHostPort(relay)}: ${stateOf(error.errors[i])}`);
    return `cannot join any relay of ${where}: ${each.join("; ")}`;
  }
  return `cannot join relay at ${where}: ${stateOf(error)}`;
}

/** Which relay a client is on, as its lines say: the one of a list it joined, else `where`. */
function joinedRelay(net: AlphaNetClient, relays: readonly HostPort[], where: string): string {
  return relays.length > 1 ? net.relay : where;
}

/** The identity (or old-format secret) a command joins with; undefined with `--no-identity`. */
async function identityOf(source: IdentitySource): Promise<IdentityFileContent | undefined> {
  switch (source.kind) {
    case "file":
      return await loadIdentity(source.path);
    case "default":
      return await loadIdentity(defaultIdentityPath());
    case "none":
      return undefined;
    default: {
      const _never: never = source;
      return _never;
    }
  }
}

/** Reads the `--ca-cert` file; RuntimeError (one line) if it cannot. */
async function readCaCert(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new RuntimeError(`cannot read --ca-cert ${path}: ${oneLine(error)}`, { cause: error });
  }
}

/**
 * Runs `join` until it succeeds, fails for good (the client's own rule:
 * a takeover, a bad identity, ... is not retried) or `stop` aborts (null).
 * Waits between attempts like a reconnecting client.
 */
async function joinWithRetry(
  join: () => Promise<AlphaNetClient>,
  { command, log }: SessionOptions,
  relays: readonly HostPort[],
  where: string,
  stop: AbortSignal,
): Promise<AlphaNetClient | null> {
  const policy = DEFAULT_CLIENT_OPTIONS.reconnect!;
  let reported: string | null = null;
  // Each pass is one attempt; the bound is the signal (a boot-time service waits as long as needed).
  for (let attempt = 0; !stop.aborted; attempt++) {
    try {
      const net = await join();
      if (reported !== null) {
        const relay = joinedRelay(net, relays, where);
        log.log("info", "joined", `${command}: joined relay at ${relay}`, { relay });
      }
      return net;
    } catch (error) {
      if (isFatal(error)) throw error;
      const line = joinFailure(error, relays, where);
      // One line per reason, not per attempt: a relay down for an hour is one line.
      if (line !== reported) {
        log.log(
          "warn",
          "join-retry",
          `${command}: ${line}; retrying (--fail-fast to exit instead)`,
          { relay: where, error: line },
        );
        reported = line;
      }
    }
    await sleep(backoffDelay(attempt, policy), stop);
  }
  return null;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * Logs one event each time a reconnecting client loses or regains the relay;
 * with a list of relays, each names the relay (the one lost, the one joined).
 */
function reportStates(
  net: AlphaNetClient,
  { command, log }: SessionOptions,
  relays: readonly HostPort[],
  where: string,
): void {
  const list = relays.length > 1;
  net.addEventListener("statechange", (event) => {
    const relay = joinedRelay(net, relays, where);
    if (event.state === "reconnecting") {
      const state = stateOf(event.error);
      const lost = list ? `lost the relay at ${relay}` : "lost the relay";
      log.log("warn", "relay-lost", `${command}: ${lost} (${state}), reconnecting`, {
        relay,
        reason: state,
      });
    } else if (event.state === "connected") {
      const back = list ? `reconnected to the relay at ${relay}` : "reconnected to the relay";
      log.log("info", "reconnected", `${command}: ${back}`, { relay });
    }
  });
}

/**
 * Resolves with a RuntimeError when the client ends for good by itself
 * (`Replaced`, `AddressChanged`, a fatal refusal): "cannot stay on relay at
 * HOST:PORT: <why>" (or the relay's WebSocket URL).
 */
export async function clientEnded(net: AlphaNetClient, where: string): Promise<RuntimeError> {
  const error = await net.closed;
  return new RuntimeError(
    `cannot stay on relay at ${where}: ${error === null ? "closed" : stateOf(error)}`,
    { cause: error },
  );
}
