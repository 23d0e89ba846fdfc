/**
 * Process-wide pools of I/O buffers, so that busy links reuse buffers and
 * idle links hold none. A pending read or a queued batch on an idle link
 * would otherwise pin up to 128 KiB per client, and a busy link that
 * allocated afresh for every batch or split frame would leave the GC
 * megabytes of garbage per second (resident memory the relay must not grow).
 *
 * @module
 */

/** Size of the large buffers the WebSocket carrier stages reads and frames messages in. */
export const LARGE_BUFFER_BYTES = 128 * 1024;
/** Size of the small buffers that batch control frames. */
export const SMALL_BUFFER_BYTES = 1024;
/**
 * Size of the slabs a streaming link reads into (transport/slab.ts): room for
 * several whole frames per read, and a tail kept free so that every frame
 * that starts in a slab also ends in it.
 */
export const SLAB_BUFFER_BYTES = 256 * 1024;

/** A free list of same-sized buffers with a cap on what it keeps. */
class BufferPool {
  readonly #size: number;
  readonly #maxFree: number;
  readonly #free: Uint8Array<ArrayBuffer>[] = [];

  constructor(size: number, maxFree: number) {
    this.#size = size;
    this.#maxFree = maxFree;
  }

  acquire(): Uint8Array<ArrayBuffer> {
    return this.#free.pop() ?? new Uint8Array(this.#size);
  }

  release(buffer: Uint8Array): void {
    if (buffer.length === this.#size && this.#free.length < this.#maxFree) {
      this.#free.push(buffer as Uint8Array<ArrayBuffer>);
    }
  }
}

const large = new BufferPool(LARGE_BUFFER_BYTES, 64);
const small = new BufferPool(SMALL_BUFFER_BYTES, 1024);
const slabs = new BufferPool(SLAB_BUFFER_BYTES, 32);

/** Takes a buffer of {@linkcode LARGE_BUFFER_BYTES} from the pool, or a new one. */
export function acquireLargeBuffer(): Uint8Array {
  return large.acquire();
}

/** Takes a buffer of {@linkcode SMALL_BUFFER_BYTES} from the pool, or a new one. */
export function acquireSmallBuffer(): Uint8Array {
  return small.acquire();
}

/** Takes a buffer of {@linkcode SLAB_BUFFER_BYTES} from the pool, or a new one. */
export function acquireSlabBuffer(): Uint8Array<ArrayBuffer> {
  return slabs.acquire();
}

/** Returns a pooled buffer of any of the three sizes; the caller must not touch it again. */
export function releaseBuffer(buffer: Uint8Array): void {
  if (buffer.length === LARGE_BUFFER_BYTES) large.release(buffer);
  else if (buffer.length === SLAB_BUFFER_BYTES) slabs.release(buffer);
  else small.release(buffer);
}
