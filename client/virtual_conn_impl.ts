/**
 * One virtual connection: a byte stream to a peer through the relay, with
 * per-connection credit in both directions.
 *
 * @module
 */

import { BrokenPipe, Closed, ConnectionReset, ProtocolError } from "../errors.ts";
import { MAX_DATA_BYTES } from "../protocol/constants.ts";
import { Reason, reasonName } from "../protocol/reason.ts";
import type { VirtualAddr } from "./addr.ts";
import { type ConnState, nextConnState, readsOpen, writesShut } from "./conn_state.ts";
import type { VirtualConn } from "./virtual_conn.ts";
import type { Slab } from "../transport/slab.ts";

/**
 * Unread payloads at least this large stay where they arrived, as views of
 * the link's slab, instead of being copied: the application's read makes the
 * one copy. A smaller one is cheaper to copy than to pin a slab for.
 */
const KEEP_IN_PLACE_MIN_BYTES = 16 * 1024;

/** What a connection needs from the client that owns it. */
export interface ConnectionHost {
  sendData(connectionId: number, payload: Uint8Array): void;
  /** Undefined while the link can take more, else a promise for when it can. */
  linkRoom(): Promise<void> | undefined;
  sendWindowUpdate(connectionId: number, increment: number): void;
  /**
   * Asks to grow `conn`'s receive window by `wanted` bytes; returns how much
   * it may (0..wanted), which the client then counts as that connection's
   * until it is released. Bounds what all connections together add.
   */
  growWindow(conn: VirtualConnImpl, wanted: number): number;
  /**
   * Asks to keep one more unread payload as a view of its slab; false when
   * the client already holds its share of slabs that way (the payload is
   * then copied). Each true is matched by one {@linkcode releaseSlab}.
   */
  holdSlab(): boolean;
  /** One slab view taken with {@linkcode holdSlab} was read or dropped. */
  releaseSlab(): void;
  sendShutdown(connectionId: number): void;
  sendClosed(connectionId: number): void;
  /** Forgets the connection: frees its id and local port. */
  release(conn: VirtualConnImpl): void;
  /** The connection's ref() or unref() changed whether it keeps the process alive. */
  refChanged(conn: VirtualConnImpl): void;
}

/**
 * A read waiting for bytes. Resolved with `filled` 0, it looks again;
 * otherwise `filled` bytes were copied into `buffer` (more may be added
 * until the read resumes).
 */
interface ReadWaiter {
  readonly buffer: Uint8Array | null;
  readonly resolve: () => void;
  filled: number;
}

/** Static facts of a new connection. */
export interface ConnectionSetup {
  readonly id: number;
  readonly localAddr: VirtualAddr;
  readonly remoteAddr: VirtualAddr;
  /** The window this side announced: how much the peer may send unread. */
  readonly receiveWindow: number;
  /** How far this side may grow its window while its reader is starved. */
  readonly maxReceiveWindow: number;
  /** The window the peer announced: initial send credit. */
  readonly sendWindow: number;
  /** Whether this side opened it (and so owns an ephemeral local port). */
  readonly outbound: boolean;
}

/** The implementation of {@linkcode VirtualConn}; created by the client's socket table. */
export class VirtualConnImpl implements VirtualConn {
  // Static after construction.
  readonly #host: ConnectionHost;
  readonly #setup: ConnectionSetup;

  // Lifecycle: one state (transitions in conn_state.ts), and why the relay no longer carries
  // the connection (null while it does): the error writes get, and reads once the bytes run out
  // unless the read side had ended.
  #state: ConnState = "open";
  #failure: Error | null = null;
  #refd = true;

  // Receive side, owned by the client's read loop and the application's reads.
  #chunks: Uint8Array<ArrayBuffer>[] = [];
  /** Per chunk, the slab it is a view of (held once for it), or null for a copy. */
  #chunkSlabs: (Slab | null)[] = [];
  #headOffset = 0;
  #buffered = 0;
  #unacknowledged = 0;
  /** The current receive window: starts as announced, doubles while the reader starves. */
  #window: number;
  /** Pending reads; a waiter with a buffer may be handed bytes directly (one copy, no allocation). */
  #readWaiters: ReadWaiter[] = [];
  /**
   * The read last handed bytes directly, until it resumes: later frames of
   * the same link read fill the rest of its buffer, so one read() returns
   * what one link read brought instead of one frame.
   */
  #filling: ReadWaiter | null = null;

  // Send side.
  #credit: number;
  #creditWaiters: (() => void)[] = [];
  #writeChain: Promise<unknown> = Promise.resolve();

  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;

  /** Created by the client; applications get connections from `connect` and `accept`. */
  constructor(host: ConnectionHost, setup: ConnectionSetup) {
    this.#host = host;
    this.#setup = setup;
    this.#credit = setup.sendWindow;
    this.#window = setup.receiveWindow;
  }

  get localAddr(): VirtualAddr {
    return this.#setup.localAddr;
  }

  get remoteAddr(): VirtualAddr {
    return this.#setup.remoteAddr;
  }

  /** The relay's id of this end. */
  get id(): number {
    return this.#setup.id;
  }

