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
import {
  DATA_HEADER_BYTES,
  FieldBytes,
  FRAME_HEADER_BYTES,
  MAX_DATA_BYTES,
  MAX_WINDOW_BYTES,
} from "../protocol/constants.ts";
import { FIXED_BODY_BYTES, readU32, writeU32 } from "../protocol/layout.ts";
import { PacketType } from "../protocol/packet_type.ts";
import type { Packet } from "../protocol/packets.ts";
import {
  acquireSlabBuffer,
  acquireSmallBuffer,
  releaseBuffer,
  SLAB_BUFFER_BYTES,
  SMALL_BUFFER_BYTES,
} from "./buffer_pool.ts";
import type { Slab } from "./slab.ts";

/** Where a writer's bytes go: a `Deno.Conn` in production. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * Writes all of `bytes` to `sink`, however many writes it takes (a write may
 * take only a first part). Each write must take at least one byte, so there
 * are at most `bytes.length` of them; a sink that takes none fails.
 *
 * @param sink Where the bytes go.
 * @param bytes What to write.
 */
export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  let written = 0;
  for (let writes = 0; written < bytes.length; writes++) {
    if (writes > bytes.length) throw new Error("write made no progress");
    written += await sink.write(bytes.subarray(written));
  }
}

/**
 * Largest batch: the most one write takes. Three full data frames and
 * then some, so a busy link writes in few, large calls.
 */
export const BATCH_BUFFER_BYTES = SLAB_BUFFER_BYTES;

/** Queued bytes above which {@linkcode FrameWriter.room} asks producers to wait. */
export const WRITE_HIGH_WATER_BYTES = 256 * 1024;

/** Where a WindowUpdate's increment sits in its frame, and the frame's size. */
const INCREMENT_OFFSET = FRAME_HEADER_BYTES + FieldBytes.connectionId;
const WINDOW_UPDATE_FRAME_BYTES = FRAME_HEADER_BYTES + FIXED_BODY_BYTES[PacketType.WindowUpdate];

/**
 * Frames that say something about the link, not about a connection: behind
 * a deep queue they take the urgent lane, ahead of queued data, so a
 * keepalive is answered and a closing reason arrives however deep the queue. Frames about a
 * connection keep their order with its data (a SocketClosed must not
 * overtake the data before it, nor a WindowUpdate the response that opened it).
 */
function isUrgent(type: number): boolean {
  return type === PacketType.Ping || type === PacketType.Pong || type === PacketType.Error;
}

/**
 * Data frames of at least this payload are forwarded from the slab they
 * arrived in rather than copied (see {@linkcode FrameWriter.writeData}): a
 * smaller one costs less to copy than a write of its own, and could pin a
 * whole slab for a few bytes.
 */
export const FORWARD_IN_PLACE_MIN_BYTES = 16 * 1024;

/**
 * Slab views a lane may hold queued (besides the one being written). With
 * the write in flight, a link pins at most this many slabs plus one; past
 * it, frames are copied as usual.
 */
const MAX_QUEUED_VIEWS = 2;

/**
 * Bytes waiting for their write: a pooled batch buffer of frames copied in,
 * or a run of whole frames forwarded in place in a {@linkcode Slab}.
 */
interface Batch {
  readonly buffer: Uint8Array;
  readonly start: number;
  length: number;
  /** Bytes of control frames (anything but ArbitraryData) in it. */
  readonly controlBytes: number;
  /** The slab the bytes are a view of (held once by this batch), or null for a pooled buffer. */
  readonly slab: Slab | null;
}

/** Gives a written (or dropped) batch's buffer back: to the pool, or a reference to its slab. */
function releaseBatch(batch: Batch): void {
  if (batch.slab !== null) batch.slab.release();
  else releaseBuffer(batch.buffer);
}

/** One queue of batches: full ones oldest first, then the one being filled. */
class Lane {
  readonly full: Batch[] = [];
  buffer: Uint8Array | null = null;
  length = 0;
  controlInBuffer = 0;
  /** Slab views among `full`. */
  views = 0;

  /** Takes the oldest batch out of the lane, the one being filled last. */
  take(): Batch | undefined {
    const next = this.full.shift();
    if (next) {
      if (next.slab !== null) this.views--;
      return next;
    }
    if (this.length === 0) return undefined;
    const batch = {
      buffer: this.buffer!,
      start: 0,
      length: this.length,
      controlBytes: this.controlInBuffer,
      slab: null,
    };
    this.buffer = null;
    this.length = 0;
    this.controlInBuffer = 0;
    return batch;
  }

