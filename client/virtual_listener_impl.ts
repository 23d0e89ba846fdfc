/**
 * A listener on a virtual port: queues accepted connections for the
 * application, up to a backlog.
 *
 * @module
 */

import { Closed } from "../errors.ts";
import type { VirtualAddr } from "./addr.ts";
import type { VirtualConn } from "./virtual_conn.ts";
import type { VirtualConnImpl } from "./virtual_conn_impl.ts";
import type { AcceptFilter, VirtualListener } from "./virtual_listener.ts";

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
  readonly #backlog: number;
  readonly #hooks: ListenerHooks;
  /** The owner's accept filter, if any. */
  readonly filter: AcceptFilter | undefined;

  /** Changed by the socket table when the client moved to a relay that gave it another address. */
  #addr: VirtualAddr;

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

  /** The client's virtual IP changed (it moved to a relay of another registry). */
  rehome(hostname: string): void {
    this.#addr = { ...this.#addr, hostname };
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
