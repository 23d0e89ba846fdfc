/**
 * Batches outgoing frames into one buffer and writes them with as few
 * `write` calls as possible: every frame queued while a write is in flight
 * goes out together in the next one.
 *
 * @module
 */

import {
  DATA_FRAME_OVERHEAD_BYTES,
  encodeDataHeader,
  encodedLength,
  encodeInto,
} from "../protocol/codec.ts";
import type { Packet } from "../protocol/packets.ts";
import { acquireLargeBuffer, LARGE_BUFFER_BYTES, releaseLargeBuffer } from "./buffer_pool.ts";

/** Where a writer's bytes go: a `Deno.Conn` in production. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

/** Frames queued below this size use a small private buffer instead of a pooled large one. */
const SMALL_BUFFER_BYTES = 1024;

/**
 * Queues frames for one link. Never blocks the caller: it is the flow-control
 * layer above that bounds how much may be queued; {@linkcode queuedBytes}
 * lets it check.
 */
export class FrameWriter {
  readonly #sink: ByteSink;
  readonly #onError: (error: unknown) => void;

  /** Frames waiting for the next write. */
  #buffer: Uint8Array | null = null;
  #length = 0;
  /** Bytes handed to the sink and not yet written. */
  #inFlight = 0;
  #flushing = false;
  #failed = false;
  #drainWaiters: (() => void)[] = [];

  /** `onError` runs once if a write fails; the writer drops everything after that. */
  constructor(sink: ByteSink, onError: (error: unknown) => void) {
    this.#sink = sink;
    this.#onError = onError;
  }

  /** Bytes queued or being written. */
  get queuedBytes(): number {
    return this.#length + this.#inFlight;
  }

  /** Queues one packet's frame. */
  writePacket(packet: Packet): void {
    if (this.#failed) return;
    const size = encodedLength(packet);
    const target = this.#reserve(size);
    this.#length += encodeInto(packet, target, this.#length);
    this.#schedule();
  }

  /** Queues an ArbitraryData frame, copying `payload` once into the batch. */
  writeData(connectionId: number, payload: Uint8Array): void {
    if (this.#failed) return;
    const target = this.#reserve(DATA_FRAME_OVERHEAD_BYTES + payload.length);
    this.#length += encodeDataHeader(target, this.#length, connectionId, payload.length);
    target.set(payload, this.#length);
    this.#length += payload.length;
    this.#schedule();
  }

  /** Resolves once everything queued so far is written (or the writer failed). */
  drained(): Promise<void> {
    if (this.queuedBytes === 0 || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #reserve(bytes: number): Uint8Array {
    const needed = this.#length + bytes;
    const current = this.#buffer;
    if (current && current.length >= needed) return current;
    let grown: Uint8Array;
    if (needed <= SMALL_BUFFER_BYTES) grown = new Uint8Array(SMALL_BUFFER_BYTES);
    else if (needed <= LARGE_BUFFER_BYTES) grown = acquireLargeBuffer();
    else grown = new Uint8Array(Math.max(needed, (current?.length ?? 0) * 2));
    if (current) {
      grown.set(current.subarray(0, this.#length));
      releaseLargeBuffer(current);
    }
    this.#buffer = grown;
    return grown;
  }

  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    // A microtask lets every frame produced by the current read chunk join one write.
    queueMicrotask(() => this.#flush());
  }

  async #flush(): Promise<void> {
    try {
      while (this.#length > 0 && !this.#failed) {
        const batch = this.#buffer!;
        const length = this.#length;
        this.#buffer = null;
        this.#length = 0;
        this.#inFlight = length;
        let written = 0;
        while (written < length) {
          written += await this.#sink.write(batch.subarray(written, length));
        }
        this.#inFlight = 0;
        // Back to the shared pool, so an idle link pins no large buffer.
        releaseLargeBuffer(batch);
      }
    } catch (error) {
      this.#failed = true;
      this.#buffer = null;
      this.#length = 0;
      this.#inFlight = 0;
      this.#onError(error);
    } finally {
      this.#flushing = false;
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
