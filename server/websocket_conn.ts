/**
 * A client's WebSocket link as a {@linkcode RelayCarrier}: the relay's own
 * RFC 6455 server over an accepted TCP (or TLS) connection. The opening
 * handshake runs inside the first read, as TLS's does, so it counts against
 * the handshake time-out and holds up nobody. After it, reads hand the
 * session the AlphaNET stream the client's binary messages carry (a frame
 * may span messages, a message may hold several), and each write of the
 * session's frame writer leaves as one binary message. Nothing is read
 * unless the session reads, so backpressure, pacing and every budget work
 * exactly as on TCP.
 *
 * @module
 */

import { ProtocolError } from "../protocol/errors.ts";
import { Reason } from "../protocol/reason.ts";
import {
  acquireLargeBuffer,
  acquireSmallBuffer,
  LARGE_BUFFER_BYTES,
  releaseBuffer,
  SMALL_BUFFER_BYTES,
} from "../transport/buffer_pool.ts";
import { looksLikeTlsRecord } from "../transport/tls_sniff.ts";
import { closeQuietly, type RelayCarrier } from "./carrier.ts";
import { writeAll } from "../transport/frame_writer.ts";
import type { RelayConn } from "./listen.ts";
import type { Logger } from "./log.ts";
import {
  CloseCode,
  encodeCloseFrame,
  encodeFrame,
  MAX_FRAME_HEADER_BYTES,
  Opcode,
  WebSocketFrameReader,
  type WebSocketViolation,
  writeFrameHeader,
} from "./websocket_frame.ts";
import {
  acceptValue,
  checkUpgradeRequest,
  findHeadEnd,
  isRefusal,
  MAX_UPGRADE_HEAD_BYTES,
  NEEDS_SUBPROTOCOL_MESSAGE,
  refusalResponse,
  switchingProtocols,
  type UpgradeRefusal,
} from "./websocket_upgrade.ts";

/** The head buffer's first size: a browser's upgrade request is about 500 bytes. */
const INITIAL_HEAD_BYTES = 1024;

/**
 * Largest payload of one outgoing message (128 KiB): a frame writer's batch
 * of up to 256 KiB leaves in at most two messages, and the relay's messages
 * stay within what PROTOCOL.md §2.4 promises.
 */
const MAX_OUTGOING_PAYLOAD_BYTES = LARGE_BUFFER_BYTES;

/**
 * Reads into a buffer smaller than this (the read loop's 512-byte idle
 * buffer) may go through the stage; a slab's reads, however much room is
 * left, go straight into it.
 */
const STAGED_READ_BELOW_BYTES = 16 * 1024;

/** How long the last word (a Close frame, or an HTTP refusal) may take to leave at close. */
const CLOSE_WRITE_MS = 1000;

/**
 * Where a link stands: reading the upgrade request; `open` once the 101 is
 * out and frames flow; `unusable` after a 101 without the subprotocol (its
 * close, 1002, is all that is left); `refused` after an HTTP refusal or a
 * quiet end; `closed`.
 */
type Phase = "head" | "open" | "unusable" | "refused" | "closed";

/**
 * Payloads up to this size are copied behind their header into one pooled
 * buffer and leave in one write (one TCP segment, one TLS record). Larger
 * ones, the frame writer's full batches, leave as two writes, the header and
 * then the batch itself: no copy, and a write stuck behind a client that
 * does not read holds no second copy of the batch.
 */
const COPY_PAYLOAD_BYTES = 16 * 1024;

/**
 * Bytes read off the socket that were not stream bytes (WebSocket headers, Pings, empty
 * messages) after which read() hands the read loop an empty read: the session then charges
 * them to the client's byte rate (`takeOverheadBytes`) and pauses the reads if it is over it.
 * Otherwise a flood of Pings would be parsed and answered at line speed, never paced.
 */
const OVERHEAD_YIELD_BYTES = 16 * 1024;

/**
 * The HTTP answer to a session that closes before its upgrade completed, or
 * null for none (the client left, or there is nothing to say).
 */
function refusalForClose(reason: Reason, message: string): UpgradeRefusal | null {
  if (reason === Reason.HelloTimeout) return { status: 408, message };
  if (reason === Reason.ServerFull || reason === Reason.Shutdown) return { status: 503, message };
  return null;
}

/** Whether `byte` can start an HTTP method (they are upper-case tokens). */
function isMethodStart(byte: number): boolean {
  return byte >= 0x41 && byte <= 0x5a;
}

/** The relay's side of one WebSocket link. */
export class WebSocketCarrier implements RelayCarrier {
  // Static after construction.
  /** `ws`, or `wss` over TLS. */
  readonly kind: "ws" | "wss";
  /** The TCP peer's address (forwarding headers are never trusted). */
  readonly remoteAddr: Deno.NetAddr;
  readonly #conn: RelayConn;
  readonly #log: Logger;
  readonly #reader = new WebSocketFrameReader();

