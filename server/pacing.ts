/**
 * One client's pacing and liveness: when the relay last heard from it, the
 * pings that keep a quiet link alive, the peer time-out, and the rate caps on
 * its requests and on the bytes it sends.
 *
 * @module
 */

import { PacketType } from "../protocol/packet_type.ts";
import { Reason } from "../protocol/reason.ts";
import type { FrameProgress } from "../transport/read_loop.ts";
import type { RelayConfig } from "./config.ts";
import type { Peer } from "./peer.ts";
import { TokenBucket } from "./token_bucket.ts";

/** The limits pacing enforces, as the relay's config states them. */
export type PacingConfig = Pick<
  RelayConfig,
  | "keepaliveMs"
  | "peerTimeoutMs"
  | "frameTimeoutMs"
  | "requestRate"
  | "requestBurst"
  | "maxBytesPerSec"
>;

/** {@linkcode ClientPacing}'s frame start while the client is between frames. */
const NO_FRAME = -1;

/** What pacing needs from the link it paces: a way to ping and a way to give up. */
export type PacedLink = Pick<Peer, "send" | "close">;

/** The relay's clock and rate limits for one client. */
export class ClientPacing {
  // Static after construction.
  readonly #config: PacingConfig;
  readonly #link: PacedLink;

  // Owned by the read loop, the relay's sweep and the router's request admission.
  /** When the relay last read anything from this client (performance.now() ms). */
  #lastHeardAt: number;
  /** When the frame the client is in the middle of started arriving, or NO_FRAME. */
  #frameStartedAt = NO_FRAME;
  #pingedAt = 0;
  #pingNonce = 0;
  /** Created on first use: most clients never send a request or are never byte-limited. */
  #requestBucket: TokenBucket | null = null;
  #byteBucket: TokenBucket | null = null;
  /** The pause of a byte-limited client's read loop, ended early by stop(). */
  #readPause: { timer: ReturnType<typeof setTimeout>; resume: () => void } | null = null;
  #stopped = false;

  /** Starts the clock: the client counts as heard from `now` (performance.now() ms). */
  constructor(config: PacingConfig, link: PacedLink, now: number = performance.now()) {
    this.#config = config;
    this.#link = link;
    this.#lastHeardAt = now;
  }

  /**
   * The relay's periodic check (the polling scheme of docs/PROTOCOL.md §11): pings a client
   * that has been quiet for the keepalive interval, closes one that has been
   * silent for the peer time-out. Any frame from the client counts as life.
   */
  checkLiveness(now: number): void {
    // A client whose reads the relay itself has paused (byte-rate cap) is not silent.
    if (this.#readPause !== null) return;
    const { keepaliveMs, peerTimeoutMs, frameTimeoutMs } = this.#config;
    const quietMs = now - this.#lastHeardAt;
    const frameMs = now - this.#frameStartedAt;
    if (this.#frameStartedAt !== NO_FRAME && frameMs >= frameTimeoutMs) {
      // Bytes trickled into one frame are not life: they pin its buffer, so the frame has a deadline.
      void this.#link.close(
        Reason.PeerTimeout,
        `a frame started ${Math.round(frameMs)} ms ago is still incomplete`,
      );
    } else if (quietMs >= peerTimeoutMs) {
      void this.#link.close(Reason.PeerTimeout, `nothing heard for ${Math.round(quietMs)} ms`);
    } else if (quietMs >= keepaliveMs && now - this.#pingedAt >= keepaliveMs) {
      this.#pingedAt = now;
      this.#pingNonce = (this.#pingNonce + 1) >>> 0;
      this.#link.send({ type: PacketType.Ping, nonce: this.#pingNonce });
    }
  }

  /** Takes one request token; false when the client is over its request rate. */
  takeRequestToken(now: number): boolean {
    const { requestRate, requestBurst } = this.#config;
    this.#requestBucket ??= new TokenBucket(requestRate, requestBurst, now);
    return this.#requestBucket.tryTake(now);
  }

  /**
   * Runs after each read: records that the client is alive and, when the
   * relay caps this client's byte rate, pauses the next read until the
   * client is back within it. Not reading is the cap: TCP backpressure
   * slows the client down and nothing is dropped. `progress` (where the read
   * left the frame stream) starts or stops the frame's clock.
   * `overheadBytes` (a WebSocket's headers and control frames) is charged to
   * the byte rate too, but only stream bytes count as life.
   */
  afterRead(
    bytes: number,
    now: number = performance.now(),
    progress: FrameProgress = "between",
    overheadBytes = 0,
  ): Promise<void> | undefined {
    // An empty read (a carrier's control frames only) is paced but is not life.
    if (bytes > 0) this.#lastHeardAt = now;
    if (progress === "between") this.#frameStartedAt = NO_FRAME;
    else if (progress === "started") this.#frameStartedAt = now;
    const { maxBytesPerSec } = this.#config;
    const charged = bytes + overheadBytes;
    if (maxBytesPerSec === 0 || charged === 0 || this.#stopped) return undefined;
    this.#byteBucket ??= new TokenBucket(maxBytesPerSec, maxBytesPerSec, now);
    const waitMs = this.#byteBucket.spend(charged, now);
    if (waitMs === 0) return undefined;
    return new Promise((resume) => {
      const timer = setTimeout(() => {
        this.#readPause = null;
        // The pause was ours, not the client's silence, nor its slowness within a frame.
        this.#lastHeardAt = performance.now();
        if (this.#frameStartedAt !== NO_FRAME) this.#frameStartedAt = this.#lastHeardAt;
        resume();
      }, waitMs);
      this.#readPause = { timer, resume };
    });
  }

  /** Ends a read pause at once and pauses no more: the link is closing. */
  stop(): void {
    this.#stopped = true;
    if (this.#readPause) {
      clearTimeout(this.#readPause.timer);
      this.#readPause.resume();
      this.#readPause = null;
    }
  }
}
