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
import {
  acquireLargeBuffer,
  acquireSmallBuffer,
  LARGE_BUFFER_BYTES,
  releaseBuffer,
  SMALL_BUFFER_BYTES,
} from "./buffer_pool.ts";

/** Where a writer's bytes go: a `Deno.Conn` in production. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

/** Queued bytes above which {@linkcode FrameWriter.room} asks producers to wait. */
export const WRITE_HIGH_WATER_BYTES = 256 * 1024;

/** A filled batch buffer waiting for its write. */
interface Batch {
  readonly buffer: Uint8Array;
  readonly length: number;
  /** Bytes of control frames (anything but ArbitraryData) in it. */
  readonly controlBytes: number;
}

/**
 * Queues frames for one link. Never blocks the caller: it is the flow-control
 * layer above that bounds how much may be queued; {@linkcode queuedBytes}
 * lets it check. Frames fill pooled batch buffers of at most 128 KiB; a
 * full one waits in line and the next frame starts another, so a deep queue
 * allocates nothing new.
 */
export class FrameWriter {
  readonly #sink: ByteSink;
  readonly #onError: (error: unknown) => void;
  readonly #highWater: number;

  /** Full batches, oldest first, then the one being filled. */
  readonly #full: Batch[] = [];
  #buffer: Uint8Array | null = null;
  #length = 0;
  #controlInBuffer = 0;
  /** Control bytes queued or being written; data is bounded by credit, control is not. */
  #controlBytes = 0;
  /** Bytes queued (full batches and the one being filled) plus bytes being written. */
  #queuedBytes = 0;
  #flushing = false;
  #failed = false;
  #drainWaiters: (() => void)[] = [];
  #roomWaiters: (() => void)[] = [];

  /** `onError` runs once if a write fails; the writer drops everything after that. */
  constructor(
    sink: ByteSink,
    onError: (error: unknown) => void,
    highWaterBytes: number = WRITE_HIGH_WATER_BYTES,
  ) {
    this.#sink = sink;
    this.#onError = onError;
    this.#highWater = highWaterBytes;
  }

  /** Whether at least the high-water mark is queued: the link is slower than its producers. */
  get congested(): boolean {
    return this.#queuedBytes >= this.#highWater;
  }

  /** Bytes queued or being written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Bytes of control frames queued or being written: what credit does not bound. */
  get queuedControlBytes(): number {
    return this.#controlBytes;
  }

  /** Queues one packet's frame. */
  writePacket(packet: Packet): void {
    if (this.#failed) return;
    const size = encodedLength(packet);
    const target = this.#reserve(size);
    this.#length += encodeInto(packet, target, this.#length);
    this.#queuedBytes += size;
    this.#controlInBuffer += size;
    this.#controlBytes += size;
    this.#schedule();
  }

  /** Queues an ArbitraryData frame, copying `payload` once into the batch. */
  writeData(connectionId: number, payload: Uint8Array): void {
    if (this.#failed) return;
    const size = DATA_FRAME_OVERHEAD_BYTES + payload.length;
    const target = this.#reserve(size);
    this.#length += encodeDataHeader(target, this.#length, connectionId, payload.length);
    target.set(payload, this.#length);
    this.#length += payload.length;
    this.#queuedBytes += size;
    this.#schedule();
  }

  /**
   * Undefined while fewer than the high-water mark are queued,
   * else a promise that resolves once the queue is down to half of that (or
   * the writer failed). Lets a producer follow TCP backpressure instead of
   * queueing all it may send.
   */
  room(): Promise<void> | undefined {
    if (this.#queuedBytes < this.#highWater || this.#failed) return undefined;
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /**
   * Resolves once everything queued so far is written (or the writer
   * failed), or after `withinMs` if given, whichever is first: a closing link
   * gives its last frames a grace period, not a promise to wait forever.
   */
  drained(withinMs?: number): Promise<void> {
    if (this.#queuedBytes === 0 || this.#failed) return Promise.resolve();
    const flushed = new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    if (withinMs === undefined) return flushed;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, withinMs));
    return Promise.race([flushed, grace]).finally(() => clearTimeout(timer));
  }

  /** The batch buffer with room for `bytes` more, starting a new one when needed. */
  #reserve(bytes: number): Uint8Array {
    const current = this.#buffer;
    if (current && current.length - this.#length >= bytes) return current;
    const needed = this.#length + bytes;
    if (current && current.length === SMALL_BUFFER_BYTES && needed <= LARGE_BUFFER_BYTES) {
      // Promote a small batch of control frames rather than send it on its own.
      const large = acquireLargeBuffer();
      large.set(current.subarray(0, this.#length));
      releaseBuffer(current);
      return this.#buffer = large;
    }
    if (current) {
      this.#full.push({
        buffer: current,
        length: this.#length,
        controlBytes: this.#controlInBuffer,
      });
    }
    this.#length = 0;
    this.#controlInBuffer = 0;
    if (bytes <= SMALL_BUFFER_BYTES) this.#buffer = acquireSmallBuffer();
    else this.#buffer = acquireLargeBuffer();
    return this.#buffer;
  }

  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    // A microtask lets every frame produced by the current read chunk join one write.
    queueMicrotask(() => this.#flush());
  }

  #takeBatch(): Batch | undefined {
    const next = this.#full.shift();
    if (next) return next;
    if (this.#length === 0) return undefined;
    const batch = {
      buffer: this.#buffer!,
      length: this.#length,
      controlBytes: this.#controlInBuffer,
    };
    this.#buffer = null;
    this.#length = 0;
    this.#controlInBuffer = 0;
    return batch;
  }

  async #flush(): Promise<void> {
    try {
      for (let batch = this.#takeBatch(); batch && !this.#failed; batch = this.#takeBatch()) {
        let written = 0;
        while (written < batch.length) {
          written += await this.#sink.write(batch.buffer.subarray(written, batch.length));
        }
        this.#queuedBytes -= batch.length;
        this.#controlBytes -= batch.controlBytes;
        // Back to the shared pool, so an idle link pins no batch buffer.
        releaseBuffer(batch.buffer);
        if (this.#queuedBytes <= this.#highWater / 2) wakeAll(this.#roomWaiters);
      }
    } catch (error) {
      this.#failed = true;
      this.#full.length = 0;
      this.#buffer = null;
      this.#length = 0;
      this.#controlInBuffer = 0;
      this.#queuedBytes = 0;
      this.#controlBytes = 0;
      this.#onError(error);
    } finally {
      this.#flushing = false;
      wakeAll(this.#drainWaiters);
      wakeAll(this.#roomWaiters);
    }
  }
}

function wakeAll(waiters: (() => void)[]): void {
  for (const resolve of waiters.splice(0)) resolve();
}
