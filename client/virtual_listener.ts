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
 * async function echoOnce(listener: Deno.Listener): Promise<void> {
 *   for await (const conn of listener) {
 *     await conn.readable.pipeTo(conn.writable);
 *     return;
 *   }
 * }
 *
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * using listener = net.listen({ port: 7 });
 * const serving = echoOnce(listener);
 * using conn = await net.connect({ hostname: net.virtualIp, port: 7 });
 * await conn.write(new TextEncoder().encode("hi"));
 * await conn.closeWrite();
 * assert.equal(await new Response(conn.readable).text(), "hi");
 * await serving;
 * ```
 */
export interface VirtualListener extends AsyncIterable<VirtualConn>, Disposable {
  /**
   * Waits for the next connection, like `Deno.Listener.accept`.
   *
   * @example Accept one connection
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * using listener = net.listen({ port: 7 });
   * using outgoing = await net.connect({ hostname: net.virtualIp, port: 7 });
   * using conn = await listener.accept();
   * assert.deepEqual(conn.remoteAddr, outgoing.localAddr);
   * ```
   *
   * @returns The next accepted connection; rejects with `Closed` (a
   * `Deno.errors.BadResource`) once the listener is closed.
   */
  accept(): Promise<VirtualConn>;
  /**
   * Stops listening and frees the port; queued, unaccepted connections are
   * closed, pending `accept()` calls reject with `Closed`. Idempotent.
   *
   * @example Close, then accept fails as on a closed Deno.Listener
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const listener = net.listen({ port: 7 });
   * listener.close();
   * await assert.rejects(listener.accept(), Deno.errors.BadResource);
   * using again = net.listen({ port: 7 });
   * assert.equal(again.addr.port, 7);
   * ```
   */
  close(): void;
  /**
   * The virtual address this listener is bound to: this client's virtual IP
   * and the port, the one picked if `listen()` was given port 0.
   *
   * @example Find the port picked for you
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * using listener = net.listen({ port: 0 });
   * assert.equal(listener.addr.hostname, net.virtualIp);
   * assert.ok(listener.addr.port > 0);
   * ```
   */
  readonly addr: VirtualAddr;
  /**
   * Yields accepted connections until the listener is closed, then ends
   * (a `for await` loop over it finishes normally on `close()`).
   *
   * @example Serve until closed
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const listener = net.listen({ port: 7 });
   * const served = (async () => {
   *   let count = 0;
   *   for await (const conn of listener) {
   *     conn.close();
   *     count++;
   *   }
   *   return count;
   * })();
   * using _conn = await net.connect({ hostname: net.virtualIp, port: 7 });
   * listener.close();
   * assert.equal(await served, 1);
   * ```
   *
   * @returns An iterator of accepted connections.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<VirtualConn>;
  /**
   * Lets this listener keep the process alive again (the default); see
   * {@linkcode VirtualListener.unref}.
   *
   * @example Keep serving in the foreground
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * using listener = net.listen({ port: 80 });
   * listener.unref();
   * listener.ref();
   * assert.equal(listener.addr.port, 80);
   * ```
   */
  ref(): void;
  /**
   * Stops this listener from keeping the process alive. What keeps it alive
   * is the client's TCP link to the relay, shared by all its sockets: the
   * client lets go of the link once it, every listener and every open
   * connection are unref'd.
   *
   * @example A side service that does not hold the process
   * ```ts
   * import { connect } from "@alphanet/net";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const status = net.listen({ port: 8080 });
   * net.unref();
   * status.unref();
   * // The process exits when its main work is done, listener and all.
   * ```
   */
  unref(): void;
  /** Same as {@linkcode VirtualListener.close}, for `using`. */
  [Symbol.dispose](): void;
}