  /** Moves the buffer being filled to the full batches. */
  seal(): void {
    if (this.buffer === null) return;
    this.full.push({
      buffer: this.buffer,
      start: 0,
      length: this.length,
      controlBytes: this.controlInBuffer,
      slab: null,
    });
    this.buffer = null;
    this.length = 0;
    this.controlInBuffer = 0;
  }

  /**
   * Queues `length` bytes of `slab` from `start`: appended to the last
   * batch when that is the run of the same slab that ends at `start`, else
   * as a batch of its own, holding a reference to the slab. Only while
   * nothing is being filled (order); a new run only if `newRun` and within
   * {@linkcode MAX_QUEUED_VIEWS}. False otherwise.
   */
  queueView(slab: Slab, start: number, length: number, newRun: boolean): boolean {
    if (this.length !== 0) return false;
    const last = this.full.at(-1);
    if (last?.slab === slab && last.start + last.length === start) {
      last.length += length;
      return true;
    }
    if (!newRun || this.views >= MAX_QUEUED_VIEWS) return false;
    slab.retain();
    this.full.push({ buffer: slab.bytes, start, length, controlBytes: 0, slab });
    this.views++;
    return true;
  }

  /** Drops every batch (buffers back to the pool); returns their total and control bytes. */
  discard(): { bytes: number; controlBytes: number } {
    this.seal();
    let bytes = 0;
    let controlBytes = 0;
    for (const batch of this.full.splice(0)) {
      bytes += batch.length;
      controlBytes += batch.controlBytes;
      releaseBatch(batch);
    }
    this.views = 0;
    return { bytes, controlBytes };
  }
}

/**
 * Queues frames for one link. Never blocks the caller: it is the flow-control
 * layer above that bounds how much may be queued; {@linkcode queuedBytes}
 * lets it check. Frames fill pooled batch buffers of at most 256 KiB; a
 * full one waits in line and the next frame starts another, so a deep queue
 * allocates nothing new. While the queue is deep (congested), Ping, Pong and
 * Error frames go in an urgent lane written before any queued batch; frame
 * boundaries stay intact.
 */
export class FrameWriter {
  readonly #sink: ByteSink;
  readonly #onError: (error: unknown) => void;
  readonly #highWater: number;
  readonly #onDataWritten: ((bytes: number) => void) | undefined;

  readonly #normal = new Lane();
  /** Created the first time the queue is deep: most links never need it. */
  #urgent: Lane | null = null;
  /**
   * Where the increment of each WindowUpdate in the normal lane's unsent
   * buffer is, by connection id: a later grant to the same end is added
   * there instead of queued as a frame of its own. Created on first use.
   */
  #grantAt: Map<number, number> | null = null;
  /**
   * Where the header of the last frame in the normal lane's unsent buffer
   * is, when that frame is data {@linkcode appendData} may extend; else -1.
   */
  #openDataAt = -1;
  #openDataId = 0;
  /** Control bytes queued or being written; data is bounded by credit, control is not. */
  #controlBytes = 0;
  /** Bytes queued (every lane) plus bytes being written. */
  #queuedBytes = 0;
  #flushing = false;
  #failed = false;
  /** Set by {@linkcode finish}: nothing more is queued. */
  #finished = false;
  #drainWaiters: (() => void)[] = [];
  #roomWaiters: (() => void)[] = [];

