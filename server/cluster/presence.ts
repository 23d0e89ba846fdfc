/**
 * Presence over NATS (issue 12): how the relays of one cluster find each
 * other's clients. A relay subscribes to one subject per client it holds and
 * answers locate requests there; an address nobody holds is answered by the
 * NATS server at once ("no responders"). Presence lives in the subscriptions
 * of the relay's NATS connection, so it disappears with that connection when
 * the relay dies, and nats.js sends every live subscription again when it
 * reconnects, so it is rebuilt after a NATS outage without our help.
 * Subjects and payloads: ./presence_wire.ts.
 *
 * @module
 */

import {
  connect,
  type Msg,
  type NatsConnection,
  RequestError,
  type Status,
  type Subscription,
  TimeoutError,
} from "@nats-io/transport-node";
import type { Logger } from "../log.ts";
import { RateLimitedLog } from "../log_limiter.ts";
import {
  checkAddress,
  decodeClaim,
  decodeDialAnswer,
  decodeNodeInfo,
  encodeClaim,
  encodeDialAnswer,
  encodeNodeInfo,
  isNodeId,
  isNodeInfo,
  type NodeInfo,
  PresenceSubjects,
} from "./presence_wire.ts";

export type { NodeInfo } from "./presence_wire.ts";

/** How a relay reaches NATS and who it is there. */
export interface PresenceOptions {
  /** `nats://host:port`, or a comma-separated list of them. */
  url: string;
  /** Subject prefix of the network, e.g. `alphanet.<16 hex of the network id>`. */
  prefix: string;
  /** This relay. */
  self: NodeInfo;
  /** Where NATS status changes and refused payloads are logged. */
  log: Logger;
  /**
   * How long {@linkcode Presence.locate} waits for an answer.
   * @default {2000}
   */
  locateTimeoutMs?: number;
}

/** Defaults of {@linkcode PresenceOptions} and of {@linkcode Presence.requestDial}. */
export const PRESENCE_DEFAULTS = {
  locateTimeoutMs: 2_000,
  dialTimeoutMs: 5_000,
} as const;

/** Time to reach NATS at start; after that it is retried forever. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Wait between reconnect attempts (plus up to the jitter), so a restarted NATS is back in a second. */
const RECONNECT_WAIT_MS = 250;
const RECONNECT_JITTER_MS = 100;
/** Client pings: a NATS server that vanished without closing TCP is noticed in about 30 s. */
const PING_INTERVAL_MS = 10_000;
const MAX_PINGS_OUT = 2;
/** Dial requests served at once; more are answered "busy" (each one dials a TCP link). */
const MAX_CONCURRENT_DIALS = 16;
/** How often suppressed counts of refused payloads are reported, at the earliest. */
const SUPPRESSED_REPORT_MS = 10_000;

/** A subject can be long (a wildcard token is anyone's choice): logs keep its start. */
const MAX_LOGGED_SUBJECT_CHARS = 120;

const EMPTY = new Uint8Array(0);

/** `nats://user:pass@host` → `nats://***@host`, for logs and errors. */
function redact(url: string): string {
  return url.replace(/\/\/[^/@]*@/g, "//***@");
}

/**
 * One relay's presence in its cluster: the clients it holds, found by the
 * others through NATS, and dial requests between relays. See the module
 * documentation for the subjects.
 */
export class Presence {
  // Static after construction.
  readonly #nc: NatsConnection;
  readonly #subjects: PresenceSubjects;
  readonly #self: NodeInfo;
  readonly #selfAnswer: Uint8Array;
  readonly #log: Logger;
  readonly #wireLog: RateLimitedLog;
  readonly #locateTimeoutMs: number;
  readonly #statusLoop: Promise<void>;

  // Owned by announce/withdraw/claim and the status loop.
  readonly #announced = new Map<number, Subscription>();
  /** Claims made while NATS was down (published again on reconnect if still announced). */
  readonly #unsentClaims = new Set<number>();
  #dialSub: Subscription | null = null;
  #dialsRunning = 0;
  #connected = true;
  #state: "open" | "closing" | "closed" = "open";
  #closing: Promise<void> | null = null;
  #lastSuppressedReport = performance.now();

  /** Called with the address and node id of each claim another relay publishes. */
  onClaim: ((address: number, node: string) => void) | null = null;
  /** Called after NATS came back and every subscription is in place again. */
  onReconnect: (() => void) | null = null;

