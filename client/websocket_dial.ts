/**
 * The WebSocket carrier of a link: the relay's `ws://HOST:PORT/` (or
 * `wss://`) endpoint opened through the platform's own `WebSocket`, in Deno
 * and in browsers, and made into the byte stream a link reads and writes
 * (a {@linkcode Carrier}). In each direction the payloads of the binary
 * messages, put end to end, are the frame stream of docs/PROTOCOL.md §2:
 * message boundaries mean nothing, so reads are served from a queue of
 * messages and each write (one batch of frames) is one message.
 *
 * Nothing here reads `Deno` but the optional `Deno.createHttpClient` (for
 * `caCerts`, checked first) and, through `ref_timer.ts`, Deno's timer refs.
 *
 * @module
 */

import { Closed, ConnectionRefused, ConnectionReset, ProtocolError, TimedOut } from "../errors.ts";
import { WEBSOCKET_SUBPROTOCOL } from "../protocol/constants.ts";
import { Reason } from "../protocol/reason.ts";
import type { Carrier } from "./carrier.ts";
import type { WebSocketConfig } from "./options.ts";
import { refTimer } from "./ref_timer.ts";

/** `readyState` values (fixed by the WebSocket standard), without reading the global class. */
const CONNECTING = 0;
const OPEN = 1;

/**
 * Bytes a WebSocket may hold unsent (its `bufferedAmount`) before a write
 * waits: the frame writer then keeps batching behind it, as it does behind
 * a TCP socket whose kernel buffer is full. 1 MiB, several of the writer's
 * batches: with 256 KiB a bulk upload kept crossing the mark and waited on
 * the poll below (at least 1 ms a time), which held a WebSocket sender to
 * about 0.12 GB/s on loopback against 0.6 GB/s now (bench row 10). It is
 * also what one link may hold in the platform's send buffer.
 */
export const WEBSOCKET_HIGH_WATER_BYTES = 1024 * 1024;

/**
 * How often a write waiting for `bufferedAmount` to fall looks again: from
 * 1 ms, doubling up to 16 ms. There is no event for it, and the poll runs
 * only while the WebSocket holds more than the high-water mark.
 */
const POLL_FIRST_MS = 1;
const POLL_MAX_MS = 16;

/**
 * Longest a closing carrier waits for the WebSocket's close event (the
 * relay's answer to its Close), so that a link's close leaves nothing open
 * without hanging on a relay that does not answer.
 */
const CLOSE_GRACE_MS = 1000;

/**
 * Received bytes the carrier holds unread before it gives up on the relay. The
 * WebSocket API cannot stop reading, so this is the bound TCP's window gives for
 * free. The read loop takes each message as it arrives, so a relay within the
 * credit it was granted never comes near it; one that floods the client does.
 */
export const MAX_QUEUED_RECEIVE_BYTES = 16 * 1024 * 1024;

/**
 * The WebSocket closed under an open link: its close code and reason. The
 * link turns it into the error it ends with (`link.ts`): a RelayError for a
 * code 4000 + reason, else a ConnectionReset whose cause this is.
 */
export class WebSocketClosed extends Error {
  /** The close code (1006, or Deno's 0, when the connection just dropped). */
  readonly code: number;
  /** The close reason text, possibly empty. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param code The close event's code.
   * @param reason The close event's reason.
   */
  constructor(code: number, reason: string) {
    super(`the WebSocket closed with code ${code}${reason === "" ? "" : ` (${reason})`}`);
    this.name = "WebSocketClosed";
    this.code = code;
    this.reason = reason;
  }
}

/** The platform's `WebSocket` with Deno's extension of its second argument. */
type WebSocketClass = new (
  url: string,
  protocolsOrOptions?: string | string[] | { protocols?: string[]; client?: Deno.HttpClient },
) => WebSocket;

