/**
 * Per source IP limits: how many links one IP may hold, how many of them may
 * still be in the handshake, one request rate shared by all its links, so
 * opening more links buys an address no more of the relay, and how many new
 * addresses it may register an hour, so one IP cannot drain the pool.
 *
 * @module
 */

import type { RelayConfig } from "./config.ts";
import { TokenBucket } from "./token_bucket.ts";

/** The limits, as the relay's config states them (0 = no limit). */
export type SourceLimitsConfig = Pick<
  RelayConfig,
  "maxLinksPerIp" | "maxHandshakesPerIp" | "maxRequestsPerIp" | "maxNewIdentitiesPerIp"
>;

/** The per-IP request bucket holds this many seconds of its rate, as the per-client one does. */
const REQUEST_BURST_SECONDS = 2;

const MS_PER_HOUR = 3_600_000;

/**
 * Source IPs without a link whose registration allowance is still refilling,
 * at most this many (about 150 bytes each); past it the least recently used
 * is forgotten. The allowance must outlive the IP's links, or reconnecting
 * would reset it; a forgotten one was pushed out by this many other IPs
 * registering, each of which had an allowance of its own anyway.
 */
export const MAX_REMEMBERED_REGISTRATION_SOURCES = 4096;

/** What one source IP holds of the relay; its links keep a reference, so no lookup per request. */
export class SourceShare {
  // Static after construction.
  /** The source IP this share is about. */
  readonly ip: string;
  readonly #requestRate: number;

  // Owned by SourceLimits (counts) and the IP's sessions (the bucket).
  /** Links open from this IP, handshake done or not. */
  links = 0;
  /** Of those, links that have not completed their handshake. */
  handshakes = 0;
  /** Created on first use: most sources never send a request. */
  #requests: TokenBucket | null = null;
  /**
   * New addresses this IP may still register, owned by SourceLimits: created
   * on its first registration, kept beyond the IP's last link until full.
   */
  registrations: TokenBucket | null = null;

  /** An empty share of `ip`, whose links may make `requestRate` requests a second together (0 = any). */
  constructor(ip: string, requestRate: number) {
    this.ip = ip;
    this.#requestRate = requestRate;
  }

  /** Takes one token of the IP's shared request rate; false when all its links together are over it. */
  takeRequestToken(now: number): boolean {
    if (this.#requestRate === 0) return true;
    this.#requests ??= new TokenBucket(
      this.#requestRate,
      this.#requestRate * REQUEST_BURST_SECONDS,
      now,
    );
    return this.#requests.tryTake(now);
  }
}

/** Every source IP with a link open, and the counts the limits are checked against. */
export class SourceLimits {
  readonly #config: SourceLimitsConfig;
  readonly #byIp = new Map<string, SourceShare>();
  /**
   * Registration allowances of IPs without links that are not yet full,
   * least recently used first (a Map keeps insertion order).
   */
  readonly #remembered = new Map<string, TokenBucket>();

  /** No links yet. */
  constructor(config: SourceLimitsConfig) {
    this.#config = config;
  }

  /** Source IPs with at least one link. */
  get size(): number {
    return this.#byIp.size;
  }

  /**
   * Counts a new link from `ip`, in its handshake, and returns the IP's
   * share; or, over a limit, counts nothing and returns why not.
   */
  admit(ip: string): SourceShare | string {
    const { maxLinksPerIp, maxHandshakesPerIp, maxRequestsPerIp } = this.#config;
    const share = this.#byIp.get(ip);
    if (share !== undefined) {
      if (maxLinksPerIp > 0 && share.links >= maxLinksPerIp) {
        return `Cannot join: your IP holds ${share.links} links, as many as the relay allows`;
      }
      if (maxHandshakesPerIp > 0 && share.handshakes >= maxHandshakesPerIp) {
        return `Cannot join: your IP has ${share.handshakes} links still in their handshake, as many as the relay allows`;
      }
    }
    const admitted = share ?? new SourceShare(ip, maxRequestsPerIp);
    if (share === undefined) {
      this.#byIp.set(ip, admitted);
      admitted.registrations = this.#recall(ip);
    }
    admitted.links++;
    admitted.handshakes++;
    return admitted;
  }

  /** One of the share's links completed its handshake. */
  handshakeDone(share: SourceShare): void {
    share.handshakes--;
  }

  /** One of the share's links ended; `handshaking` if it never completed its handshake. */
  release(share: SourceShare, handshaking: boolean, now: number = performance.now()): void {
    if (handshaking) share.handshakes--;
    share.links--;
    if (share.links === 0) {
      this.#byIp.delete(share.ip);
      // A full allowance is what a fresh one would be: only a spent one must be remembered.
      if (share.registrations !== null && !share.registrations.full(now)) {
        this.#remember(share.ip, share.registrations);
      }
    }
  }

  /** Source IPs without links whose spent registration allowance is remembered. */
  get rememberedSize(): number {
    return this.#remembered.size;
  }

  /**
   * Takes one of `ip`'s new-address registrations for the hour; or, over the
   * limit, takes nothing and returns why not. Called only for a key the
   * registry does not know yet: known identities reconnect freely.
   */
  admitNewIdentity(ip: string, now: number): string | null {
    const limit = this.#config.maxNewIdentitiesPerIp;
    if (limit === 0) return null;
    const share = this.#byIp.get(ip);
    let bucket = share?.registrations ?? null;
    if (bucket === null) {
      bucket = this.#recall(ip) ?? new TokenBucket(limit / (MS_PER_HOUR / 1000), limit, now);
      // An IP the carrier did not count as linked (not the relay's sessions) is remembered at once.
      if (share === undefined) this.#remember(ip, bucket);
      else share.registrations = bucket;
    }
    if (bucket.tryTake(now)) return null;
    return `Cannot join: this source IP registered ${limit} new addresses in the last hour, as many as the relay allows`;
  }

  /**
   * Gives `ip` back the registration {@linkcode admitNewIdentity} took for a
   * join that then registered nothing (the pool was full, a join token was
   * spent by another process meanwhile): a refused join costs no allowance.
   */
  refundNewIdentity(ip: string, now: number): void {
    if (this.#config.maxNewIdentitiesPerIp === 0) return;
    const bucket = this.#byIp.get(ip)?.registrations ?? this.#remembered.get(ip);
    bucket?.giveBack(now);
  }

  /** Takes `ip`'s remembered allowance back, if there is one. */
  #recall(ip: string): TokenBucket | null {
    const bucket = this.#remembered.get(ip);
    if (bucket === undefined) return null;
    this.#remembered.delete(ip);
    return bucket;
  }

  #remember(ip: string, bucket: TokenBucket): void {
    this.#remembered.delete(ip);
    this.#remembered.set(ip, bucket);
    if (this.#remembered.size > MAX_REMEMBERED_REGISTRATION_SOURCES) {
      this.#remembered.delete(this.#remembered.keys().next().value!);
    }
  }
}