  private constructor(nc: NatsConnection, subjects: PresenceSubjects, options: PresenceOptions) {
    this.#nc = nc;
    this.#subjects = subjects;
    this.#self = { node: options.self.node, mesh: options.self.mesh };
    this.#selfAnswer = encodeNodeInfo(this.#self);
    this.#log = options.log;
    this.#wireLog = new RateLimitedLog(options.log);
    this.#locateTimeoutMs = options.locateTimeoutMs ?? PRESENCE_DEFAULTS.locateTimeoutMs;
    this.#statusLoop = this.#watchStatus().catch((error) =>
      this.#log.log("error", "internal-error", { during: "nats-status", error: String(error) })
    );
    nc.subscribe(subjects.claims(), { callback: (error, msg) => this.#onClaimMessage(error, msg) });
  }

  /**
   * Connects to NATS and listens for claims. Rejects with a TypeError or
   * RangeError for bad options, and with an Error if NATS cannot be reached.
   */
  static async connect(options: PresenceOptions): Promise<Presence> {
    const subjects = new PresenceSubjects(options.prefix);
    if (!isNodeInfo(options.self)) {
      throw new TypeError(
        `Cannot start presence: self must be {node: 32 lowercase hex, mesh: "host:port"}`,
      );
    }
    const timeout = options.locateTimeoutMs ?? PRESENCE_DEFAULTS.locateTimeoutMs;
    if (!Number.isInteger(timeout) || timeout < 1) {
      throw new RangeError(`Cannot start presence: locateTimeoutMs ${timeout} is not positive`);
    }
    const servers = options.url.split(",").map((url) => url.trim()).filter((url) => url !== "");
    if (servers.length === 0) throw new TypeError("Cannot start presence: no NATS URL given");
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers,
        name: `alphanet-relay ${options.self.node}`,
        timeout: CONNECT_TIMEOUT_MS,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RECONNECT_WAIT_MS,
        reconnectJitter: RECONNECT_JITTER_MS,
        reconnectJitterTLS: RECONNECT_JITTER_MS,
        pingInterval: PING_INTERVAL_MS,
        maxPingOut: MAX_PINGS_OUT,
        // Our own locate requests never reach our own subscriptions (those
        // clients are local), and our own claims never come back.
        noEcho: true,
      });
    } catch (error) {
      throw new Error(`Cannot connect to NATS at ${redact(options.url)}: ${error}`, {
        cause: error,
      });
    }
    const presence = new Presence(nc, subjects, options);
    options.log.log("info", "nats-connected", { server: redact(nc.getServer()) });
    await presence.flush(); // the claim subscription is live when connect resolves
    return presence;
  }

  /** Whether the NATS connection is up now. */
  get connected(): boolean {
    return this.#connected && this.#state === "open";
  }

  /** This relay now holds the client at `address`: answer locates for it. Idempotent. */
  announce(address: number): void {
    checkAddress(address);
    if (this.#state !== "open" || this.#announced.has(address)) return;
    const sub = this.#nc.subscribe(this.#subjects.vip(address), {
      callback: (error, msg) => this.#answerLocate(error, msg),
    });
    this.#announced.set(address, sub);
  }

  /** This relay no longer holds the client at `address`. Idempotent. */
  withdraw(address: number): void {
    checkAddress(address);
    this.#unsentClaims.delete(address);
    const sub = this.#announced.get(address);
    if (sub === undefined) return;
    this.#announced.delete(address);
    this.#unsubscribe(sub);
  }

  /**
   * The relay holding the client at `address`: the first answer, or null when
   * nobody holds it (at once), on time-out, while NATS is down or closed.
   * Never rejects; an answer naming this relay counts as null.
   */
  async locate(address: number): Promise<NodeInfo | null> {
    checkAddress(address);
    if (!this.connected) return null;
    let data: Uint8Array;
    try {
      const reply = await this.#nc.request(this.#subjects.vip(address), EMPTY, {
        timeout: this.#locateTimeoutMs,
      });
      data = reply.data;
    } catch (error) {
      if (
        error instanceof TimeoutError || (error instanceof RequestError && !error.isNoResponders())
      ) {
        this.#wireLog.log("debug", "locate-failed", { vip: address, error: String(error) });
      }
      return null;
    }
    const holder = decodeNodeInfo(data);
    if (holder === null) {
      this.#refused("locate answer", this.#subjects.vip(address));
      return null;
    }
    return holder.node === this.#self.node ? null : holder;
  }

  /** Tells the other relays that this one just admitted the client at `address`. */
  claim(address: number): void {
    checkAddress(address);
    if (this.#state !== "open") return;
    if (!this.#connected) {
      this.#unsentClaims.add(address); // nats.js drops what is published while it is down
      return;
    }
    this.#publish(this.#subjects.claim(address), encodeClaim(this.#self.node));
  }

  /**
   * Serves dial requests from other relays: runs `handler` with the
   * requester (it resolves once the relay link is up) and answers ok or
   * its error text. At most one handler; a second call throws.
   */
  serveDial(handler: (from: NodeInfo) => Promise<void>): void {
    if (this.#dialSub !== null) throw new Error("Cannot serve dial requests twice");
    if (this.#state !== "open") return;
    this.#dialSub = this.#nc.subscribe(this.#subjects.dial(this.#self.node), {
      callback: (error, msg) => this.#serveDialMessage(handler, error, msg),
    });
  }

  /**
   * Asks relay `node` to dial this one. Resolves once it answered ok;
   * rejects with an Error when nobody serves that node, on time-out, on an
   * error answer, while NATS is down, and with a TypeError for a bad id.
   */
  async requestDial(
    node: string,
    timeoutMs: number = PRESENCE_DEFAULTS.dialTimeoutMs,
  ): Promise<void> {
    if (!isNodeId(node)) throw new TypeError(`Cannot request a dial: bad node id ${node}`);
    const what = `Cannot request a dial from node ${node}`;
    if (!this.connected) throw new Error(`${what}: NATS is not connected`);
    let data: Uint8Array;
    try {
      const reply = await this.#nc.request(this.#subjects.dial(node), this.#selfAnswer, {
        timeout: timeoutMs,
      });
      data = reply.data;
    } catch (error) {
      const reason = error instanceof RequestError && error.isNoResponders()
        ? "no relay with that id is connected to NATS"
        : error instanceof TimeoutError
        ? `no answer within ${timeoutMs} ms`
        : String(error);
      throw new Error(`${what}: ${reason}`, { cause: error });
    }
    const answer = decodeDialAnswer(data);
    if (answer === null) {
      this.#refused("dial answer", this.#subjects.dial(node));
      throw new Error(`${what}: malformed answer`);
    }
    if (!answer.ok) throw new Error(`${what}: it answered: ${answer.error}`);
  }

  /**
   * Resolves once NATS has processed everything sent so far (announce,
   * withdraw, claim): true, or false if NATS is down or closed. Never rejects.
   */
  async flush(): Promise<boolean> {
    if (!this.connected) return false;
    try {
      await this.#nc.flush();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Leaves the cluster: withdraws every address and stops serving dials
   * first, and waits until NATS has processed that (when it is up), so from
   * then on locates of its clients get "no responders" (or their new relay)
   * and never this relay; then closes the connection. Idempotent.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  /** Closes (see {@linkcode Presence.close}). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#state = "closing";
    for (const sub of this.#announced.values()) this.#unsubscribe(sub);
    this.#announced.clear();
    this.#unsentClaims.clear();
    if (this.#dialSub !== null) this.#unsubscribe(this.#dialSub);
    // A flush pending while NATS is down is rejected at the next reconnect attempt, so this
    // never waits longer than one reconnect wait.
    if (this.#connected) await this.#nc.flush().catch(() => {});
    this.#state = "closed";
    await this.#nc.close().catch(() => {});
    await this.#statusLoop;
    this.#wireLog.report();
  }

  /** Logs every NATS status change; ends when the connection closes. */
  async #watchStatus(): Promise<void> {
    for await (const status of this.#nc.status()) this.#onStatus(status);
  }

  #onStatus(status: Status): void {
    switch (status.type) {
      case "disconnect":
        if (this.#connected && this.#state === "open") {
          this.#log.log("warn", "nats-disconnected", { server: redact(status.server) });
        }
        this.#connected = false;
        return;
      case "reconnect":
        this.#connected = true;
        this.#log.log("info", "nats-reconnected", {
          server: redact(status.server),
          announced: this.#announced.size,
        });
        void this.#afterReconnect();
        return;
      case "ldm":
        this.#log.log("warn", "nats-lame-duck", { server: redact(status.server) });
        return;
      case "error":
        this.#wireLog.log("warn", "nats-error", { error: String(status.error) });
        return;
      case "slowConsumer":
        this.#wireLog.log("warn", "nats-slow-consumer", {
          subject: status.sub.getSubject(),
          pending: status.pending,
        });
        return;
      case "staleConnection":
        this.#log.log("warn", "nats-stale-connection");
        return;
      case "close":
        if (this.#state === "open") this.#log.log("error", "nats-closed");
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

  /** nats.js has sent every live subscription again; waits until NATS has them, then tells. */
  async #afterReconnect(): Promise<void> {
    for (const address of this.#unsentClaims) {
      if (this.#announced.has(address)) this.claim(address);
    }
    this.#unsentClaims.clear();
    if (!(await this.flush()) || this.#state !== "open") return;
    try {
      this.onReconnect?.();
    } catch (error) {
      this.#log.log("error", "internal-error", { during: "onReconnect", error: String(error) });
    }
  }

  #answerLocate(error: Error | null, msg: Msg): void {
    if (error !== null) {
      this.#wireLog.log("warn", "nats-subscription-error", { error: String(error) });
      return;
    }
    if (this.#state !== "open" || !msg.reply) return;
    try {
      msg.respond(this.#selfAnswer);
    } catch (failure) {
      this.#wireLog.log("debug", "locate-answer-failed", { error: String(failure) });
    }
  }

  #onClaimMessage(error: Error | null, msg: Msg): void {
    if (error !== null) {
      this.#wireLog.log("warn", "nats-subscription-error", { error: String(error) });
      return;
    }
    const address = this.#subjects.claimAddress(msg.subject);
    const node = decodeClaim(msg.data);
    if (address === null || node === null) {
      this.#refused("claim", msg.subject);
      return;
    }
    if (node === this.#self.node || this.#state !== "open") return;
    try {
      this.onClaim?.(address, node);
    } catch (failure) {
      this.#log.log("error", "internal-error", { during: "onClaim", error: String(failure) });
    }
  }

  #serveDialMessage(
    handler: (from: NodeInfo) => Promise<void>,
    error: Error | null,
    msg: Msg,
  ): void {
    if (error !== null) {
      this.#wireLog.log("warn", "nats-subscription-error", { error: String(error) });
      return;
    }
    if (!msg.reply) return; // nobody to answer
    const from = decodeNodeInfo(msg.data);
    if (from === null || from.node === this.#self.node) {
      this.#refused("dial request", msg.subject);
      this.#answerDial(msg, { ok: false, error: "malformed dial request" });
      return;
    }
    if (this.#dialsRunning >= MAX_CONCURRENT_DIALS) {
      this.#answerDial(msg, { ok: false, error: "busy: too many dials at once" });
      return;
    }
    this.#dialsRunning++;
    let running: Promise<void>;
    try {
      running = Promise.resolve(handler(from));
    } catch (failure) {
      running = Promise.reject(failure);
    }
    running.then(
      () => this.#answerDial(msg, { ok: true }),
      (failure) =>
        this.#answerDial(msg, {
          ok: false,
          error: failure instanceof Error ? failure.message : String(failure),
        }),
    ).finally(() => this.#dialsRunning--);
  }

  #answerDial(msg: Msg, answer: Parameters<typeof encodeDialAnswer>[0]): void {
    if (this.#state === "closed") return;
    try {
      msg.respond(encodeDialAnswer(answer));
    } catch (failure) {
      this.#wireLog.log("debug", "dial-answer-failed", { error: String(failure) });
    }
  }

  #publish(subject: string, payload: Uint8Array): void {
    try {
      this.#nc.publish(subject, payload);
    } catch (error) {
      this.#wireLog.log("warn", "nats-publish-failed", { subject, error: String(error) });
    }
  }

  #unsubscribe(sub: Subscription): void {
    try {
      sub.unsubscribe();
    } catch (error) {
      this.#wireLog.log("debug", "nats-unsubscribe-failed", { error: String(error) });
    }
  }

  /** A payload from NATS that is not what its subject carries: logged (rate-limited), dropped. */
  #refused(what: string, subject: string): void {
    this.#wireLog.log("warn", "presence-malformed", {
      what,
      subject: subject.slice(0, MAX_LOGGED_SUBJECT_CHARS),
    });
    const now = performance.now();
    if (now - this.#lastSuppressedReport >= SUPPRESSED_REPORT_MS) {
      this.#lastSuppressedReport = now;
      this.#wireLog.report(now);
    }
  }
}
