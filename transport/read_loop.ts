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
  const idle = new Uint8Array(IDLE_READ_BYTES);
  let slab = null as Slab | null; // Assigned in the helpers below too.
  let buffer: Uint8Array = idle;
  /** Bytes of `buffer` before `start` are decoded; from `start` to `end`, a partial frame. */
  let start = 0;
  let end = 0;
  let lastReadBytes = 0;
  let progress: FrameProgress = "between";
  const deliver = (packet: Packet): void => onPacket(packet, slab);

  /** Moves the partial frame to the top of a fresh slab (or of this one, when nobody shares it). */
  const nextSlab = (): void => {
    const next = slab !== null && !slab.shared ? slab : new Slab();
    if (next === slab) next.bytes.copyWithin(0, start, end);
    else next.bytes.set(buffer.subarray(start, end));
    if (slab !== null && next !== slab) slab.release();
    slab = next;
    buffer = next.bytes;
    end -= start;
    start = 0;
  };
  /** Back to the small buffer: the link went quiet, with at most a small partial frame. */
  const toIdle = (): void => {
    idle.set(buffer.subarray(start, end));
    slab?.release();
    slab = null;
    buffer = idle;
    end -= start;
    start = 0;
  };

  try {
    while (true) {
      const gate = beforeRead?.(lastReadBytes, progress);
      if (gate) await gate;
      const before = end - start;
      const asked = readSize(slab, buffer, start, end);
      const count = await source.read(buffer.subarray(end, end + asked));
      if (count === null) return;
      lastReadBytes = count;
      end += count;
      start += decodeFrames(buffer.subarray(start, end), deliver);
      const after = end - start;
      // Every byte of the read still pending means no frame completed: the same one goes on.
      progress = after === 0
        ? "between"
        : before > 0 && after === before + count
        ? "continued"
        : "started";
      // A read that did not fill what it asked for found the socket empty: the peer is quiet.
      const quiet = count < asked;
      if (slab === null) {
        const large = after > 0 &&
          after + frameBytesNeeded(buffer.subarray(start, end)) > idle.length;
        if (!quiet || large) {
          nextSlab(); // Streaming, or a frame larger than the small buffer.
        } else {
          idle.copyWithin(0, start, end);
          end = after;
          start = 0;
        }
      } else if (quiet && count < IDLE_READ_BYTES && after <= IDLE_READ_BYTES / 2) {
        toIdle();
      } else if (after === 0 && buffer.length - end - MAX_FRAME_BYTES < MIN_SLAB_READ_BYTES) {
        nextSlab();
      }
    }
  } finally {
    slab?.release();
  }
}

/**
 * How much the next read may take. In a slab: up to a whole frame's room
 * short of the end, so any frame that starts in this read ends in the slab;
 * but never less than what completes the partial frame, which (by the same
 * rule, kept by every earlier read) fits. In the small buffer: all its room.
 */
function readSize(slab: Slab | null, buffer: Uint8Array, start: number, end: number): number {
  const room = buffer.length - end;
  if (slab === null) return room;
  const needed = end > start ? frameBytesNeeded(buffer.subarray(start, end)) : 0;
  return Math.min(room, Math.max(room - MAX_FRAME_BYTES, needed));
}
