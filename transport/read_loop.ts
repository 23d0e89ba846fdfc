/**
 * Reads a link into a {@linkcode FrameDecoder} with a buffer that adapts to
 * the traffic: a small private one while the peer is quiet, a pooled large
 * one while reads come back full. An idle link thus pins 512 bytes.
 *
 * @module
 */

import { FrameDecoder } from "../protocol/frame_decoder.ts";
import type { Packet } from "../protocol/packets.ts";
import { acquireLargeBuffer, POOLED_LENDER, releaseBuffer } from "./buffer_pool.ts";

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
 * Size of the buffer a quiet link waits on: any control frame a client
 * normally sends fits (Hello with a 256-byte identity is 265 bytes); a larger
 * frame just spans reads, which the decoder handles.
 */
const IDLE_READ_BYTES = 512;

/**
 * Reads frames until the source ends (resolves) or fails or a packet
 * handler throws (rejects). `onPacket` runs synchronously for every packet;
 * byte fields are only valid during the call. `beforeRead`, if given, runs after
 * each read's packets with that read's byte count (0 before the first) and
 * where the read left the frame stream, and may return a promise to hold the
 * next read: a relay that stops reading slows the client down through TCP
 * backpressure.
 */
export async function readFrames(
  source: ByteSource,
  onPacket: (packet: Packet) => void,
  beforeRead?: (lastReadBytes: number, progress: FrameProgress) => Promise<void> | undefined,
): Promise<void> {
  const decoder = new FrameDecoder(POOLED_LENDER);
  const idleBuffer = new Uint8Array(IDLE_READ_BYTES);
  let large: Uint8Array | null = null;
  let lastReadBytes = 0;
  let progress: FrameProgress = "between";
  try {
    while (true) {
      const gate = beforeRead?.(lastReadBytes, progress);
      if (gate) await gate;
      const buffer = large ?? idleBuffer;
      const count = await source.read(buffer);
      if (count === null) return;
      lastReadBytes = count;
      const before = decoder.bufferedBytes;
      decoder.push(buffer.subarray(0, count), onPacket);
      const after = decoder.bufferedBytes;
      // Every byte of the read still pending means no frame completed: the same one goes on.
      progress = after === 0
        ? "between"
        : before > 0 && after === before + count
        ? "continued"
        : "started";
      if (count === buffer.length && large === null) {
        large = acquireLargeBuffer();
      } else if (count < IDLE_READ_BYTES && large !== null) {
        releaseBuffer(large);
        large = null;
        decoder.releaseIdleBuffer();
      }
    }
  } finally {
    if (large) releaseBuffer(large);
  }
}
