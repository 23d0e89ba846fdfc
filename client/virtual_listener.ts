/**
 * The public shape of a listener on a virtual port, as `listen()` returns
 * it, and the filter that decides which connections it accepts.
 *
 * @module
 */

import type { VirtualAddr } from "./addr.ts";
import type { VirtualConn } from "./virtual_conn.ts";

/**
 * Decides whether to accept a connection request from `remote`; without
 * one, every request to a listening port is accepted. A filter that throws
 * or rejects denies the request.
 *
 * @example Accept only one peer
 * ```ts
 * import type { AcceptFilter } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const onlyFriend: AcceptFilter = (remote) => remote.hostname === "83.12.4.200";
 * assert.equal(onlyFriend({ transport: "tcp", hostname: "83.12.4.200", port: 50000 }), true);
 * assert.equal(onlyFriend({ transport: "tcp", hostname: "45.33.2.10", port: 50000 }), false);
 * ```
 *
 * @param remote The virtual address asking to connect.
 * @returns Whether to accept, or a promise of it.
 */
export type AcceptFilter = (remote: VirtualAddr) => boolean | Promise<boolean>;

/**
 * Listens on a virtual port, in `Deno.Listener`'s shape: a function that
 * takes a `Deno.Listener` takes a `VirtualListener` as it is.
 *
 * A listener stays bound while the client reconnects, and accepts again once
 * the link is back. Like a virtual connection, it holds no operating-system
 * resource of its own (see {@linkcode VirtualListener.unref}).
 *
 * @example Serve every connection, as with any Deno.Listener
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * async function serveOne(listener: Deno.Listener): Promise<void> {
 *   for await (const conn of listener) {
 *     await conn.readable.pipeTo(conn.writable);
 *     return;
 *   }
 * }
 *
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * using listener = net.listen({ port: 7 });
 * assert.equal(listener.addr.hostname, net.virtualIp);
 * await serveOne(listener);
 * ```
 */
export interface VirtualListener extends AsyncIterable<VirtualConn>, Disposable {
  /**
   * Waits for the next connection.
   *
   * @returns The next accepted connection; rejects with `Closed` once the listener is closed.
   */
  accept(): Promise<VirtualConn>;
  /**
   * Stops listening; queued, unaccepted connections are closed, pending
   * `accept()` calls reject. Idempotent.
   */
  close(): void;
  /** The virtual address this listener is bound to. */
  readonly addr: VirtualAddr;
  /**
   * Yields connections until the listener is closed.
   *
   * @returns An iterator of accepted connections.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<VirtualConn>;
  /**
   * Lets this listener keep the process alive again (the default); see
   * {@linkcode VirtualListener.unref}.
   */
  ref(): void;
  /**
   * Stops this listener from keeping the process alive. What keeps it alive
   * is the client's TCP link to the relay, shared by all its sockets: the
   * client lets go of the link once it, every listener and every open
   * connection are unref'd.
   */
  unref(): void;
  /** Same as {@linkcode VirtualListener.close}, for `using`. */
  [Symbol.dispose](): void;
}