  /** Whether this client opened the connection (it then owns its local port). */
  get outbound(): boolean {
    return this.#setup.outbound;
  }

  /** Where the connection is in its life (for tests and diagnostics). */
  get state(): ConnState {
    return this.#state;
  }

  /** How far the receive window has grown beyond the one announced. */
  get windowGrowth(): number {
    return this.#window - this.#setup.receiveWindow;
  }

  /** Whether the connection keeps the process alive (see `unref`). */
  get refd(): boolean {
    return this.#refd;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.#buffered > 0) return this.#copyOut(buffer);
      if (buffer.length === 0) return 0;
      const end = this.#endOfReads();
      if (end !== undefined) return end;
      let waiter!: ReadWaiter;
      await new Promise<void>((resolve) => {
        waiter = { buffer, resolve, filled: 0 };
        this.#readWaiters.push(waiter);
      });
      if (this.#filling === waiter) this.#filling = null;
      // Frames decoded from the same link read after the first may have added to it.
      if (waiter.filled > 0) return waiter.filled;
    }
  }

  write(data: Uint8Array): Promise<number> {
    if (this.#state === "closed") {
      return Promise.reject(new Closed("Cannot write: the connection is closed"));
    }
    if (writesShut(this.#state)) {
      return Promise.reject(new BrokenPipe("Cannot write: the write side was shut down"));
    }
    const done = this.#writeChain.then(() => this.#writeAll(data));
    this.#writeChain = done.catch(() => {});
    return done;
  }

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        const chunk = await this.#nextChunk();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.closeWrite(),
      abort: () => this.close(),
    });
    return this.#writable;
  }

  async closeWrite(): Promise<void> {
    if (this.#state === "closed" || writesShut(this.#state)) return;
    this.#state = nextConnState(this.#state, "closeWrite");
    await this.#writeChain;
    // Writes queued before closeWrite() went out first; the connection may have ended meanwhile.
    if (writesShut(this.#state) && this.#failure === null) this.#host.sendShutdown(this.#setup.id);
  }

  close(): void {
    if (this.#state === "closed") return;
    this.#state = nextConnState(this.#state, "close");
    if (this.#failure === null) this.#host.sendClosed(this.#setup.id);
    while (this.#chunks.length > 0) this.#shiftChunk();
    this.#headOffset = 0;
    this.#buffered = 0;
    this.#host.release(this);
    this.#wakeAll();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  ref(): void {
    if (this.#refd) return;
    this.#refd = true;
    this.#host.refChanged(this);
  }

  unref(): void {
    if (!this.#refd) return;
    this.#refd = false;
    this.#host.refChanged(this);
  }

  /**
   * Client only: bytes arrived from the peer, as a view of `slab` when not
   * null (which this may keep a reference to). Throws if the relay broke credit.
   */
  receive(payload: Uint8Array, slab: Slab | null = null): void {
    if (!readsOpen(this.#state)) return;
    if (this.#buffered + this.#unacknowledged + payload.length > this.#window) {
      throw new ProtocolError(
        `Cannot accept data: connection ${this.#setup.id} exceeds its window of ${this.#window} bytes`,
        Reason.FlowControl,
      );
    }
    let offset = 0;
    const filling = this.#filling;
    if (this.#buffered === 0 && filling !== null && filling.filled < filling.buffer!.length) {
      // The read resumed by an earlier frame has not run yet: its buffer takes these bytes too.
      offset = this.#fill(filling, payload);
    } else if (this.#buffered === 0) {
      // Fast path: a read is waiting, so copy straight into its buffer.
      const at = this.#readWaiters.findIndex((waiter) => waiter.buffer !== null);
      if (at >= 0) {
        const [waiter] = this.#readWaiters.splice(at, 1);
        offset = this.#fill(waiter, payload);
        this.#filling = waiter;
        waiter.resolve();
      }
    }
    if (offset < payload.length) {
      const rest = payload.subarray(offset);
      if (
        slab !== null && rest.length >= KEEP_IN_PLACE_MIN_BYTES &&
        slab.holds(rest) && this.#host.holdSlab()
      ) {
        slab.retain();
        this.#chunks.push(rest as Uint8Array<ArrayBuffer>);
        this.#chunkSlabs.push(slab);
      } else {
        this.#chunks.push(rest.slice());
        this.#chunkSlabs.push(null);
      }
      this.#buffered += rest.length;
      this.#wake(this.#readWaiters);
    }
  }

  /** Client only: the peer granted more credit. */
  grant(increment: number): void {
    this.#credit += increment;
    this.#wake(this.#creditWaiters);
  }

  /** Client only: the peer shut down its write side. */
  remoteShutdown(): void {
    this.#state = nextConnState(this.#state, "peerShutdown");
    this.#wake(this.#readWaiters);
  }

  /** Client only: the relay removed the connection; reads end after the buffered bytes. */
  remoteClosed(reason: number): void {
    this.#state = nextConnState(this.#state, "peerShutdown");
    this.#failure = reason === Reason.Normal
      ? new BrokenPipe("Cannot write: the peer closed the connection")
      : new ConnectionReset(
        `Cannot use the connection: the relay closed it with ${reasonName(reason)}`,
      );
    this.#wakeAll();
  }

  /** Client only: the link to the relay is gone; writes reject, reads end after the buffered bytes. */
  linkLost(error: Error): void {
    this.#failure ??= new ConnectionReset(
      "Cannot use the connection: the link to the relay was lost",
      { cause: error },
    );
    this.#wakeAll();
  }

  /**
   * Resolves null at end of stream, throws on failure, or undefined if reads
   * should wait. An end of stream that arrived before a failure still ends
   * reads with null: every byte the peer sent was delivered.
   */
  #endOfReads(): null | undefined {
    if (!readsOpen(this.#state)) return null;
    if (this.#failure) throw this.#failure;
    return undefined;
  }

  async #nextChunk(): Promise<Uint8Array<ArrayBuffer> | null> {
    while (true) {
      if (this.#buffered > 0) {
        const held = this.#chunkSlabs[0] !== null;
        const head = this.#chunks[0];
        const rest = this.#headOffset === 0 ? head : head.subarray(this.#headOffset);
        // A stream's reader may keep its chunk for good: a view of a slab must become a copy.
        const chunk = held ? rest.slice() : rest;
        this.#shiftChunk();
        this.#headOffset = 0;
        this.#consumed(chunk.length);
        return chunk;
      }
      const end = this.#endOfReads();
      if (end !== undefined) return end;
      await new Promise<void>((resolve) =>
        this.#readWaiters.push({ buffer: null, resolve, filled: 0 })
      );
    }
  }

  #copyOut(buffer: Uint8Array): number {
    let copied = 0;
    while (copied < buffer.length && this.#chunks.length > 0) {
      const head = this.#chunks[0];
      const available = head.length - this.#headOffset;
      const take = Math.min(available, buffer.length - copied);
      buffer.set(head.subarray(this.#headOffset, this.#headOffset + take), copied);
      copied += take;
      if (take === available) {
        this.#shiftChunk();
        this.#headOffset = 0;
      } else {
        this.#headOffset += take;
      }
    }
    this.#consumed(copied);
    return copied;
  }

  /** Copies what fits of `payload` into a waiting read's buffer, after what it has; returns how much. */
  #fill(waiter: ReadWaiter, payload: Uint8Array): number {
    const buffer = waiter.buffer!;
    const count = Math.min(buffer.length - waiter.filled, payload.length);
    buffer.set(payload.subarray(0, count), waiter.filled);
    waiter.filled += count;
    this.#acknowledge(count);
    return count;
  }

  /** Drops the head chunk, giving back its slab if it held one. */
  #shiftChunk(): void {
    this.#chunks.shift();
    const slab = this.#chunkSlabs.shift();
    if (slab) {
      this.#host.releaseSlab();
      slab.release();
    }
  }

  #consumed(bytes: number): void {
    this.#buffered -= bytes;
    this.#acknowledge(bytes);
  }

  /**
   * Batches credit grants: one WindowUpdate per half window read. When the
   * reader has drained everything by then, the window, not the application,
   * is what limits the stream: the grant then also doubles the window, up to
   * the maximum (receive-window auto-tuning, as in HTTP/2 and QUIC stacks).
   */
  #acknowledge(bytes: number): void {
    this.#unacknowledged += bytes;
    if (this.#unacknowledged < this.#window / 2 || !readsOpen(this.#state)) return;
    let increment = this.#unacknowledged;
    if (this.#buffered === 0 && this.#window < this.#setup.maxReceiveWindow) {
      const wanted = Math.min(this.#window, this.#setup.maxReceiveWindow - this.#window);
      const growth = this.#host.growWindow(this, wanted);
      this.#window += growth;
      increment += growth;
    }
    this.#host.sendWindowUpdate(this.#setup.id, increment);
    this.#unacknowledged = 0;
  }

  async #writeAll(data: Uint8Array): Promise<number> {
    let offset = 0;
    while (offset < data.length) {
      if (this.#state === "closed") throw new Closed("Cannot write: the connection is closed");
      if (this.#failure) throw this.#failure;
      if (this.#credit === 0) {
        await new Promise<void>((resolve) => this.#creditWaiters.push(resolve));
        continue;
      }
      const size = Math.min(this.#credit, MAX_DATA_BYTES, data.length - offset);
      this.#host.sendData(this.#setup.id, data.subarray(offset, offset + size));
      this.#credit -= size;
      offset += size;
      // Follow TCP backpressure on the link: queue no more than a batch or two in user space.
      const room = this.#host.linkRoom();
      if (room) await room;
    }
    return data.length;
  }

  #wake(waiters: ReadWaiter[] | (() => void)[]): void {
    if (waiters.length === 0) return;
    const ready = waiters.splice(0);
    for (const waiter of ready) {
      if (typeof waiter === "function") waiter();
      else waiter.resolve();
    }
  }

  #wakeAll(): void {
    this.#wake(this.#readWaiters);
    this.#wake(this.#creditWaiters);
  }
}
