/**
 * The relay's NATS connection: how it is opened (reconnecting forever, soon
 * after an outage) and how its status changes are logged and tracked.
 * nats.js sends every live subscription again when it reconnects, so
 * presence needs no rebuild of its own after an outage.
 *
 * @module
 */

import { redactedNatsUrls } from "../config.ts";
import { connect, type NatsConnection, type Status } from "@nats-io/transport-node";
import type { PresenceLog } from "./presence_log.ts";

/** Time to reach NATS at start; after that it is retried forever. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Wait between reconnect attempts (plus up to the jitter), so a restarted NATS is back in a second. */
const RECONNECT_WAIT_MS = 250;
const RECONNECT_JITTER_MS = 100;
/** Client pings: a NATS server that vanished without closing TCP is noticed in about 30 s. */
const PING_INTERVAL_MS = 10_000;
const MAX_PINGS_OUT = 2;

/**
 * Opens a connection to the first reachable server of `url` (comma-separated
 * list). Throws a TypeError for an empty list, and an Error naming the URL
 * (without credentials) when none can be reached.
 */
export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  const servers = url.split(",").map((server) => server.trim()).filter((server) => server !== "");
  if (servers.length === 0) throw new TypeError("Cannot connect to NATS: no URL given");
  try {
    return await connect({
      servers,
      name,
      timeout: CONNECT_TIMEOUT_MS,
      maxReconnectAttempts: -1,
      reconnectTimeWait: RECONNECT_WAIT_MS,
      reconnectJitter: RECONNECT_JITTER_MS,
      reconnectJitterTLS: RECONNECT_JITTER_MS,
      pingInterval: PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
      // A relay's own locate requests never reach its own subscriptions (those
      // clients are local), and its own claims never come back to it.
      noEcho: true,
    });
  } catch (error) {
    throw new Error(`Cannot connect to NATS at ${redactedNatsUrls(url)}: ${error}`, {
      cause: error,
    });
  }
}

/**
 * Follows a connection's status events: whether it is up, a log line per
 * change (one per outage, not one per reconnect attempt), and a call after
 * each reconnect.
 */
export class NatsStatus {
  readonly #log: PresenceLog;
  readonly #onReconnect: () => void;
  #connected = true;
  #closing = false;
  /** Settles once the connection is closed and its status iterator ended. */
  readonly done: Promise<void>;

  /** Follows `nc` from now on; calls `onReconnect` (which must not throw) after each reconnect. */
  constructor(nc: NatsConnection, log: PresenceLog, onReconnect: () => void) {
    this.#log = log;
    this.#onReconnect = onReconnect;
    this.done = (async () => {
      for await (const status of nc.status()) this.#on(status);
    })().catch((error) =>
      log.log("error", "internal-error", { during: "nats-status", error: String(error) })
    );
  }

  /** Whether the connection is up (as of the last status event). */
  get connected(): boolean {
    return this.#connected;
  }

  /** The connection is being closed on purpose: its end is not an error. */
  closing(): void {
    this.#closing = true;
  }

  #on(status: Status): void {
    switch (status.type) {
      case "disconnect":
        if (this.#connected && !this.#closing) {
          this.#log.log("warn", "nats-disconnected", { server: redactedNatsUrls(status.server) });
        }
        this.#connected = false;
        return;
      case "reconnect":
        this.#connected = true;
        this.#log.log("info", "nats-reconnected", { server: redactedNatsUrls(status.server) });
        this.#onReconnect();
        return;
      case "ldm":
        this.#log.log("warn", "nats-lame-duck", { server: redactedNatsUrls(status.server) });
        return;
      case "error":
        this.#log.limited("warn", "nats-error", { error: String(status.error) });
        return;
      case "slowConsumer":
        this.#log.limited("warn", "nats-slow-consumer", {
          subject: status.sub.getSubject(),
          pending: status.pending,
        });
        return;
      case "staleConnection":
        this.#log.log("warn", "nats-stale-connection");
        return;
      case "close":
        if (!this.#closing) this.#log.log("error", "nats-closed");
        this.#connected = false;
        return;
      case "reconnecting":
      case "forceReconnect":
      case "update":
      case "ping":
        return; // one per attempt or ping: too many to log, and nothing to do
      default: {
        const _never: never = status;
      }
    }
  }
}