  // Owned by read() (the upgrade, the stream) and close().
  #phase: Phase = "head";
  /** The opening handshake, started by the first read (or a refusal). */
  #upgrade: Promise<boolean> | null = null;
  /** Bytes the client sent after its request head: its first frames, read before the socket. */
  #leftover: Uint8Array | null = null;
  /** The close code and text the carrier decided on itself: a violation, no subprotocol. */
  #closeWith: WebSocketViolation | null = null;
  /**
   * While the link is busy and the session still reads with its small
   * buffer: a pooled large buffer one read goes into, and the stream bytes
   * from it not yet handed over (`#stageStart` to `#stageEnd`).
   */
  #stage: Uint8Array | null = null;
  #stageStart = 0;
  #stageEnd = 0;
  /** Whether the next read goes through the stage. */
  #stageNext = false;
  /** Bytes read off the socket that were not stream bytes, since takeOverheadBytes(). */
  #overheadBytes = 0;
  #closing: Promise<void> | null = null;

  // Owned by the writes: one at a time, whole, so messages never interleave.
  #busy: Promise<void> | null = null;
  /** The header of a large message, written on its own: only ever used under the write lock. */
  readonly #header = new Uint8Array(MAX_FRAME_HEADER_BYTES);
  /** The payload of the latest Ping not yet answered. */
  #pong: Uint8Array | null = null;

  /**
   * Wraps an accepted connection; nothing is read or written until
   * {@linkcode read} (or {@linkcode refuse}).
   */
  constructor(conn: RelayConn, kind: "ws" | "wss", log: Logger) {
    this.#conn = conn;
    this.kind = kind;
    this.remoteAddr = conn.remoteAddr;
    this.#log = log;
  }

  /**
   * Runs the opening handshake once: resolves true when the WebSocket is
   * open for AlphaNET, false when it was refused (an HTTP refusal, a quiet
   * close, or a WebSocket without the subprotocol, closed with 1002 at
   * {@linkcode close}). Rejects if the connection fails.
   */
  open(): Promise<boolean> {
    return this.#upgrade ??= this.#handshake();
  }

