/** A byte stream collected in the background, for the stdout of subprocesses. */

import { concatBytes } from "./bytes.ts";

/** Collects a byte stream, with a way to wait until some amount has arrived. */
export class ByteCollector {
  readonly #chunks: Uint8Array[] = [];
  #total = 0;
  #wake: (() => void) | null = null;
  #ended = false;
  readonly #done: Promise<Uint8Array>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#done = (async () => {
      try {
        for await (const chunk of stream) {
          this.#chunks.push(chunk);
          this.#total += chunk.length;
          this.#wake?.();
        }
      } finally {
        this.#ended = true;
        this.#wake?.();
      }
      return concatBytes(this.#chunks);
    })();
  }

  /** Resolves once `bytes` have arrived; rejects if the stream ends first. */
  async atLeast(bytes: number): Promise<void> {
    // Each pass waits for a chunk or the end: bounded by the chunks that arrive.
    while (this.#total < bytes) {
      if (this.#ended) throw new Error(`stream ended after ${this.#total} of ${bytes} bytes`);
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /** Every byte, once the stream has ended. */
  all(): Promise<Uint8Array> {
    return this.#done;
  }
}
