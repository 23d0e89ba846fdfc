/**
 * A listener on a virtual port: queues accepted connections for the
 * application, up to a backlog.
 *
 * @module
 */

import { Closed } from "../errors.ts";
import type { VirtualAddr } from "./addr.ts";
import type { VirtualConn } from "./virtual_conn.ts";

/**
 * Decides whether to accept a connection request from `remote`; without
 * one, every request to a listening port is accepted.
 */
export type AcceptFilter = (remote: VirtualAddr) => boolean | Promise<boolean>;

/**
 * Listens on a virtual port, shaped like `Deno.Listener`: `accept()`,
 * `for await`, `close()`.
 *
 * @example Serve every connection
 * ```ts ignore
 * import { connect } from "@alphanet/net";
 * await using net = await connect();
 * using listener = net.listen({ port: 80 });
 * for await (const conn of listener) {
 *   conn.close();
 * }
 * ```
 */
export class VirtualListener implements AsyncIterable<VirtualConn>, Disposable {
  // Static after construction.
  readonly #addr: VirtualAddr;
  readonly #backlog: number;
  readonly #onClose: (listener: VirtualListener) => void;
  /** The owner's accept filter, if any. */
  readonly filter: AcceptFilter | undefined;

  // Owned by the client's read loop and accept().
  #queue: VirtualConn[] = [];
  #waiters: PromiseWithResolvers<VirtualConn>[] = [];
  #closed = false;
  #closeError: Error = new Closed("Cannot accept: the listener is closed");

  /** Created by `AlphaNetClient.listen`. */
  constructor(
    addr: VirtualAddr,
    backlog: number,
    filter: AcceptFilter | undefined,
    onClose: (listener: VirtualListener) => void,
  ) {
    this.#addr = addr;
    this.#backlog = backlog;
    this.filter = filter;
    this.#onClose = onClose;
  }

  /** The virtual address this listener is bound to. */
  get addr(): VirtualAddr {
    return this.#addr;
  }

  /** Whether another accepted connection fits in the backlog (client only). */
  get hasRoom(): boolean {
    return !this.#closed && this.#queue.length < this.#backlog;
  }

  /** Waits for the next connection; rejects with Closed once the listener is closed. */
  accept(): Promise<VirtualConn> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(this.#closeError);
    const waiter = Promise.withResolvers<VirtualConn>();
    this.#waiters.push(waiter);
    return waiter.promise;
  }

  /** Yields connections until the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<VirtualConn> {
    while (true) {
      try {
        yield await this.accept();
      } catch (error) {
        if (this.#closed) return;
        throw error;
      }
    }
  }

  /** Stops listening; queued, unaccepted connections are closed. Idempotent. */
  close(): void {
    this.shutdown(this.#closeError);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Client only: hands over a newly accepted connection. */
  enqueue(conn: VirtualConn): void {
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
    this.#onClose(this);
    for (const conn of this.#queue.splice(0)) conn.close();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }
}
