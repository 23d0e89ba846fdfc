/**
 * A node `Duplex` over a {@linkcode VirtualConn}, in the shape of a
 * `net.Socket` as far as `node:http` uses one, so that node's HTTP/1.1
 * server and client run on virtual connections.
 *
 * The class is made from the `node:stream` module the caller loaded (with a
 * dynamic import), never imported here: this module loads where there are
 * no node builtins (a browser) and costs nothing until HTTP is used.
 *
 * @module
 */

import type { Duplex } from "node:stream";
import { refTimer } from "./ref_timer.ts";
import type { VirtualConn } from "./virtual_conn.ts";

/** The part of `node:stream` this module needs. */
export interface NodeStreamModule {
  readonly Duplex: typeof Duplex;
}

/**
 * A virtual connection as a node `Duplex` with the members of `net.Socket`
 * that `node:http` calls: addresses, an inactivity `setTimeout`, `ref` and
 * `unref`, and no-op `setNoDelay`/`setKeepAlive`.
 */
export interface VirtualConnDuplex extends Duplex {
  /** The virtual connection underneath. */
  readonly conn: VirtualConn;
  /** The peer's virtual IP. */
  readonly remoteAddress: string;
  /** The peer's virtual port. */
  readonly remotePort: number;
  /** Always `"IPv4"`. */
  readonly remoteFamily: string;
  /** This end's virtual IP. */
  readonly localAddress: string;
  /** This end's virtual port. */
  readonly localPort: number;
  /** The inactivity time-out set by `setTimeout` (0: none). */
  readonly timeout: number;
  /** Bytes read from the connection so far. */
  readonly bytesRead: number;
  /** Bytes written to the connection so far. */
  readonly bytesWritten: number;
  /**
   * Emits `timeout` once nothing was read or written for `ms` (0 turns it
   * off), as `net.Socket.setTimeout` does; `callback` is added as a
   * `timeout` listener.
   */
  setTimeout(ms: number, callback?: () => void): this;
  /** Nothing to do: a virtual connection sends every write as it comes. */
  setNoDelay(noDelay?: boolean): this;
  /** Nothing to do: the client's link to the relay has its own keepalive. */
  setKeepAlive(enable?: boolean, initialDelay?: number): this;
  /** The connection (and its time-out) keeps the process alive again. */
  ref(): this;
  /** The connection (and its time-out) no longer keeps the process alive. */
  unref(): this;
}

/** Makes a {@linkcode VirtualConnDuplex}. */
export type VirtualConnDuplexClass = new (
  conn: VirtualConn,
  options: { readonly allowHalfOpen: boolean },
) => VirtualConnDuplex;

/** Writes this small or smaller are joined into one before they reach the connection. */
const JOIN_WRITES_BYTES = 16 * 1024;

/**
 * The {@linkcode VirtualConnDuplex} class over `stream.Duplex`.
 *
 * Backpressure both ways: the connection is read only while the Duplex
 * wants data (`_read` until `push` says stop), so an unread HTTP body holds
 * back the peer through the connection's credit; a write completes when the
 * connection accepted it (within the peer's credit). `end()` half-closes
 * (`closeWrite`), `destroy()` closes. With `allowHalfOpen: false` (what
 * `net.connect` gives a client) the Duplex ends its side once the peer
 * ended its own, and is destroyed when both are done.
 *
 * @param stream The loaded `node:stream` module.
 * @returns The class.
 */
