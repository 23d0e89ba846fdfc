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
   * Reads into `p`, like `Deno.Conn.read`: resolves as soon as some bytes
   * are there, with how many were copied.
   *
   * If the link to the relay is lost, reads first return the bytes already
   * received, then reject with `ConnectionReset` (or resolve null if the peer
   * had already ended its side). After {@linkcode VirtualConn.close}, reads
   * resolve null (Deno's `read()` throws `BadResource` there).
   *
   * @example Read an echo
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // An echo service listens at 83.12.4.200:7.
   * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * await conn.write(new TextEncoder().encode("hi"));
   * const buffer = new Uint8Array(1024);
   * const n = await conn.read(buffer);
   * assert.ok(n !== null);
   * assert.equal(new TextDecoder().decode(buffer.subarray(0, n)), "hi");
   * ```
   *
   * @param p Where to copy the bytes; at most `p.length` are read.
   * @returns The number of bytes read, or null at end of stream.
   */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Writes all of `p`, splitting it into frames of at most 65535 bytes.
   * Concurrent writes do not interleave. Rejects with `BrokenPipe` once this
   * side or the peer shut the direction down, `ConnectionReset` once the
   * connection is lost, `Closed` (a `Deno.errors.BadResource`) after
   * {@linkcode VirtualConn.close}.
   *
   * @example Write a whole buffer at once
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // An echo service listens at 83.12.4.200:7.
   * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * const data = new Uint8Array(100_000);
   * assert.equal(await conn.write(data), data.length);
   * ```
   *
   * @param p The bytes to send; they may be reused once the promise resolves.
   * @returns `p.length`, once every byte is within the peer's credit and queued.
   */
  write(p: Uint8Array): Promise<number>;
  /**
   * Closes both directions. The peer reads everything written before, then
   * end of stream. Pending reads resolve null; pending writes reject.
   * Idempotent.
   *
   * @example Writes after close() fail as on a closed Deno.Conn
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // An echo service listens at 83.12.4.200:7.
   * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * conn.close();
   * await assert.rejects(conn.write(new Uint8Array(1)), Deno.errors.BadResource);
   * assert.equal(await conn.read(new Uint8Array(1)), null);
   * ```
   */
  close(): void;
  /**
   * Half-close: tells the peer no more data follows (its reads end after the
   * bytes already sent). Reading goes on. Idempotent.
   *
   * @example Send a request, then read the whole answer
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // An echo service listens at 83.12.4.200:7.
   * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * await conn.write(new TextEncoder().encode("all of it"));
   * await conn.closeWrite();
   * assert.equal(await new Response(conn.readable).text(), "all of it");
   * ```
   *
   * @returns A promise that resolves once the writes before it are queued.
   */
  closeWrite(): Promise<void>;
  /**
   * This end's virtual address: this client's virtual IP and local port (a
   * free port picked by `connect()`, or the listener's port for an accepted
   * connection).
   *
   * @example The two ends of one connection
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * using listener = net.listen({ port: 7 });
   * using conn = await net.connect({ hostname: net.virtualIp, port: 7 });
   * using accepted = await listener.accept();
   * assert.equal(conn.localAddr.hostname, net.virtualIp);
   * assert.deepEqual(accepted.remoteAddr, conn.localAddr);
   * assert.equal(accepted.localAddr.port, 7);
   * ```
   */
  readonly localAddr: VirtualAddr;
  /**
   * The peer's virtual address: the virtual IP and port connected to, or,
   * for an accepted connection, the peer's IP and local port.
   *
   * @example Who is on the other end
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // An echo service listens at 83.12.4.200:7.
   * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * assert.deepEqual(conn.remoteAddr, { transport: "tcp", hostname: "83.12.4.200", port: 7 });
   * ```
   */
  readonly remoteAddr: VirtualAddr;
  /**
   * The incoming bytes as a stream, ending when the peer ends its side;
   * cancelling it closes the connection.
   *
   * @example Read everything as text
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // An echo service listens at 83.12.4.200:7.
   * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * await conn.write(new TextEncoder().encode("streamed"));
   * await conn.closeWrite();
   * assert.equal(await new Response(conn.readable).text(), "streamed");
   * ```
   */
  readonly readable: ReadableStream<Uint8Array<ArrayBuffer>>;
  /**
   * A stream that writes to the connection; closing it shuts down the write
   * side only (like {@linkcode VirtualConn.closeWrite}), aborting it closes
   * the connection.
   *
   * @example Pipe a stream in, read the echo out
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // An echo service listens at 83.12.4.200:7.
   * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * await ReadableStream.from([new TextEncoder().encode("piped")]).pipeTo(conn.writable);
   * assert.equal(await new Response(conn.readable).text(), "piped");
   * ```
   */
  readonly writable: WritableStream<Uint8Array<ArrayBufferLike>>;
  /**
   * Lets this connection keep the process alive again (the default); see
   * {@linkcode VirtualConn.unref}.
   *
   * @example Hold the process while a transfer runs
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // An echo service listens at 83.12.4.200:7.
   * using conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * conn.unref();
   * conn.ref();
   * assert.equal(await conn.write(new Uint8Array(1)), 1);
   * ```
   */
  ref(): void;
  /**
   * Stops this connection from keeping the process alive. What keeps it
   * alive is the client's TCP link to the relay, shared by all its sockets:
   * the client lets go of the link once it, every listener and every open
   * connection are unref'd.
   *
   * @example A connection that does not hold the process
   * ```ts
   * import { connect } from "@alphanet/net";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const conn = await net.connect({ hostname: "83.12.4.200", port: 7 });
   * net.unref();
   * conn.unref();
   * // Nothing else to do: the process may exit with the connection open.
   * ```
   */
  unref(): void;
  /** Same as {@linkcode VirtualConn.close}, for `using`. */
  [Symbol.dispose](): void;
}
