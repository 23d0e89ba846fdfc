/**
 * Presence over NATS (issue 12): how the relays of one cluster find each
 * other's clients. A relay subscribes to one subject per client it holds and
 * answers locate requests there; an address nobody holds is answered by the
 * NATS server at once ("no responders"). Presence lives in the subscriptions
 * of the relay's NATS connection, so it disappears with that connection when
 * the relay dies, and nats.js sends every live subscription again when it
 * reconnects, so it is rebuilt after a NATS outage without our help.
 * Subjects and payloads: ./presence_wire.ts. Every payload is signed with
 * the presence key and checked on receipt (./presence_mac.ts): a publisher
 * without the mesh key is heard by no relay.
 *
 * @module
 */

import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "../log.ts";
import { DialServer, requestDial } from "./dial_requests.ts";
import { redactedNatsUrls } from "../config.ts";
import { connectNats, NatsStatus } from "./nats_connection.ts";
import { PresenceLog } from "./presence_log.ts";
import { PresenceMac } from "./presence_mac.ts";
import {
  checkAddress,
  claimMacInput,
  decodeClaim,
  decodeNodeInfo,
  encodeClaim,
  encodeNodeInfo,
  isNodeId,
  isNodeInfo,
  locateAnswerMacInput,
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
  /**
   * The cluster's 32-byte mesh key. Presence signs and checks every payload
   * under a key derived from it (never the mesh key itself), so only relays
   * holding it are heard.
   */
  key: Uint8Array;
  /** Where NATS status changes and refused payloads are logged. */
  log: Logger;
  /**
   * How long {@linkcode Presence.locate} waits for an answer.
   * @default {2000}
   */
  locateTimeoutMs?: number;
}

/** Defaults of {@linkcode PresenceOptions} and of {@linkcode Presence.requestDial}. */
const PRESENCE_DEFAULTS = {
  locateTimeoutMs: 2_000,
  dialTimeoutMs: 5_000,
} as const;

const EMPTY = new Uint8Array(0);

/**
 * Addresses whose newest claim is remembered, the longest-known forgotten
 * past it: enough for every client a relay routes to at once (--max-clients).
 */
const MAX_REMEMBERED_CLAIMS = 16_384;

/** Whether claim (at, node) is newer than (lastAt, lastNode): the mesh's order of two joins. */
function newerClaim(at: number, node: string, last: { at: number; node: string }): boolean {
  return at > last.at || (at === last.at && node > last.node);
}

/**
 * One relay's presence in its cluster: the clients it holds, found by the
 * others through NATS, takeover claims, and dial requests between relays.
 */
export class Presence {
  // Static after construction.
  readonly #nc: NatsConnection;
  readonly #subjects: PresenceSubjects;
  readonly #self: NodeInfo;
  readonly #mac: PresenceMac;
  readonly #log: PresenceLog;
  readonly #status: NatsStatus;
  readonly #locateTimeoutMs: number;

  // Owned by announce/withdraw/claim/serveDial/close and the reconnect handler.
  readonly #announced = new Map<number, Subscription>();
  /** Claims made while NATS was down (nats.js drops those), published on reconnect. */
  readonly #unsentClaims = new Map<number, number>();
  /** Claims being signed: {@linkcode Presence.flush} waits for them to be published. */
  readonly #signing = new Set<Promise<void>>();
  /**
   * The newest claim heard per address: a claim no newer is not passed on,
   * so a replayed one (signed, but old) cannot close a remote peer again.
   */
  readonly #newestClaims = new Map<number, { at: number; node: string }>();
  #dialServer: DialServer | null = null;
  #dialSub: Subscription | null = null;
  #state: "open" | "closing" | "closed" = "open";
  #closing: Promise<void> | null = null;

  /**
   * Called with the address, node id and admission time (unix ms) of each
   * claim another relay publishes.
   */
  onClaim: ((address: number, node: string, at: number) => void) | null = null;
  /** Called after NATS came back and NATS has every subscription again. */
  onReconnect: (() => void) | null = null;

