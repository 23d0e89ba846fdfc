/**
 * HTTP bodies between node's streams and web streams, with backpressure
 * both ways: an incoming message as a `ReadableStream` (paused while the
 * reader does not read), and a `ReadableStream` written to an outgoing
 * message (waiting for `drain`).
 *
 * @module
 */

import type { IncomingMessage, OutgoingMessage } from "node:http";
import { ConnectionReset } from "../errors.ts";

/** How many bytes an incoming body's stream queues before it pauses the message. */
const BODY_QUEUE_BYTES = 64 * 1024;

/** Statuses whose responses never have a body. */
export const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

/** A node `Buffer` (or any view) as a plain `Uint8Array` over the same bytes. */
function bytesOf(chunk: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(chunk.buffer as ArrayBuffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * The body of `message` as a byte stream. The message is paused while the
 * stream's queue is full, so an unread body holds back the sender through
 * the virtual connection's credit. If the message ends before its body is
 * complete (the peer went away), the stream errors with `ConnectionReset`
 * naming `what`.
 *
 * @param message The incoming request or response.
 * @param what What the body is, for the error: "the request body", "the response body".
 * @param onCancel What to do when the reader cancels: discard the rest or drop the connection.
 * @param signal Once aborted, the stream errors with its reason instead.
 * @returns The stream.
 */
export function incomingBody(
  message: IncomingMessage,
  what: string,
  onCancel: (message: IncomingMessage) => void,
  signal?: AbortSignal,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  let controller!: ReadableStreamDefaultController<Uint8Array<ArrayBuffer>>;
  let settled = false;
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    signal?.removeEventListener("abort", fail);
    return true;
  };
  const fail = (cause?: unknown): void => {
    if (!settle()) return;
    controller.error(
      signal?.aborted ? signal.reason : new ConnectionReset(
        `Cannot read ${what}: the connection was lost before its end`,
        { cause },
      ),
    );
  };
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(started): void {
      controller = started;
      message.on("data", (chunk: Uint8Array) => {
        if (settled) return;
        controller.enqueue(bytesOf(chunk));
        if ((controller.desiredSize ?? 0) <= 0) message.pause();
      });
      message.once("end", () => {
        if (settle()) controller.close();
      });
      message.on("error", fail);
      message.once("close", () => {
        if (!message.complete) fail();
      });
      // An abort errors the body at once, even with chunks still queued, as fetch's does.
      signal?.addEventListener("abort", fail, { once: true });
      message.pause();
    },
    pull(): void {
      message.resume();
    },
    cancel(): void {
      settle();
      message.removeAllListeners("data");
      onCancel(message);
    },
  }, { highWaterMark: BODY_QUEUE_BYTES, size: (chunk) => chunk.byteLength });
}

/**
 * Resolves once `out` can take more (`drain`) or is gone (`close`).
 *
 * @param out The outgoing message.
 * @returns A promise that never rejects.
 */
function drained(out: OutgoingMessage): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      out.off("drain", done);
      out.off("close", done);
      resolve();
    };
    out.once("drain", done);
    out.once("close", done);
  });
}

/**
 * Resolves with `read`'s result if it settles before the next macrotask,
 * else undefined: tells a body that is all there (a `Response` made from a
 * string or bytes: one chunk, then the end, both within microtasks) from a
 * stream still being produced.
 */
function readSoon<T>(read: Promise<T>): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), 0);
  });
  return Promise.race([read, later]).finally(() => clearTimeout(timer));
}

/**
 * Writes `body` to `out` chunk by chunk, waiting for `drain` whenever `out`
 * is full, then ends it. A body that turns out to be one chunk is sent with
 * a `Content-Length` instead of chunked (when `measure` allows it: nothing
 * set the length or the encoding). If `out` closes first (the peer went
 * away), the body is cancelled; if the body errors, `out` is destroyed, so
 * the peer sees a truncated message, never a complete-looking one.
 *
 * @param body The body to send.
 * @param out The response or request to send it on.
 * @param measure Whether a body of one chunk may be sent with a `Content-Length`.
 * @returns A promise that never rejects.
 */
export async function writeBody(
  body: ReadableStream<Uint8Array>,
  out: OutgoingMessage,
  measure: boolean,
): Promise<void> {
  const reader = body.getReader();
  let ended = false;
  const gone = (): void => {
    if (!out.writableFinished) cancel();
  };
  const cancel = (): void => {
    if (ended) return;
    ended = true;
    reader.cancel(new ConnectionReset("Cannot send the body: the connection was lost"))
      .catch(() => {});
  };
  out.once("close", gone);
  try {
    const first = await reader.read();
    if (first.done) {
      ended = true;
      out.end();
      return;
    }
    let next = reader.read();
    if (measure) {
      const second = await readSoon(next);
      if (second?.done) {
        ended = true;
        out.end(first.value);
        return;
      }
    }
    if (!out.write(first.value)) await drained(out);
    while (!out.destroyed) {
      const { value, done } = await next;
      if (done) {
        ended = true;
        out.end();
        return;
      }
      if (out.destroyed) break;
      if (!out.write(value)) await drained(out);
      next = reader.read();
    }
  } catch (error) {
    ended = true;
    out.destroy(error instanceof Error ? error : new Error(String(error)));
  } finally {
    out.off("close", gone);
    // Stopped early (the peer went away): tell the body's producer.
    cancel();
  }
}
