/**
 * Byte pumps: copy a reader to a writer through one reused buffer, count the
 * bytes, then half-close the destination. Every direction of every command
 * uses them (stdin to a connection, a connection to stdout, TCP to virtual
 * and back).
 *
 * @module
 */

import { acquireSlabBuffer, releaseBuffer } from "../transport/buffer_pool.ts";
import { writeAll } from "../transport/frame_writer.ts";

/** Size of the buffer each direction starts with, and goes back to when its source is quiet. */
export const PIPE_BUFFER_BYTES = 64 * 1024;

/** Anything with `read(buffer)` like `Deno.Reader`: a count, or null at end of stream. */
export interface Source {
  /** Reads into `buffer`; resolves with the byte count, or null at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Anything with `write(bytes)` (may write less than asked) and a half-close. */
export interface Sink {
  /** Writes some of `bytes`; resolves with how many. */
  write(bytes: Uint8Array): Promise<number>;
  /** Ends this direction: the other end reads end of stream. */
  closeWrite(): Promise<void> | void;
}

/** A running byte count, read by progress reports while the copy runs. */
export interface Counter {
  /** Bytes copied so far. */
  bytes: number;
}

/**
 * Copies `source` to `sink` until end of stream, adding to `counter`, then
 * half-closes `sink`. Resolves with the bytes copied; rejects if a read or
 * write fails (the sink is then not half-closed). A failing half-close is
 * ignored: the peer is gone then, and every byte was already written.
 *
 * With `peerGoneEndsCopy`, a write that fails because the sink's peer
 * closed (BrokenPipe: an HTTP server that closes after its answer) ends the
 * copy quietly instead, the way a TCP proxy passes a close on.
 */
export async function pipe(
  source: Source,
  sink: Sink,
  counter: Counter = { bytes: 0 },
  peerGoneEndsCopy = false,
): Promise<number> {
  const own = new Uint8Array(PIPE_BUFFER_BYTES);
  // A stream (reads that fill the buffer) moves to a pooled 256 KiB one: a quarter of the
  // reads and writes for the same bytes. It goes back to the pool when the source is quiet.
  let large: Uint8Array | null = null;
  let copied = 0;
  try {
    while (true) {
      const buffer = large ?? own;
      const count = await source.read(buffer);
      if (count === null) break;
      try {
        await writeAll(sink, buffer.subarray(0, count));
      } catch (error) {
        // Ours is a Deno.errors.BrokenPipe too, so one check covers TCP and virtual sinks.
        if (peerGoneEndsCopy && error instanceof Deno.errors.BrokenPipe) return copied;
        throw error;
      }
      copied += count;
      counter.bytes += count;
      if (large === null && count === own.length) {
        large = acquireSlabBuffer();
      } else if (large !== null && count < own.length) {
        releaseBuffer(large);
        large = null;
      }
    }
  } finally {
    if (large !== null) releaseBuffer(large);
  }
  try {
    await sink.closeWrite();
  } catch {
    // The other end is gone; nothing left to tell it.
  }
  return copied;
}

/** A duplex byte stream: both a source and a sink, closable. */
export interface Duplex extends Source, Sink {
  /** Closes both directions and frees the resource. */
  close(): void;
}

/** Bytes each way of a {@linkcode splice}. */
export interface SpliceResult {
  /** Bytes copied from `a` to `b`. */
  readonly aToB: number;
  /** Bytes copied from `b` to `a`. */
  readonly bToA: number;
}

/**
 * Pipes `a` and `b` into each other, both directions at once, each
 * half-closing its destination at end of stream, then closes both. A
 * destination whose peer closed ends its direction quietly (see
 * {@linkcode pipe}). If either direction fails otherwise, both are closed at
 * once (which ends the other direction) and the first error is thrown.
 */
export async function splice(a: Duplex, b: Duplex): Promise<SpliceResult> {
  const closeBoth = (): void => {
    for (const end of [a, b]) {
      try {
        end.close();
      } catch {
        // Already closed.
      }
    }
  };
  try {
    const [aToB, bToA] = await Promise.all([
      pipe(a, b, undefined, true).catch((error) => {
        closeBoth();
        throw error;
      }),
      pipe(b, a, undefined, true).catch((error) => {
        closeBoth();
        throw error;
      }),
    ]);
    return { aToB, bToA };
  } finally {
    closeBoth();
  }
}

/** How long a refused local connection may take to close its side after ours. */
const GENTLE_CLOSE_MS = 2_000;

/**
 * Closes a TCP connection that is refused before any data went through
 * with a clean FIN, not a reset: shuts down the write side, then reads and
 * drops what the client already sent until it closes too (at most
 * {@linkcode GENTLE_CLOSE_MS}), because closing a socket with unread bytes
 * makes the kernel answer with RST.
 */
export async function closeGently(conn: Deno.TcpConn): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await conn.closeWrite();
    const buffer = new Uint8Array(PIPE_BUFFER_BYTES);
    const deadline = new Promise<null>((resolve) =>
      timer = setTimeout(resolve, GENTLE_CLOSE_MS, null)
    );
    // Bounded by the deadline: each pass reads a chunk or ends.
    while (await Promise.race([conn.read(buffer), deadline]) !== null) { /* drop */ }
  } catch {
    // The client is gone already.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}