  private constructor(
    nc: NatsConnection,
    subjects: PresenceSubjects,
    mac: PresenceMac,
    options: PresenceOptions,
  ) {
    this.#nc = nc;
    this.#subjects = subjects;
    this.#self = { node: options.self.node, mesh: options.self.mesh };
    this.#mac = mac;
    this.#log = new PresenceLog(options.log);
    this.#status = new NatsStatus(nc, this.#log, () => void this.#afterReconnect());
    this.#locateTimeoutMs = options.locateTimeoutMs ?? PRESENCE_DEFAULTS.locateTimeoutMs;
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
    const mac = await PresenceMac.derive(options.key);
    const nc = await connectNats(options.url, `alphanet-relay ${options.self.node}`);
    const presence = new Presence(nc, subjects, mac, options);
    options.log.log("info", "nats-connected", { server: redactedNatsUrls(nc.getServer()) });
    await presence.flush(); // the claim subscription is live when connect resolves
    return presence;
  }

  /** Whether the NATS connection is up now. */
  get connected(): boolean {
    return this.#status.connected && this.#state === "open";
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
   * Never rejects (an address that is not a u32 throws a RangeError at the
   * call); an answer naming this relay counts as null.
   */
  locate(address: number): Promise<NodeInfo | null> {
    return this.#locate(checkAddress(address));
  }

  async #locate(address: number): Promise<NodeInfo | null> {
    if (!this.connected) return null;
    const subject = this.#subjects.vip(address);
    let answer: Msg;
    try {
      answer = await this.#nc.request(subject, EMPTY, { timeout: this.#locateTimeoutMs });
    } catch {
      return null; // no responders, time-out, or the connection went
    }
    const signed = decodeNodeInfo(answer.data);
    if (signed === null) {
      this.#log.refused("locate answer", subject);
      return null;
    }
    const holder = { node: signed.node, mesh: signed.mesh };
    // It came on this request's reply subject: an answer signed for another request is refused.
    if (
      !(await this.#mac.verify(locateAnswerMacInput(subject, answer.subject, holder), signed.mac))
    ) {
      this.#log.unauthenticated("locate answer", subject);
      return null;
    }
    return holder.node === this.#self.node ? null : holder;
  }

  /**
   * Tells the other relays that this one admitted the client at `address` at
   * `at` (unix ms): the one that admitted it earlier lets its link go.
   */
  claim(address: number, at: number): void {
    checkAddress(address);
    if (this.#state !== "open") return;
    if (!this.#status.connected) {
      this.#unsentClaims.set(address, at);
      return;
    }
    const signing = this.#publishClaim(address, at).finally(() => this.#signing.delete(signing));
    this.#signing.add(signing);
  }

  /** Signs and publishes a claim. Never rejects. */
  async #publishClaim(address: number, at: number): Promise<void> {
    const subject = this.#subjects.claim(address);
    const claim = { node: this.#self.node, at };
    try {
      const mac = await this.#mac.sign(claimMacInput(subject, claim));
      if (this.#state !== "open") return;
      if (!this.#status.connected) {
        this.#unsentClaims.set(address, at); // NATS went while it was signed
        return;
      }
      this.#nc.publish(subject, encodeClaim(claim, mac));
    } catch (error) {
      this.#log.limited("warn", "nats-publish-failed", { error: String(error) });
    }
  }

  /**
   * Serves dial requests from other relays: runs `handler` with the
   * requester (it resolves once the relay link is up, and must settle within
   * its own bound) and answers ok or its error's message. At most 16 at once
   * (more are answered "busy"). A second call throws.
   */
  serveDial(handler: (from: NodeInfo) => Promise<void>): void {
    if (this.#dialServer !== null) throw new Error("Cannot serve dial requests twice");
    if (this.#state !== "open") return;
    const server = this.#dialServer = new DialServer(this.#self, handler, this.#log, this.#mac);
    this.#dialSub = this.#nc.subscribe(this.#subjects.dial(this.#self.node), {
      callback: (error, msg) => server.onMessage(error, msg),
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
    if (!this.connected) {
      throw new Error(`Cannot request a dial from node ${node}: NATS is not connected`);
    }
    const subject = this.#subjects.dial(node);
    await requestDial(this.#nc, subject, this.#self, node, timeoutMs, this.#log, this.#mac);
  }

  /**
   * Resolves once NATS has processed everything sent so far (announce,
   * withdraw, claim): true, or false if NATS is down or closed. Never rejects.
   */
  async flush(): Promise<boolean> {
    await Promise.all(this.#signing); // claims still being signed are published first
    if (!this.connected) return false;
    try {
      await this.#nc.flush();
      return true;
    } catch {
      return false; // a flush pending while NATS is down is refused at the next reconnect attempt
    }
  }

  /**
   * Leaves the cluster: withdraws every address and stops serving dials
   * first, and waits until NATS has processed that (when it is up), so from
   * then on locates of its clients get "no responders" (or their new relay),
   * never this relay; then closes the connection. Idempotent.
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
    this.#status.closing();
    for (const sub of this.#announced.values()) this.#unsubscribe(sub);
    this.#announced.clear();
    this.#unsentClaims.clear();
    if (this.#dialSub !== null) this.#unsubscribe(this.#dialSub);
    this.#dialServer?.close();
    if (this.#status.connected) await this.#nc.flush().catch(() => {});
    this.#state = "closed";
    await this.#nc.close().catch(() => {});
    await this.#status.done;
    this.#log.report();
  }

  /** nats.js has sent every live subscription again: waits until NATS has them, then tells. */
  async #afterReconnect(): Promise<void> {
    for (const [address, at] of this.#unsentClaims) {
      if (this.#announced.has(address)) this.claim(address, at);
    }
    this.#unsentClaims.clear();
    if (!(await this.flush()) || this.#state !== "open") return;
    this.#log.log("info", "presence-restored", { announced: this.#announced.size });
    try {
      this.onReconnect?.();
    } catch (error) {
      this.#log.log("error", "internal-error", { during: "onReconnect", error: String(error) });
    }
  }

  #answerLocate(error: Error | null, msg: Msg): void {
    if (error !== null) {
      this.#log.limited("warn", "nats-subscription-error", { error: String(error) });
      return;
    }
    const reply = msg.reply;
    if (this.#state !== "open" || !reply) return;
    if (!this.#mac.available) {
      this.#log.overloaded("locate request", msg.subject);
      return;
    }
    // Signed for this request's reply subject: the answer fits no other request.
    void this.#mac.sign(locateAnswerMacInput(msg.subject, reply, this.#self)).then((mac) => {
      if (this.#state === "open") msg.respond(encodeNodeInfo(this.#self, mac));
    }).catch((failure) => {
      this.#log.limited("debug", "locate-answer-failed", { error: String(failure) });
    });
  }

  #onClaimMessage(error: Error | null, msg: Msg): void {
    if (error !== null) {
      this.#log.limited("warn", "nats-subscription-error", { error: String(error) });
      return;
    }
    const address = this.#subjects.claimAddress(msg.subject);
    const signed = decodeClaim(msg.data);
    if (address === null || signed === null) {
      this.#log.refused("claim", msg.subject);
      return;
    }
    if (signed.node === this.#self.node || this.#state !== "open") return;
    if (!this.#mac.available) {
      this.#log.overloaded("claim", msg.subject);
      return;
    }
    const claim = { node: signed.node, at: signed.at };
    void this.#mac.verify(claimMacInput(msg.subject, claim), signed.mac).then((valid) => {
      if (!valid) {
        this.#log.unauthenticated("claim", msg.subject);
        return;
      }
      if (this.#state !== "open") return;
      const last = this.#newestClaims.get(address);
      if (last !== undefined && !newerClaim(claim.at, claim.node, last)) {
        // Replayed, or overtaken by a newer join: nothing to act on, but a replay shows here.
        this.#log.limited("debug", "presence-stale-claim", { subject: msg.subject });
        return;
      }
      this.#newestClaims.delete(address);
      if (this.#newestClaims.size >= MAX_REMEMBERED_CLAIMS) {
        this.#newestClaims.delete(this.#newestClaims.keys().next().value!);
      }
      this.#newestClaims.set(address, claim);
      try {
        this.onClaim?.(address, claim.node, claim.at);
      } catch (failure) {
        this.#log.log("error", "internal-error", { during: "onClaim", error: String(failure) });
      }
    });
  }

  #unsubscribe(sub: Subscription): void {
    try {
      sub.unsubscribe();
    } catch (error) {
      this.#log.limited("debug", "nats-unsubscribe-failed", { error: String(error) });
    }
  }
}
