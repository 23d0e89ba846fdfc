/**
 * Per source IP limits: how many links one IP may hold, how many of them may
 * still be in the handshake, and one request rate shared by all its links,
 * so opening more links buys an address no more of the relay.
 *
 * @module
 */

import type { RelayConfig } from "./config.ts";
import { TokenBucket } from "./token_bucket.ts";

/** The limits, as the relay's config states them (0 = no limit). */
export type SourceLimitsConfig = Pick<
  RelayConfig,
  "maxLinksPerIp" | "maxHandshakesPerIp" | "maxRequestsPerIp"
>;

/** The per-IP request bucket holds this many seconds of its rate, as the per-client one does. */
const REQUEST_BURST_SECONDS = 2;

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
        return `Cannot join: your IP has ${share.handshakes} links waiting for their Hello, as many as the relay allows`;
      }
    }
    const admitted = share ?? new SourceShare(ip, maxRequestsPerIp);
    if (share === undefined) this.#byIp.set(ip, admitted);
    admitted.links++;
    admitted.handshakes++;
    return admitted;
  }

  /** One of the share's links completed its handshake. */
  handshakeDone(share: SourceShare): void {
    share.handshakes--;
  }

  /** One of the share's links ended; `handshaking` if it never completed its handshake. */
  release(share: SourceShare, handshaking: boolean): void {
    if (handshaking) share.handshakes--;
    share.links--;
    if (share.links === 0) this.#byIp.delete(share.ip);
  }
}
