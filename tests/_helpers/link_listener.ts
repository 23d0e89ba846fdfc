/** A TCP listener on 127.0.0.1 whose accepted links a test drives by hand. */

import { STEP_MS, withTimeout } from "./async.ts";

/**
 * A TCP listener on a free port of 127.0.0.1 that wraps each accepted
 * connection with `wrap` and closes every link it handed out on close(): the
 * common part of the tests' stand-in relays.
 */
export class LinkListener<Link extends { close(): Promise<void> }> implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly #wrap: (conn: Deno.TcpConn) => Link;
  readonly #waitingFor: string;
  readonly #links: Link[] = [];

  /**
   * @param wrap turns an accepted connection into the link the test drives.
   * @param waitingFor what accept() waits for by default, for its time-out message.
   */
  constructor(wrap: (conn: Deno.TcpConn) => Link, waitingFor = "a client to connect") {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
    this.#wrap = wrap;
    this.#waitingFor = waitingFor;
  }

  /** The port clients connect to. */
  get port(): number {
    return this.listener.addr.port;
  }

  /** Accepts the next link. */
  async accept(what: string = this.#waitingFor): Promise<Link> {
    const accepting = this.listener.accept();
    accepting.catch(() => {}); // Rejects at close() when the time-out won the race.
    const link = this.#wrap(await withTimeout(accepting, STEP_MS, what));
    this.#links.push(link);
    return link;
  }

  /** Stops listening and closes every link. Idempotent. */
  async close(): Promise<void> {
    try {
      this.listener.close();
    } catch {
      // Already closed.
    }
    for (const link of this.#links) await link.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
