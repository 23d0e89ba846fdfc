/**
 * A listener on a virtual port: queues accepted connections for the
 * application, up to a backlog.
 *
 * @module
 */

import { Closed } from "../errors.ts";
import type { VirtualAddr } from "./addr.ts";
import type { VirtualConn, VirtualConnImpl } from "./virtual_conn.ts";

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

/** What a listener tells the client's socket table. */
export interface ListenerHooks {
  /** The listener closed: free its port. */
  closed(listener: VirtualListenerImpl): void;
  /** ref() or unref() changed whether the listener keeps the process alive. */
  refChanged(listener: VirtualListenerImpl): void;
}

/** The implementation of {@linkcode VirtualListener}; created by the client's socket table. */
export class VirtualListenerImpl implements VirtualListener {
  // Static after construction.
  readonly #addr: VirtualAddr;
  readonly #backlog: number;
  readonly #hooks: ListenerHooks;
  /** The owner's accept filter, if any. */
  readonly filter: AcceptFilter | undefined;

  // Owned by the client's read loop and accept().
  #queue: VirtualConnImpl[] = [];
  #waiters: PromiseWithResolvers<VirtualConn>[] = [];
  #closed = false;
  #closeError: Error = new Closed("Cannot accept: the listener is closed");
  #refd = true;

  /** Created by `AlphaNetClient.listen`. */
  constructor(
    addr: VirtualAddr,
    backlog: number,
    filter: AcceptFilter | undefined,
    hooks: ListenerHooks,
  ) {
    this.#addr = addr;
    this.#backlog = backlog;
    this.filter = filter;
    this.#hooks = hooks;
  }

  get addr(): VirtualAddr {
    return this.#addr;
  }

  /** Whether another accepted connection fits in the backlog (client only). */
  get hasRoom(): boolean {
    return !this.#closed && this.#queue.length < this.#backlog;
  }

  /** Whether the listener keeps the process alive (see `unref`). */
  get refd(): boolean {
    return this.#refd;
  }

  accept(): Promise<VirtualConn> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(this.#closeError);
    const waiter = Promise.withResolvers<VirtualConn>();
    this.#waiters.push(waiter);
    return waiter.promise;
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<VirtualConn> {
    while (true) {
      try {
        yield await this.accept();
      } catch (error) {
        if (this.#closed) return;
        throw error;
      }
    }
  }

  close(): void {
    this.shutdown(this.#closeError);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  ref(): void {
    if (this.#refd) return;
    this.#refd = true;
    this.#hooks.refChanged(this);
  }

  unref(): void {
    if (!this.#refd) return;
    this.#refd = false;
    this.#hooks.refChanged(this);
  }

  /** Client only: hands over a newly accepted connection. */
  enqueue(conn: VirtualConnImpl): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(conn);
    else this.#queue.push(conn);
  }

  /** Client only: the link was lost, so the connections waiting in the backlog are dead: drop them. */
  dropQueued(): void {
    for (const conn of this.#queue.splice(0)) conn.close();
  }

  /** Client only: closes with a specific error for pending accepts. */
  shutdown(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    this.#hooks.closed(this);
    for (const conn of this.#queue.splice(0)) conn.close();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }
}
