/**
 * A read buffer shared by reference count between the read loop that fills
 * it and whoever keeps views of the frames in it: a relay's frame writer
 * forwarding a data frame as it arrived, a client's connection holding
 * received bytes until the application reads them. Sharing the buffer is
 * what lets a forwarded or received payload go without a copy; the count is
 * what makes it safe to hand the buffer back to the pool.
 *
 * @module
 */

import { acquireSlabBuffer, releaseBuffer } from "./buffer_pool.ts";

/**
 * One pooled buffer and its holders. The read loop holds it while it reads
 * into it; each other holder takes a reference with {@linkcode Slab.retain}
 * and gives it back with {@linkcode Slab.release}. The read loop never
 * writes where a view may point: it reads only past the bytes it has handed
 * out, and starts again at the top only while it is the sole holder.
 */
export class Slab {
  /** The whole buffer; views of frames in it are subarrays of it. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  #holders = 1;

  /** A slab from the pool, held once (by the caller). */
  constructor() {
    this.bytes = acquireSlabBuffer();
  }

  /** Whether anyone but the first holder still holds it. */
  get shared(): boolean {
    return this.#holders > 1;
  }

  /** Whether `view` is a view of this slab's bytes. */
  holds(view: Uint8Array): boolean {
    return view.buffer === this.bytes.buffer;
  }

  /** Where `view` starts in {@linkcode Slab.bytes}; only for a view it {@linkcode Slab.holds}. */
  offsetOf(view: Uint8Array): number {
    return view.byteOffset - this.bytes.byteOffset;
  }

  /** Takes one more reference; each needs its own {@linkcode Slab.release}. */
  retain(): void {
    this.#holders++;
  }

  /** Gives one reference back; the last one returns the buffer to the pool. */
  release(): void {
    if (this.#holders <= 0) throw new Error("Cannot release a slab: nobody holds it");
    if (--this.#holders === 0) releaseBuffer(this.bytes);
  }
}