  /**
   * `onError` runs once if a write fails; the writer drops everything after
   * that. `onDataWritten` runs after each write that took data frames out of
   * the queue, with their bytes (headers included).
   */
  constructor(
    sink: ByteSink,
    onError: (error: unknown) => void,
    highWaterBytes: number = WRITE_HIGH_WATER_BYTES,
    onDataWritten?: (bytes: number) => void,
  ) {
    this.#sink = sink;
    this.#onError = onError;
    this.#highWater = highWaterBytes;
    this.#onDataWritten = onDataWritten;
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

  /** Queues one packet's frame: in order, except Ping, Pong and Error behind a deep queue. */
  writePacket(packet: Packet): void {
    if (this.#failed || this.#finished) return;
    this.#queuePacket(packet);
  }

  /**
   * Queues a WindowUpdate, merged into one still queued for the same
   * connection when there is one: the receiver gets the same credit, sooner,
   * and a flood of small grants costs one frame per end per write instead
   * of one per grant. A merged increment never exceeds the protocol's maximum.
   */
  writeWindowUpdate(connectionId: number, increment: number): void {
    if (this.#failed || this.#finished) return;
    const lane = this.#normal;
    const at = this.#grantAt?.get(connectionId);
    if (at !== undefined) {
      const merged = readU32(lane.buffer!, at) + increment;
      if (merged <= MAX_WINDOW_BYTES) return writeU32(lane.buffer!, at, merged);
    }
    this.#queuePacket({ type: PacketType.WindowUpdate, connectionId, increment });
    // #queuePacket left the frame at the end of the normal lane's buffer.
    (this.#grantAt ??= new Map()).set(
      connectionId,
      lane.length - WINDOW_UPDATE_FRAME_BYTES + INCREMENT_OFFSET,
    );
  }

  /**
   * Queues an ArbitraryData frame, one frame per call (a relay's budget
   * counts them). With the `slab` the payload arrived in (a relay forwarding
   * what its read loop decoded), the frame is forwarded in place when it can
   * be: its header, just before the payload in the slab, is rewritten for
   * `connectionId`, and the bytes are written from the slab. A frame that
   * continues the run of the same slab queued last joins it whatever its
   * size; a new run starts only for a large frame (see
   * {@linkcode FORWARD_IN_PLACE_MIN_BYTES}). Otherwise `payload` is copied
   * once into the batch.
   */
  writeData(connectionId: number, payload: Uint8Array, slab: Slab | null = null): void {
    if (this.#failed || this.#finished) return;
    const size = DATA_FRAME_OVERHEAD_BYTES + payload.length;
    this.#openDataAt = -1;
    if (slab === null || !this.#forwardInPlace(connectionId, payload, slab)) {
      this.#copyData(connectionId, payload);
    }
    this.#queuedBytes += size;
    this.#schedule();
  }

  /**
   * Queues `payload` for an endpoint's connection: appended to the last
   * frame queued, when that is an unsent data frame of the same connection
   * with room, else as new frames. Nothing waits for more bytes, so a lone
   * write goes out as it is; but a stream of writes made while a write is in
   * flight leaves in full frames, not in a 64 KiB one and a 1-byte one per
   * 64 KiB. Not for a relay, whose budget counts frames.
   */
  appendData(connectionId: number, payload: Uint8Array): void {
    if (this.#failed || this.#finished) return;
    const lane = this.#normal;
    let offset = 0;
    const at = this.#openDataAt;
    if (at >= 0 && this.#openDataId === connectionId) {
      const buffer = lane.buffer!;
      const length = readU32(buffer, at);
      offset = Math.min(
        payload.length,
        DATA_HEADER_BYTES + MAX_DATA_BYTES - length,
        buffer.length - lane.length,
      );
      buffer.set(payload.subarray(0, offset), lane.length);
      writeU32(buffer, at, length + offset);
      lane.length += offset;
      this.#queuedBytes += offset;
    }
    while (offset < payload.length) {
      const size = Math.min(MAX_DATA_BYTES, payload.length - offset);
      this.#copyData(connectionId, payload.subarray(offset, offset + size));
      this.#queuedBytes += DATA_FRAME_OVERHEAD_BYTES + size;
      this.#openDataAt = lane.length - DATA_FRAME_OVERHEAD_BYTES - size;
      this.#openDataId = connectionId;
      offset += size;
    }
    this.#schedule();
  }

  /** Copies a data frame into the normal lane's batch. */
  #copyData(connectionId: number, payload: Uint8Array): void {
    const lane = this.#normal;
    const target = this.#reserve(lane, DATA_FRAME_OVERHEAD_BYTES + payload.length);
    lane.length += encodeDataHeader(target, lane.length, connectionId, payload.length);
    target.set(payload, lane.length);
    lane.length += payload.length;
  }

  /**
   * Queues the link's last frame, after everything queued, and nothing after
   * it. With `discardQueued`, everything not yet being written is dropped
   * first, so the last frame follows the write in flight instead of a queue
   * the peer is not reading.
   */
  finish(last: Packet, discardQueued: boolean): void {
    if (this.#failed || this.#finished) return;
    if (discardQueued) {
      for (const lane of [this.#urgent, this.#normal]) {
        if (lane === null) continue;
        const dropped = lane.discard();
        this.#queuedBytes -= dropped.bytes;
        this.#controlBytes -= dropped.controlBytes;
      }
      this.#grantAt = null;
      this.#openDataAt = -1;
    }
    // Kept in order otherwise: the last frame must follow everything still queued.
    this.#queuePacket(last, this.#normal);
    this.#finished = true;
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

  /** Rewrites the frame's header in the slab and queues it from there; false if it cannot. */
  #forwardInPlace(connectionId: number, payload: Uint8Array, slab: Slab): boolean {
    if (!slab.holds(payload)) return false;
    const frameStart = slab.offsetOf(payload) - DATA_FRAME_OVERHEAD_BYTES;
    if (frameStart < 0) return false;
    const size = DATA_FRAME_OVERHEAD_BYTES + payload.length;
    // Checked before the header is touched: a refused view leaves the slab as it was.
    const lane = this.#normal;
    const newRun = payload.length >= FORWARD_IN_PLACE_MIN_BYTES;
    if (newRun && lane.length !== 0 && lane.views < MAX_QUEUED_VIEWS) {
      // Frames copied before it (small ones, control) leave first, in their own write: cheaper
      // than copying this one in after them, and every large frame after it would follow.
      this.#grantAt?.clear();
      lane.seal();
    }
    if (!lane.queueView(slab, frameStart, size, newRun)) return false;
    encodeDataHeader(slab.bytes, frameStart, connectionId, payload.length);
    return true;
  }

  #queuePacket(packet: Packet, lane = this.#laneFor(packet.type)): void {
    if (lane === this.#normal) this.#openDataAt = -1;
    const size = encodedLength(packet);
    const target = this.#reserve(lane, size);
    lane.length += encodeInto(packet, target, lane.length);
    this.#queuedBytes += size;
    lane.controlInBuffer += size;
    this.#controlBytes += size;
    this.#schedule();
  }

  /**
   * The urgent lane only while the queue is deep: a shallow one leaves within
   * a write or two, and keeps every frame in order (VirtualIP stays first).
   */
  #laneFor(type: number): Lane {
    return this.congested && isUrgent(type) ? (this.#urgent ??= new Lane()) : this.#normal;
  }

  /** The lane's batch buffer with room for `bytes` more, starting a new one when needed. */
  #reserve(lane: Lane, bytes: number): Uint8Array {
    const current = lane.buffer;
    if (current && current.length - lane.length >= bytes) return current;
    const needed = lane.length + bytes;
    if (current && current.length === SMALL_BUFFER_BYTES && needed <= BATCH_BUFFER_BYTES) {
      // Promote a small batch of control frames rather than send it on its own (same offsets).
      const large = acquireSlabBuffer();
      large.set(current.subarray(0, lane.length));
      releaseBuffer(current);
      return lane.buffer = large;
    }
    if (lane === this.#normal) {
      this.#grantAt?.clear();
      this.#openDataAt = -1;
    }
    lane.seal();
    return lane.buffer = bytes <= SMALL_BUFFER_BYTES ? acquireSmallBuffer() : acquireSlabBuffer();
  }

  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    // A microtask lets every frame produced by the current read chunk join one write.
    queueMicrotask(() => this.#flush());
  }

  #takeBatch(): Batch | undefined {
    const urgent = this.#urgent?.take();
    if (urgent) return urgent;
    // The buffer being filled leaves with this take: nothing can be merged into it any more.
    if (this.#normal.full.length === 0) {
      this.#grantAt?.clear();
      this.#openDataAt = -1;
    }
    return this.#normal.take();
  }

  async #flush(): Promise<void> {
    /** The batch being written: only it, never one already back in the pool, is released on failure. */
    let writing: Batch | undefined;
    try {
      for (let batch = this.#takeBatch(); batch && !this.#failed; batch = this.#takeBatch()) {
        let written = 0;
        writing = batch;
        const end = batch.start + batch.length;
        while (written < batch.length) {
          written += await this.#sink.write(batch.buffer.subarray(batch.start + written, end));
        }
        writing = undefined;
        this.#queuedBytes -= batch.length;
        this.#controlBytes -= batch.controlBytes;
        // Back to the shared pool (or the slab's reader), so an idle link pins no buffer.
        releaseBatch(batch);
        if (this.#queuedBytes <= this.#highWater / 2) wakeAll(this.#roomWaiters);
        const dataBytes = batch.length - batch.controlBytes;
        if (dataBytes > 0) this.#onDataWritten?.(dataBytes);
      }
    } catch (error) {
      this.#failed = true;
      // The batch whose write failed is out of its lane: back to the pool with the rest.
      if (writing) releaseBatch(writing);
      this.#urgent?.discard();
      this.#normal.discard();
      this.#grantAt = null;
      this.#openDataAt = -1;
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
