/** A text stream read line by line, for the output of subprocesses. */

import { STEP_MS, withTimeout } from "./async.ts";

/** Reads a text stream line by line, waiting for a line with a given prefix. */
export class Lines {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  /** Everything read so far, for failure messages. */
  seen = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line starting with `prefix` (earlier lines are skipped), within `ms`. */
  async expect(prefix: string, ms: number = STEP_MS): Promise<string> {
    const deadline = performance.now() + ms;
    // Each pass consumes a line or reads a chunk; the deadline bounds the reads.
    while (true) {
      const end = this.#buffer.indexOf("\n");
      if (end >= 0) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 1);
        if (line.startsWith(prefix)) return line;
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no line "${prefix}..." within ${ms} ms; saw ${this.seen}`);
      const { value, done } = await withTimeout(this.#reader.read(), left, `line "${prefix}..."`);
      if (done) throw new Error(`stream ended before a line "${prefix}..."; saw ${this.seen}`);
      this.#buffer += value;
      this.seen += value;
    }
  }

  /** Reads to the end; returns everything not yet returned as lines. */
  async rest(): Promise<string> {
    while (true) {
      const { value, done } = await this.#reader.read();
      if (done) return this.#buffer;
      this.#buffer += value;
      this.seen += value;
    }
  }
}