  /**
   * Reads stream bytes: the unmasked payloads of the client's binary
   * messages. Answers Pings on the way; a client Close ends the stream
   * (null); a frame that breaks the rules rejects with a ProtocolError
   * (Malformed), after any stream bytes before it were handed over.
   */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (this.#phase !== "open" && !(await this.open())) return null;
    const reader = this.#reader;
    // Control frames and headers alone return nothing: they are not the stream, nor life.
    while (true) {
      const staged = this.#takeStaged(buffer);
      if (staged > 0) return staged;
      if (reader.violation !== null) {
        this.#closeWith = reader.violation;
        throw new ProtocolError(reader.violation.message, Reason.Malformed);
      }
      if (reader.closeReceived) return null;
      if (this.#overheadBytes >= OVERHEAD_YIELD_BYTES) return 0;
      const direct = !this.#stageNext || buffer.length >= STAGED_READ_BELOW_BYTES;
      const target = direct ? buffer : (this.#stage ??= acquireLargeBuffer());
      let count: number | null;
      try {
        count = await this.#readRaw(target);
      } catch (error) {
        this.#dropStage();
        throw error;
      }
      if (count === null) {
        this.#dropStage();
        return null;
      }
      const stream = reader.push(target, count);
      this.#overheadBytes += count - stream;
      const ping = reader.takePing();
      if (ping !== null) this.#answerPing(ping);
      if (!direct) {
        this.#stageNext = false;
        this.#stageStart = 0;
        this.#stageEnd = stream;
        continue;
      }
      // A small buffer the socket filled: the link is busy, and the read loop only moves
      // to its large buffer when a read fills the small one, which headers taken out of
      // the stream would prevent. The next read goes through the stage, which fills it.
      if (count === buffer.length && buffer.length < STAGED_READ_BELOW_BYTES) {
        this.#stageNext = true;
      }
      if (stream > 0) return stream;
    }
  }

  /**
   * The bytes read off the socket since the last call that were not stream bytes
   * (WebSocket headers and control frames): the session charges them to the
   * client's byte rate, though they are not life.
   */
  takeOverheadBytes(): number {
    const bytes = this.#overheadBytes;
    this.#overheadBytes = 0;
    return bytes;
  }

  /** Copies stream bytes read ahead through the stage into `buffer`; returns how many. */
  #takeStaged(buffer: Uint8Array): number {
    const stage = this.#stage;
    if (stage === null || this.#stageStart === this.#stageEnd) return 0;
    const count = Math.min(buffer.length, this.#stageEnd - this.#stageStart);
    buffer.set(stage.subarray(this.#stageStart, this.#stageStart + count));
    this.#stageStart += count;
    if (this.#stageStart === this.#stageEnd) this.#dropStage();
    return count;
  }

  /** Gives the stage back to the pool; only ever called with no read pending into it. */
  #dropStage(): void {
    if (this.#stage !== null) releaseBuffer(this.#stage);
    this.#stage = null;
    this.#stageStart = 0;
    this.#stageEnd = 0;
  }

  /**
   * Sends up to 128 KiB of `bytes` as one binary message; resolves with how
   * many. Before the upgrade, or once the link is refused or closing, the
   * bytes are dropped: there is no WebSocket to carry them.
   */
  async write(bytes: Uint8Array): Promise<number> {
    if (this.#phase !== "open") return bytes.length;
    const size = Math.min(bytes.length, MAX_OUTGOING_PAYLOAD_BYTES);
    const payload = bytes.subarray(0, size);
    if (size > COPY_PAYLOAD_BYTES) {
      await this.#locked(async () => {
        // A close that came while this waited has sent its Close frame, or is about to.
        if (this.#phase !== "open") return;
        const header = this.#header;
        await this.#writeAll(header.subarray(0, writeFrameHeader(header, 0, Opcode.Binary, size)));
        await this.#writeAll(payload);
      });
      return size;
    }
    // The transport's pools: a small buffer holds most control batches, a large one the rest.
    const message = size + MAX_FRAME_HEADER_BYTES <= SMALL_BUFFER_BYTES
      ? acquireSmallBuffer()
      : acquireLargeBuffer();
    try {
      const length = writeFrameHeader(message, 0, Opcode.Binary, size);
      message.set(payload, length);
      await this.#locked(async () => {
        if (this.#phase === "open") await this.#writeAll(message.subarray(0, length + size));
      });
    } finally {
      releaseBuffer(message);
    }
    return size;
  }

  /**
   * Ends the link with its last word, then closes the connection. Before
   * the upgrade: an HTTP 408 for a handshake time-out, a 503 for ServerFull
   * or Shutdown, else nothing. After it: a Close frame, whose code is the
   * carrier's own when it decided (1002, 1003, 1009), 1000 for the client's
   * own leaving (`PeerDisconnected`), else 4000 + `reason` with `message`.
   * Waits at most a second for it to leave. Idempotent; never rejects.
   */
  close(reason: Reason, message: string): Promise<void> {
    return this.#closing ??= this.#close(reason, message);
  }

  /**
   * Turns the link away at accept (the relay is full, or the source IP over
   * its limits): completes the upgrade, sends `Error(reason, message)` as a
   * binary message, then closes with 4000 + `reason`. All within `withinMs`;
   * a client slower than that gets the HTTP 503 instead, or nothing. Never
   * rejects.
   *
   * @param reason The Error frame's reason.
   * @param message Its text.
   * @param errorFrame The encoded Error frame.
   * @param withinMs The deadline.
   */
  async refuse(
    reason: Reason,
    message: string,
    errorFrame: Uint8Array,
    withinMs: number,
  ): Promise<void> {
    const timer = setTimeout(() => void this.close(reason, message), withinMs);
    try {
      if (await this.open()) await this.write(errorFrame);
    } catch {
      // The client left, or the deadline closed the link.
    } finally {
      clearTimeout(timer);
      await this.close(reason, message);
    }
  }

  async #close(reason: Reason, message: string): Promise<void> {
    const phase = this.#phase;
    this.#phase = "closed";
    let last: Uint8Array | null = null;
    if (phase === "head") {
      const refusal = refusalForClose(reason, message);
      if (refusal !== null) last = refusalResponse(refusal);
    } else if (phase === "open" || phase === "unusable") {
      const { code, message: text } = this.#closeWith ?? closeFor(reason, message);
      last = encodeCloseFrame(code, text);
    }
    if (last !== null) {
      // A write stuck behind a client that does not read must not hold the close: the
      // connection's close below ends it.
      const timer = setTimeout(() => this.#closeConn(), CLOSE_WRITE_MS);
      try {
        await this.#locked(() => this.#writeAll(last));
      } catch {
        // The client is gone: the connection is closed all the same.
      } finally {
        clearTimeout(timer);
      }
    }
    this.#closeConn();
  }

  #closeConn(): void {
    closeQuietly(this.#conn);
  }

  /** Bytes the client sent: what followed its request head first, then the socket. */
  async #readRaw(buffer: Uint8Array): Promise<number | null> {
    const leftover = this.#leftover;
    if (leftover === null) return await this.#conn.read(buffer);
    const count = Math.min(leftover.length, buffer.length);
    buffer.set(leftover.subarray(0, count));
    this.#leftover = count === leftover.length ? null : leftover.subarray(count);
    return count;
  }

  /**
   * Reads the request head (at most 8 KiB), checks it and answers: 101, or
   * a one-line HTTP refusal. Anything that is not an HTTP request at all
   * (a TLS ClientHello at the plain port, an AlphaNET Hello) is closed
   * without a word, as the TCP port does.
   */
  async #handshake(): Promise<boolean> {
    let head = new Uint8Array(INITIAL_HEAD_BYTES);
    let have = 0;
    let end = -1;
    while (end < 0) {
      if (have === head.length) {
        if (have >= MAX_UPGRADE_HEAD_BYTES) {
          return await this.#refuseUpgrade({
            status: 431,
            message: `The upgrade request's head is over ${MAX_UPGRADE_HEAD_BYTES} bytes`,
          });
        }
        const bigger = new Uint8Array(Math.min(head.length * 2, MAX_UPGRADE_HEAD_BYTES));
        bigger.set(head);
        head = bigger;
      }
      const from = have;
      const count = await this.#conn.read(head.subarray(have));
      if (count === null) return this.#endQuietly(null);
      have += count;
      if (from === 0 && !isMethodStart(head[0])) {
        const tls = this.kind === "ws" && looksLikeTlsRecord(head.subarray(0, have));
        return this.#endQuietly(tls ? "tls-on-plain-relay" : "websocket-not-http");
      }
      end = findHeadEnd(head, have, from);
    }
    const request = checkUpgradeRequest(head.subarray(0, end));
    if (isRefusal(request)) return await this.#refuseUpgrade(request);
    if (have > end) this.#leftover = head.slice(end, have);
    const response = switchingProtocols(await acceptValue(request.key), request.alphanet);
    return await this.#locked(async () => {
      // A close (time-out, shutdown) that came first has answered already.
      if (this.#phase !== "head") return false;
      if (!request.alphanet) {
        this.#phase = "unusable";
        this.#closeWith = { code: CloseCode.ProtocolError, message: NEEDS_SUBPROTOCOL_MESSAGE };
        this.#log.log("debug", "websocket-refused", {
          client: this.remoteAddr.hostname,
          status: 101,
          message: NEEDS_SUBPROTOCOL_MESSAGE,
        });
      } else {
        this.#phase = "open";
      }
      await this.#writeAll(response);
      return this.#phase === "open";
    });
  }

  /** Ends a link that is not a WebSocket client's, logging why at debug if `event` says. */
  #endQuietly(event: string | null): false {
    if (event !== null) this.#log.log("debug", event, { client: this.remoteAddr.hostname });
    if (this.#phase === "head") this.#phase = "refused";
    return false;
  }

  /** Answers an upgrade request with its refusal; the link then ends. */
  async #refuseUpgrade(refusal: UpgradeRefusal): Promise<false> {
    this.#log.log("debug", "websocket-refused", {
      client: this.remoteAddr.hostname,
      status: refusal.status,
      message: refusal.message,
    });
    await this.#locked(async () => {
      if (this.#phase !== "head") return;
      this.#phase = "refused";
      await this.#writeAll(refusalResponse(refusal));
    });
    return false;
  }

  /** Keeps the latest Ping's payload and sends its Pong as soon as no write is in flight. */
  #answerPing(payload: Uint8Array): void {
    this.#pong = payload;
    if (this.#busy === null) this.#sendPong();
  }

  #sendPong(): void {
    this.#locked(async () => {
      const pong = this.#pong;
      this.#pong = null;
      if (pong !== null && this.#phase === "open") {
        await this.#writeAll(encodeFrame(Opcode.Pong, pong));
      }
    }).catch(() => {
      // A failed write fails the link's next write or read as well: that is where it is handled.
    });
  }

  /** Runs `task` when no other write is in flight, and none starts until it is done. */
  async #locked<T>(task: () => Promise<T>): Promise<T> {
    // Bounded: each pass waits for one write, and the close ends any write that hangs.
    while (this.#busy !== null) await this.#busy;
    const done = Promise.withResolvers<void>();
    this.#busy = done.promise;
    try {
      return await task();
    } finally {
      this.#busy = null;
      done.resolve();
      // After the writes already waiting for the lock (their turns were queued by resolve()
      // above), not ahead of them: a client that Pings during every Pong must not starve the
      // session's own writes.
      if (this.#pong !== null) {
        queueMicrotask(() => {
          if (this.#pong !== null && this.#busy === null && this.#phase === "open") {
            this.#sendPong();
          }
        });
      }
    }
  }

  #writeAll(bytes: Uint8Array): Promise<void> {
    return writeAll(this.#conn, bytes);
  }
}

/** The close code and text for a session that closed with `reason` and `message`. */
function closeFor(reason: Reason, message: string): WebSocketViolation {
  if (reason === Reason.PeerDisconnected) return { code: CloseCode.Normal, message: "" };
  return { code: CloseCode.ReasonBase + reason, message };
}
