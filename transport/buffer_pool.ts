/**
 * A process-wide pool of large I/O buffers, so that busy links reuse them
 * and idle links hold none: a pending read or queued write on an idle link
 * would otherwise pin 64 KiB or more per client.
 *
 * @module
 */

/** Size of the large buffers busy links read into and batch writes in. */
export const LARGE_BUFFER_BYTES = 128 * 1024;
/** How many free large buffers the pool keeps; beyond that they go to the GC. */
const MAX_FREE_BUFFERS = 64;

const free: Uint8Array[] = [];

/** Takes a buffer of {@linkcode LARGE_BUFFER_BYTES} from the pool, or a new one. */
export function acquireLargeBuffer(): Uint8Array {
  return free.pop() ?? new Uint8Array(LARGE_BUFFER_BYTES);
}

/** Returns a buffer from {@linkcode acquireLargeBuffer}; the caller must not touch it again. */
export function releaseLargeBuffer(buffer: Uint8Array): void {
  if (buffer.length === LARGE_BUFFER_BYTES && free.length < MAX_FREE_BUFFERS) free.push(buffer);
}
