/**
 * Reads a link and decodes its frames where they land, with a buffer that
 * adapts to the traffic: a small private one while the peer is quiet, a
 * pooled {@linkcode Slab} while reads come back full. An idle link thus pins
 * 512 bytes.
 *
 * A streaming link reads into its slab one read after another, and a frame
 * split across reads is completed where it started instead of being copied
 * out: each read leaves at least one whole frame's room at the slab's end,
 * so every frame that starts in a slab ends in it. Handlers get the slab
 * with each packet, so a data payload can be forwarded or kept as a view of
 * it, without a copy, for as long as they hold a reference.
 *
 * @module
 */

import { MAX_FRAME_BYTES } from "../protocol/constants.ts";
import { decodeFrames, frameBytesNeeded } from "../protocol/frame_decoder.ts";
import type { Packet } from "../protocol/packets.ts";
import { Slab } from "./slab.ts";

/** Where a read loop's bytes come from: a `Deno.Conn` in production. */
export interface ByteSource {
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Where a read left the frame stream: `between` frames; inside a frame that
 * `started` in this read; or inside one that `continued` from an earlier read
 * without completing. Lets a caller time how long one frame takes to arrive.
 */
export type FrameProgress = "between" | "started" | "continued";

/**
 * Called for every packet, synchronously. Byte fields are views of the read
 * buffer: valid during the call, and after it only while the handler holds
 * `slab` (a {@linkcode Slab.retain} it later releases). `slab` is null while
 * the link reads into its small private buffer; those views must be copied
 * to be kept.
 */
export type PacketHandler = (packet: Packet, slab: Slab | null) => void;

/**
 * Size of the buffer a quiet link waits on: any control frame a client
 * normally sends fits (Hello with a 256-byte identity is 265 bytes); a larger
 * frame moves the link to a slab.
 */
const IDLE_READ_BYTES = 512;

/**
 * The least a streaming read asks for: below this much room past the tail
 * kept for a whole frame, the link starts a fresh slab (or the top of its own,
 * when nobody holds views of it) rather than make small reads.
 */
const MIN_SLAB_READ_BYTES = 16 * 1024;

/**
 * Reads frames until the source ends (resolves) or fails or a packet
 * handler throws (rejects). `beforeRead`, if given, runs after each read's
 * packets with that read's byte count (0 before the first) and where the
 * read left the frame stream, and may return a promise to hold the next
 * read: a relay that stops reading slows the client down through TCP
 * backpressure.
 */
export async function readFrames(
  source: ByteSource,
  onPacket: PacketHandler,
  beforeRead?: (lastReadBytes: number, progress: FrameProgress) => Promise<void> | undefined,
): Promise<void> {
  const link = new LinkBuffer();
  let lastReadBytes = 0;
  let progress: FrameProgress = "between";
  // The one closure a link keeps: an idle relay holds thousands of these frames.
  const deliver = (packet: Packet): void => onPacket(packet, link.slab);
  try {
    while (true) {
      const gate = beforeRead?.(lastReadBytes, progress);
      if (gate) await gate;
      const before = link.end - link.start;
      const asked = link.readSize();
      const count = await source.read(link.bytes.subarray(link.end, link.end + asked));
      if (count === null) return;
      lastReadBytes = count;
      link.end += count;
      link.start += decodeFrames(link.bytes.subarray(link.start, link.end), deliver);
      const after = link.end - link.start;
      // Every byte of the read still pending means no frame completed: the same one goes on.
      progress = after === 0
        ? "between"
        : before > 0 && after === before + count
        ? "continued"
        : "started";
      // A read that did not fill what it asked for found the socket empty: the peer is quiet.
      link.afterRead(count, count < asked);
    }
  } finally {
    link.slab?.release();
  }
}

/**
 * Where a link's bytes land: its small buffer or a slab, with the partial
 * frame from `start` to `end` (bytes before `start` are decoded).
 */
class LinkBuffer {
  readonly #idle = new Uint8Array(IDLE_READ_BYTES);
  slab: Slab | null = null;
  bytes: Uint8Array = this.#idle;
  start = 0;
  end = 0;

  /**
   * How much the next read may take. In a slab: up to a whole frame's room
   * short of the end, so any frame that starts in this read ends in the slab;
   * but never less than what completes the partial frame, which (by the same
   * rule, kept by every earlier read) fits. In the small buffer: all its room.
   */
  readSize(): number {
    const room = this.bytes.length - this.end;
    if (this.slab === null) return room;
    const needed = this.end > this.start
      ? frameBytesNeeded(this.bytes.subarray(this.start, this.end))
      : 0;
    return Math.min(room, Math.max(room - MAX_FRAME_BYTES, needed));
  }

  /** Picks the buffer for the next read after one of `count` bytes (`quiet`: it came back short). */
  afterRead(count: number, quiet: boolean): void {
    const after = this.end - this.start;
    if (this.slab === null) {
      const large = after > 0 &&
        after + frameBytesNeeded(this.bytes.subarray(this.start, this.end)) > IDLE_READ_BYTES;
      if (!quiet || large) return this.#nextSlab(); // Streaming, or a frame too large for it.
      this.#idle.copyWithin(0, this.start, this.end);
      this.end = after;
      this.start = 0;
    } else if (quiet && count < IDLE_READ_BYTES && after <= IDLE_READ_BYTES / 2) {
      this.#toIdle();
    } else if (
      after === 0 && this.bytes.length - this.end - MAX_FRAME_BYTES < MIN_SLAB_READ_BYTES
    ) {
      this.#nextSlab();
    }
  }

  /** Moves the partial frame to the top of a fresh slab (or of this one, when nobody shares it). */
  #nextSlab(): void {
    const slab = this.slab;
    const next = slab !== null && !slab.shared ? slab : new Slab();
    if (next === slab) next.bytes.copyWithin(0, this.start, this.end);
    else next.bytes.set(this.bytes.subarray(this.start, this.end));
    if (slab !== null && next !== slab) slab.release();
    this.#moveTo(next, next.bytes);
  }

  /** Back to the small buffer: the link went quiet, with at most a small partial frame. */
  #toIdle(): void {
    this.#idle.set(this.bytes.subarray(this.start, this.end));
    this.slab?.release();
    this.#moveTo(null, this.#idle);
  }

  #moveTo(slab: Slab | null, bytes: Uint8Array): void {
    this.slab = slab;
    this.bytes = bytes;
    this.end -= this.start;
    this.start = 0;
  }
}
