/**
 * The public shape of a virtual connection, as `connect()` and `accept()`
 * return it.
 *
 * @module
 */

import type { VirtualAddr } from "./addr.ts";

/**
 * A virtual connection, in `Deno.Conn`'s shape: a function that takes a
 * `Deno.Conn` takes a `VirtualConn` as it is.
 *
 * Bytes arrive complete and in order. `write()` resolves once the bytes are
 * within the peer's credit and queued to the relay; while the peer does not
 * read, it waits. A peer's `close()` or `closeWrite()` ends this side's reads
 * after every byte sent before it has been read.
 *
 * A virtual connection holds no operating-system resource of its own: the
 * client's one TCP link to the relay carries every connection. See
 * {@linkcode VirtualConn.unref} for what keeps a process alive.
 *
 * @example Send a line and read the answer, as with any Deno.Conn
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * async function ask(conn: Deno.Conn, question: string): Promise<string> {
 *   await conn.write(new TextEncoder().encode(question));
 *   await conn.closeWrite();
 *   return await new Response(conn.readable).text();
 * }
 *
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
 * assert.equal(conn.remoteAddr.port, 7);
 * assert.equal(await ask(conn, "ping\n"), "ping\n");
 * ```
 */
export interface VirtualConn extends Disposable {
  /**
   * Reads into `p`.
   *
   * If the link to the relay is lost, reads first return the bytes already
   * received, then reject with `ConnectionReset` (or resolve null if the peer
   * had already ended its side).
   *
   * @param p Where to copy the bytes; at most `p.length` are read.
   * @returns The number of bytes read, or null at end of stream.
   */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Writes all of `p`, splitting it into frames of at most 65535 bytes.
   * Concurrent writes do not interleave. Rejects with `BrokenPipe` once this
   * side or the peer shut the direction down, `ConnectionReset` once the
   * connection is lost, `Closed` after {@linkcode VirtualConn.close}.
   *
   * @param p The bytes to send; they may be reused once the promise resolves.
   * @returns `p.length`, once every byte is within the peer's credit and queued.
   */
  write(p: Uint8Array): Promise<number>;
  /**
   * Closes both directions. The peer reads everything written before, then
   * end of stream. Pending reads resolve null; pending writes reject.
   * Idempotent.
   */
  close(): void;
  /**
   * Half-close: tells the peer no more data follows (its reads end after the
   * bytes already sent). Reading goes on. Idempotent.
   *
   * @returns A promise that resolves once the writes before it are queued.
   */
  closeWrite(): Promise<void>;
  /** This end's virtual address: this client's virtual IP and local port. */
  readonly localAddr: VirtualAddr;
  /** The peer's virtual address. */
  readonly remoteAddr: VirtualAddr;
  /** The incoming bytes as a stream; cancelling it closes the connection. */
  readonly readable: ReadableStream<Uint8Array<ArrayBuffer>>;
  /** A stream that writes to the connection; closing it shuts down the write side only. */
  readonly writable: WritableStream<Uint8Array<ArrayBufferLike>>;
  /**
   * Lets this connection keep the process alive again (the default); see
   * {@linkcode VirtualConn.unref}.
   */
  ref(): void;
  /**
   * Stops this connection from keeping the process alive. What keeps it
   * alive is the client's TCP link to the relay, shared by all its sockets:
   * the client lets go of the link once it, every listener and every open
   * connection are unref'd.
   */
  unref(): void;
  /** Same as {@linkcode VirtualConn.close}, for `using`. */
  [Symbol.dispose](): void;
}
