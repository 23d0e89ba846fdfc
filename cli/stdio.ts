/**
 * Standard input and output for netcat: stdin as chunks that survive an
 * abandoned read (so `listen -k` hands the rest of a terminal's input to the
 * next connection), stdout as a sink, and what stdin is (a terminal, a file
 * of known size).
 *
 * @module
 */

import { fstatSync } from "node:fs";
import type { Sink } from "./pipe.ts";

/** Size of one read from stdin. */
const STDIN_CHUNK_BYTES = 64 * 1024;
/** File descriptor of standard input, for fstat. */
const STDIN_FD = 0;

/**
 * Standard input as a sequence of chunks. A chunk being read belongs to
 * whoever reads next: a reader that gives up on {@linkcode next} (its
 * connection ended) leaves that chunk to the next reader, so no byte is lost.
 */
export class InputChunks {
  readonly #read: (buffer: Uint8Array) => Promise<number | null>;
  #pending: Promise<Uint8Array | null> | null = null;
  #ended = false;

  /** `read` is `Deno.stdin.read` unless a test gives another source. */
  constructor(read: (buffer: Uint8Array) => Promise<number | null>) {
    this.#read = read;
  }

  /** Whether end of input was reached (every later {@linkcode next} resolves null). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * The next chunk, or null at end of input. Until {@linkcode take} is
   * called, every call returns the same chunk.
   */
  next(): Promise<Uint8Array | null> {
    if (this.#ended) return Promise.resolve(null);
    this.#pending ??= (async () => {
      // A fresh buffer per chunk: a chunk may wait for the next connection while stdin is read on.
      const buffer = new Uint8Array(STDIN_CHUNK_BYTES);
      const count = await this.#read(buffer);
      if (count === null) this.#ended = true;
      return count === null ? null : buffer.subarray(0, count);
    })();
    return this.#pending;
  }

  /** Marks the chunk {@linkcode next} returned as used. */
  take(): void {
    this.#pending = null;
  }
}

/** Standard input as {@linkcode InputChunks}. */
export function stdinChunks(): InputChunks {
  return new InputChunks((buffer) => Deno.stdin.read(buffer));
}

/** Whether stdin is a terminal: a person typing, whose input has no natural end. */
export function stdinIsTerminal(): boolean {
  return Deno.stdin.isTerminal();
}

/**
 * Bytes stdin will yield when it is a regular file (`< file.bin`), or null
 * when that is not known (a pipe, a terminal, a platform without fstat).
 */
export function stdinSize(): number | null {
  try {
    const info = fstatSync(STDIN_FD);
    return info.isFile() ? info.size : null;
  } catch {
    return null;
  }
}

/**
 * Standard output as a {@linkcode Sink}. Its half-close does nothing: Deno
 * cannot close file descriptor 1 while the process runs, so the reader sees
 * end of stream when the command exits (once both directions are done).
 */
export const stdoutSink: Sink = {
  write: (bytes: Uint8Array): Promise<number> => Deno.stdout.write(bytes),
  closeWrite: (): void => {},
};