export function virtualConnDuplexClass(stream: NodeStreamModule): VirtualConnDuplexClass {
  return class VirtualConnDuplexImpl extends stream.Duplex implements VirtualConnDuplex {
    readonly conn: VirtualConn;
    readonly #reader: ReadableStreamDefaultReader<Uint8Array<ArrayBuffer>>;
    /** Whether a read loop runs: `_read` starts one only if not. */
    #reading = false;
    #timeoutMs = 0;
    #timer: ReturnType<typeof setTimeout> | undefined;
    /** When the connection last moved bytes, for the inactivity time-out. */
    #lastActive = 0;
    #refd = true;
    #bytesRead = 0;
    #bytesWritten = 0;

    constructor(conn: VirtualConn, options: { readonly allowHalfOpen: boolean }) {
      super({ allowHalfOpen: options.allowHalfOpen, readableHighWaterMark: 64 * 1024 });
      this.conn = conn;
      this.#reader = conn.readable.getReader();
      // node:http listens for errors while it owns the socket; one that comes between owners
      // (an idle pooled connection whose link is lost) must end this connection, not the process.
      this.on("error", () => {});
    }

    get remoteAddress(): string {
      return this.conn.remoteAddr.hostname;
    }

    get remotePort(): number {
      return this.conn.remoteAddr.port;
    }

    get remoteFamily(): string {
      return "IPv4";
    }

    get localAddress(): string {
      return this.conn.localAddr.hostname;
    }

    get localPort(): number {
      return this.conn.localAddr.port;
    }

    get timeout(): number {
      return this.#timeoutMs;
    }

    get bytesRead(): number {
      return this.#bytesRead;
    }

    get bytesWritten(): number {
      return this.#bytesWritten;
    }

    override _read(): void {
      if (this.#reading) return;
      this.#reading = true;
      void this.#pump();
    }

    /** Reads chunks as they come (no copy) until the Duplex has enough or the peer ends. */
    async #pump(): Promise<void> {
      try {
        while (!this.destroyed) {
          const { value, done } = await this.#reader.read();
          if (this.destroyed) return;
          if (done) {
            this.push(null);
            return;
          }
          this.#bytesRead += value.length;
          this.#active();
          if (!this.push(value)) return;
        }
      } catch (error) {
        this.destroy(error as Error);
      } finally {
        this.#reading = false;
      }
    }

    override _write(
      chunk: Uint8Array,
      _encoding: string,
      callback: (error?: Error | null) => void,
    ): void {
      this.#active();
      this.conn.write(chunk).then(() => {
        this.#bytesWritten += chunk.length;
        this.#active();
        callback();
      }, callback);
    }

    override _writev(
      chunks: { chunk: Uint8Array }[],
      callback: (error?: Error | null) => void,
    ): void {
      this.#active();
      void this.#writeAll(chunks.map((c) => c.chunk)).then(() => {
        this.#active();
        callback();
      }, callback);
    }

    /** Writes queued chunks in order, joining runs of small ones (HTTP heads, chunk markers). */
    async #writeAll(chunks: Uint8Array[]): Promise<void> {
      let run: Uint8Array[] = [];
      let runBytes = 0;
      const flush = async (): Promise<void> => {
        if (run.length === 0) return;
        const joined = run.length === 1 ? run[0] : new Uint8Array(runBytes);
        if (run.length > 1) {
          let offset = 0;
          for (const part of run) {
            joined.set(part, offset);
            offset += part.length;
          }
        }
        run = [];
        runBytes = 0;
        await this.conn.write(joined);
        this.#bytesWritten += joined.length;
      };
      for (const chunk of chunks) {
        if (chunk.length > JOIN_WRITES_BYTES) {
          await flush();
          await this.conn.write(chunk);
          this.#bytesWritten += chunk.length;
          continue;
        }
        if (runBytes + chunk.length > JOIN_WRITES_BYTES) await flush();
        run.push(chunk);
        runBytes += chunk.length;
      }
      await flush();
    }

    override _final(callback: (error?: Error | null) => void): void {
      this.conn.closeWrite().then(() => callback(), callback);
    }

    override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
      this.#clearTimer();
      this.conn.close();
      callback(error);
    }

    setTimeout(ms: number, callback?: () => void): this {
      this.#timeoutMs = ms;
      if (callback !== undefined) {
        if (ms === 0) this.removeListener("timeout", callback);
        else this.once("timeout", callback);
      }
      this.#clearTimer();
      this.#active();
      return this;
    }

    setNoDelay(_noDelay?: boolean): this {
      return this;
    }

    setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
      return this;
    }

    ref(): this {
      this.#refd = true;
      this.conn.ref();
      if (this.#timer !== undefined) refTimer(this.#timer, true);
      return this;
    }

    unref(): this {
      this.#refd = false;
      this.conn.unref();
      if (this.#timer !== undefined) refTimer(this.#timer, false);
      return this;
    }

    /** Bytes moved: pushes the time-out back (and arms it again after it fired). */
    #active(): void {
      if (this.#timeoutMs === 0) return;
      this.#lastActive = performance.now();
      if (this.#timer === undefined && !this.destroyed) this.#arm(this.#timeoutMs);
    }

    /**
     * One timer per time-out, not one per read or write: when it fires early
     * (there was activity since), it is armed again for the rest; once it
     * emits `timeout`, only new activity arms it again, as with a
     * `net.Socket`.
     */
    #arm(ms: number): void {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (this.destroyed || this.#timeoutMs === 0) return;
        const idle = performance.now() - this.#lastActive;
        if (idle < this.#timeoutMs) this.#arm(this.#timeoutMs - idle);
        else this.emit("timeout");
      }, ms);
      refTimer(this.#timer, this.#refd);
    }

    #clearTimer(): void {
      if (this.#timer === undefined) return;
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  };
}