/**
 * Opens a WebSocket to `config.url` with the subprotocol `alphanet` and
 * binary messages as ArrayBuffers, trusting `config.caCerts` (Deno) besides
 * the default roots. Rejects with ConnectionRefused when no WebSocket opens
 * (the relay is unreachable, or the URL is not its WebSocket endpoint; the
 * platform's words, where it gives any, are in the message), ProtocolError
 * when the relay did not pick the subprotocol, TimedOut when the opening
 * handshake takes longer than `timeoutMs`, or Closed when `signal` aborts.
 * A rejected dial leaves nothing open.
 *
 * @param config The endpoint and the extra authorities.
 * @param timeoutMs How long the opening handshake may take.
 * @param signal Aborts the dial.
 * @returns The carrier, ready for the first frame.
 */
export async function dialWebSocket(
  config: WebSocketConfig,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<WebSocketCarrier> {
  if (signal?.aborted) throw new Closed("Cannot join relay: the client is closed");
  const Socket = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (typeof Socket !== "function") {
    throw new TypeError("Cannot join relay: this platform has no WebSocket");
  }
  // Deno only (resolveClientConfig refuses caCerts elsewhere): its WebSocket takes an HttpClient.
  const client = config.caCerts === undefined
    ? undefined
    : Deno.createHttpClient({ caCerts: [...config.caCerts] });
  let ws: WebSocket;
  try {
    ws = client === undefined
      ? new Socket(config.url, [WEBSOCKET_SUBPROTOCOL])
      : new Socket(config.url, { protocols: [WEBSOCKET_SUBPROTOCOL], client });
  } catch (error) {
    client?.close();
    throw error;
  }
  const carrier = new WebSocketCarrier(ws, config.url, () => client?.close());
  await carrier.opened(timeoutMs, signal);
  return carrier;
}

/**
 * A WebSocket as a link's byte stream: reads are served from the binary
 * messages received (a read copies at most the buffer's length and keeps
 * the rest for the next), each write sends one binary message, and close
 * sends Close 1000. The relay never sends more data than the client's
 * windows allow (docs/PROTOCOL.md §9), which bounds what waits in the queue.
 */
export class WebSocketCarrier implements Carrier {
  readonly #ws: WebSocket;
  readonly #url: string;
  /** Releases what the WebSocket was opened with (Deno's HttpClient); runs once, at close. */
  readonly #release: () => void;
  /** Received bytes not yet read, oldest first; `#offset` bytes of the first are read. */
  readonly #queue: Uint8Array[] = [];
  #offset = 0;
  /** Bytes in `#queue` not yet read. */
  #queuedBytes = 0;
  /** Why reads end once the queue is empty: the close, or a text message. Null while open. */
  #ended: Error | null = null;
  /** Set by {@linkcode close}: reads end (null) once the close event came or the grace passed. */
  #closing: Promise<void> | null = null;
  /** The reader waiting for a message or the end, if any. */
  #wakeReader: (() => void) | null = null;
  /** The write waiting for `bufferedAmount` to fall, if any. */
  #waitingWrite: { timer: ReturnType<typeof setTimeout>; fail: (error: Error) => void } | null =
    null;
  readonly #closeEvent = Promise.withResolvers<void>();
  /** The platform's words for a failed opening handshake (Deno gives some, browsers none). */
  #openError = "";
  /** Whether the carrier's own timers keep the process alive (the WebSocket always does in Deno). */
  #refd = true;

  /** Takes `ws` (just created) over; `release` runs once it has closed. */
  constructor(ws: WebSocket, url: string, release: () => void) {
    this.#ws = ws;
    this.#url = url;
    this.#release = release;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (event) => this.#onMessage(event));
    ws.addEventListener("error", (event) => {
      // After the open the close event follows with the code; before it, this is all there is.
      const message = (event as { message?: unknown }).message;
      if (typeof message === "string") this.#openError = message;
    });
    ws.addEventListener("close", (event) => this.#onClose(event.code, event.reason));
  }

  /**
   * Resolves once the WebSocket is open with the subprotocol `alphanet`;
   * rejects as {@linkcode dialWebSocket} says, after the WebSocket closed (or
   * {@linkcode CLOSE_GRACE_MS} passed).
   */
  opened(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let stopped: Error | null = null;
    const ws = this.#ws;
    const stop = (error: Error): void => {
      if (stopped !== null) return;
      stopped = error;
      cleanup();
      this.close();
      void this.#closing!.then(() => reject(error));
    };
    const onOpen = (): void => {
      if (ws.protocol === WEBSOCKET_SUBPROTOCOL) {
        cleanup();
        return resolve();
      }
      const why = new Error(
        `${this.#url} did not agree on the WebSocket subprotocol "${WEBSOCKET_SUBPROTOCOL}" ` +
          `(it chose ${JSON.stringify(ws.protocol)}): it is not an AlphaNET relay's WebSocket ` +
          "endpoint",
      );
      stop(
        new ProtocolError(`Cannot join relay: ${why.message}`, Reason.UnsupportedVersion, {
          cause: why,
        }),
      );
    };
    const onClose = (): void => {
      const detail = this.#openError === "" ? "" : ` (${this.#openError})`;
      const why = new Error(
        `no WebSocket connection to ${this.#url}${detail}: the relay is unreachable, or this ` +
          "is not its WebSocket endpoint (server.ts --websocket-port)",
      );
      stopped ??= new ConnectionRefused(`Cannot join relay: ${why.message}`, { cause: why });
      cleanup();
      reject(stopped);
    };
    const timer = setTimeout(
      () =>
        stop(
          new TimedOut(
            `Cannot join relay: no WebSocket handshake with ${this.#url} within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    const abort = (): void => stop(new Closed("Cannot join relay: the client is closed"));
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
      ws.removeEventListener("open", onOpen);
      ws.removeEventListener("close", onClose);
    };
    ws.addEventListener("open", onOpen);
    ws.addEventListener("close", onClose);
    signal?.addEventListener("abort", abort);
    if (signal?.aborted) abort();
    return promise;
  }

  /**
   * Copies up to `buffer.length` received bytes into `buffer`, waiting for a
   * message if none is queued. Resolves null once {@linkcode close} ran
   * (after the close event, or the grace); rejects with
   * {@linkcode WebSocketClosed} when the WebSocket closed by itself, or
   * ProtocolError after a text message, once every byte before it was read.
   */
  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#queue.length === 0 || this.#closing !== null) {
      if (this.#closing !== null) {
        await this.#closing;
        return null;
      }
      if (this.#ended !== null) throw this.#ended;
      await new Promise<void>((wake) => this.#wakeReader = wake);
    }
    let count = 0;
    while (count < buffer.length && this.#queue.length > 0) {
      const head = this.#queue[0];
      const take = Math.min(head.length - this.#offset, buffer.length - count);
      buffer.set(head.subarray(this.#offset, this.#offset + take), count);
      count += take;
      this.#queuedBytes -= take;
      this.#offset += take;
      if (this.#offset === head.length) {
        this.#queue.shift();
        this.#offset = 0;
      }
    }
    return count;
  }

  /**
   * Sends `bytes` as one binary message and resolves with their length once
   * the WebSocket holds less than {@linkcode WEBSOCKET_HIGH_WATER_BYTES}
   * unsent. `send` copies the bytes (Deno's and browsers' WebSockets do: a
   * client must mask them into a frame of its own), so the caller may reuse
   * its buffer at once. Rejects with ConnectionReset once the WebSocket is
   * not open.
   */
  async write(bytes: Uint8Array): Promise<number> {
    const ws = this.#ws;
    if (ws.readyState !== OPEN || this.#closing !== null) throw this.#writeClosed();
    ws.send(bytes as Uint8Array<ArrayBuffer>);
    if (ws.bufferedAmount >= WEBSOCKET_HIGH_WATER_BYTES) await this.#drain();
    return bytes.length;
  }

  /**
   * Closes the WebSocket with 1000 (normal closure). Reads then end: a
   * pending one resolves null once the close event came, or after
   * {@linkcode CLOSE_GRACE_MS}. A waiting write rejects. Idempotent.
   */
  close(): void {
    if (this.#closing !== null) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_GRACE_MS);
      if (!this.#refd) refTimer(timer, false);
    });
    this.#closing = Promise.race([this.#closeEvent.promise, grace]).finally(() =>
      clearTimeout(timer)
    );
    this.#failWrite(this.#writeClosed());
    this.#wake();
    const ws = this.#ws;
    if (ws.readyState === CONNECTING || ws.readyState === OPEN) ws.close(1000);
  }

  /** Lets the carrier's timers keep the process alive (Deno's WebSocket always does). */
  ref(): void {
    this.#setRef(true);
  }

  /** Lets the carrier's timers not keep the process alive; Deno's WebSocket still does. */
  unref(): void {
    this.#setRef(false);
  }

  #setRef(keep: boolean): void {
    this.#refd = keep;
    if (this.#waitingWrite !== null) refTimer(this.#waitingWrite.timer, keep);
  }

  #onMessage(event: MessageEvent): void {
    if (this.#ended !== null || this.#closing !== null) return;
    const data: unknown = event.data;
    if (data instanceof ArrayBuffer) {
      // An empty message is allowed and carries nothing.
      if (data.byteLength === 0) return;
      this.#queuedBytes += data.byteLength;
      if (this.#queuedBytes > MAX_QUEUED_RECEIVE_BYTES) {
        // What was queued before is still read, then the link ends with this error.
        this.#queuedBytes -= data.byteLength;
        this.#ended = new ProtocolError(
          `Cannot accept message: the relay sent more than ${MAX_QUEUED_RECEIVE_BYTES} bytes ` +
            "the client has not read yet",
          Reason.FlowControl,
        );
        this.#ws.close(1000);
      } else {
        this.#queue.push(new Uint8Array(data));
      }
    } else {
      // Only binary messages carry AlphaNET; the relay never sends text.
      this.#ended = new ProtocolError(
        "Cannot accept message: the relay sent a text WebSocket message; AlphaNET carries " +
          "binary messages only",
        Reason.Malformed,
      );
    }
    this.#wake();
  }

  #onClose(code: number, reason: string): void {
    this.#ended ??= new WebSocketClosed(code, reason);
    this.#failWrite(this.#writeClosed());
    this.#wake();
    this.#closeEvent.resolve();
    this.#release();
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = null;
    wake?.();
  }

  /** Waits, polling, until `bufferedAmount` is below the high-water mark; rejects if it closes. */
  #drain(): Promise<void> {
    return new Promise((resolve, reject) => {
      let delay = POLL_FIRST_MS;
      const poll = (): void => {
        if (this.#ws.bufferedAmount < WEBSOCKET_HIGH_WATER_BYTES) {
          this.#waitingWrite = null;
          return resolve();
        }
        delay = Math.min(delay * 2, POLL_MAX_MS);
        arm();
      };
      const arm = (): void => {
        const timer = setTimeout(poll, delay);
        if (!this.#refd) refTimer(timer, false);
        this.#waitingWrite = { timer, fail: reject };
      };
      arm();
    });
  }

  #failWrite(error: Error): void {
    const waiting = this.#waitingWrite;
    if (waiting === null) return;
    this.#waitingWrite = null;
    clearTimeout(waiting.timer);
    waiting.fail(error);
  }

  #writeClosed(): ConnectionReset {
    return new ConnectionReset("Cannot write to the relay: the WebSocket is closed", {
      cause: this.#ended ?? undefined,
    });
  }
}
