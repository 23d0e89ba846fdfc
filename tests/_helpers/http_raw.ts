/**
 * A minimal HTTP/1.1 responder written by hand over a `VirtualListener`, for
 * fetch tests that must see the connections themselves (how many were
 * accepted, which were closed) or send what `net.serve` never would.
 */

import type { AlphaNetClient, VirtualConn } from "../../mod.ts";
import { concatBytes, text, utf8 } from "./bytes.ts";

/** What the responder does with one request head. */
export type RawAnswer =
  /** Write these bytes and keep the connection for the next request. */
  | { readonly send: string }
  /** Write these bytes (maybe none) and close the connection. */
  | { readonly sendAndClose: string };

/** Decides the answer to a request head; `index` counts requests on the same connection. */
export type RawResponder = (head: string, index: number) => RawAnswer;

/** A running raw responder. */
export interface RawHttpServer extends Disposable {
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections that ended (the client closed, or the responder did) so far. */
  readonly ended: number;
  /** Resolves once `ended` reaches `count`. */
  endedReach(count: number): Promise<void>;
}

/** Largest request head the responder reads before it gives up on a connection. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Requests served on one connection at most: a bound on the loop. */
const MAX_REQUESTS_PER_CONN = 1000;

/** Where the blank line that ends a request head starts in `bytes`, or -1. */
function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

/** `200 OK` with `body`, kept alive, as a raw answer. */
export function ok(body: string, extraHeaders = ""): RawAnswer {
  return {
    send: `HTTP/1.1 200 OK\r\nContent-Length: ${utf8(body).length}\r\n${extraHeaders}\r\n${body}`,
  };
}

/**
 * Serves `respond` on `port` of `net` until disposed. Request bodies are
 * read only by their Content-Length, and dropped.
 */
export function startRawHttpServer(
  net: AlphaNetClient,
  port: number,
  respond: RawResponder,
): RawHttpServer {
  const listener = net.listen({ port });
  const conns = new Set<VirtualConn>();
  let accepted = 0;
  let ended = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const onEnded = (conn: VirtualConn): void => {
    conn.close();
    conns.delete(conn);
    ended++;
    for (const waiter of waiters.filter((w) => ended >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  const serve = async (conn: VirtualConn): Promise<void> => {
    const buffer = new Uint8Array(MAX_HEAD_BYTES);
    let pending: Uint8Array = new Uint8Array(0);
    try {
      for (let index = 0; index < MAX_REQUESTS_PER_CONN; index++) {
        let end = headEnd(pending);
        while (end < 0) {
          if (pending.length >= MAX_HEAD_BYTES) return;
          const n = await conn.read(buffer);
          if (n === null) return;
          pending = concatBytes([pending, buffer.subarray(0, n)]);
          end = headEnd(pending);
        }
        const head = text(pending.subarray(0, end));
        pending = pending.slice(end + 4);
        // A body with a Content-Length is read and dropped (chunked bodies are not supported).
        let skip = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        while (skip > pending.length) {
          skip -= pending.length;
          const n = await conn.read(buffer);
          if (n === null) return;
          pending = buffer.slice(0, n);
        }
        pending = pending.slice(skip);
        const answer = respond(head, index);
        if ("sendAndClose" in answer) {
          if (answer.sendAndClose !== "") await conn.write(utf8(answer.sendAndClose));
          return;
        }
        await conn.write(utf8(answer.send));
      }
    } catch {
      // The client went away: this connection ends, the responder goes on.
    } finally {
      onEnded(conn);
    }
  };
  void (async () => {
    for await (const conn of listener) {
      accepted++;
      conns.add(conn);
      void serve(conn);
    }
  })();
  return {
    get accepted(): number {
      return accepted;
    },
    get ended(): number {
      return ended;
    },
    endedReach(count: number): Promise<void> {
      if (ended >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    [Symbol.dispose](): void {
      listener.close();
      for (const conn of conns) conn.close();
    },
  };
}
