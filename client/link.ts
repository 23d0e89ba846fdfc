/**
 * One link to the relay: TCP connect (and TLS, see `dial.ts`) or a
 * WebSocket (`websocket_dial.ts`), the version 2 handshake (Hello, Challenge, Proof, VirtualIP: docs/PROTOCOL.md §4), the
 * read loop, the frame writer and the keepalive timer. A link lives once: the
 * client opens a new one to reconnect.
 *
 * @module
 */

import type { Slab } from "../transport/slab.ts";
import {
  AlphaNetError,
  Closed,
  ConnectionReset,
  isJoinTokenReason,
  JOIN_TOKEN_ADVICE,
  JoinTokenError,
  PeerTimeout,
  ProtocolError,
  RelayError,
  RelayIdMismatch,
  Replaced,
  TimedOut,
} from "../errors.ts";
import { PROTOCOL_VERSION, WEBSOCKET_REASON_CLOSE_BASE } from "../protocol/constants.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { isReason, Reason, reasonName } from "../protocol/reason.ts";
import type { ChallengePacket, ErrorPacket, Packet } from "../protocol/packets.ts";
import { FrameWriter } from "../transport/frame_writer.ts";
import { readFrames } from "../transport/read_loop.ts";
import { sniffFirstRead } from "../transport/tls_sniff.ts";
import type { Carrier } from "./carrier.ts";
import { answerChallenge, type Credentials } from "./credentials.ts";
import { dialRelay, RELAY_SPEAKS_TLS } from "./dial.ts";
import type { ClientConfig } from "./options.ts";
import { refTimer } from "./ref_timer.ts";
import { dialWebSocket, WebSocketClosed } from "./websocket_dial.ts";

/** What a link tells its client. Every callback runs synchronously. */
export interface LinkEvents {
  /**
   * The VirtualIP arrived; runs before any later frame is handled. Throwing
   * refuses the link: it ends with that error and `Link.open` rejects with it.
   */
  joined(link: Link, address: number): void;
  /**
   * A frame after the VirtualIP that the link does not handle itself;
   * throwing ends the link. Its byte fields are views of `slab` when that is
   * not null (see `PacketHandler` in transport/read_loop.ts).
   */
  packet(link: Link, packet: Packet, slab: Slab | null): void;
  /** A joined link ended by itself (not by {@linkcode Link.close}); called once. */
  ended(link: Link, error: Error): void;
}

/**
 * Longest a link waits, after a write failed, for its read loop to deliver
 * what the relay sent before it closed. A connection that fails a write
 * fails its reads at once too, so this bounds only a pathological one.
 */
const WRITE_FAILURE_GRACE_MS = 1000;

/** The settings a link uses: the client's, and the credentials resolved from them. */
export type LinkConfig =
  & Pick<
    ClientConfig,
    | "hostname"
    | "port"
    | "websocket"
    | "tls"
    | "handshakeTimeoutMs"
    | "keepaliveMs"
    | "peerTimeoutMs"
    | "relayId"
  >
  & {
    /** What the Proof proves; resolved once per client, the same on every link. */
    readonly credentials: Credentials;
  };

/**
 * Where a link is in its handshake: waiting for the Challenge, signing the
 * Proof, waiting for the VirtualIP after sending it, or joined.
 */
type HandshakeStep = "challenge" | "signing" | "proved" | "joined";

/**
 * The Proof could not be signed (the identity's or the token's key refused
 * to sign). Fatal: another attempt would fail the same way.
 */
export class ProofFailed extends AlphaNetError {
  /**
   * Creates the error.
   *
   * @param options `{ cause }`: what WebCrypto threw.
   */
  constructor(options?: ErrorOptions) {
    const cause = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(
      `Cannot join relay: the Proof could not be signed with this client's keys${cause}`,
      options,
    );
    this.name = "AlphaNetError";
  }
}

/** A link to the relay; see the module doc. */
export class Link {
  /** The byte stream: a TCP (or TLS) connection, or a WebSocket. */
  readonly #conn: Carrier;
  readonly #writer: FrameWriter;
  readonly #config: LinkConfig;
  readonly #events: LinkEvents;
  readonly #handshake = Promise.withResolvers<void>();
  #readLoop: Promise<void> = Promise.resolve();
  /** Where the handshake is; "joined" once the client accepted the VirtualIP. */
  #step: HandshakeStep = "challenge";
  /** The relay's id from the Challenge; empty until it arrives. */
  #relayId: Uint8Array = new Uint8Array(0);
  /** The signing of the Proof, settled once it is sent or given up; never rejects. */
  #proving: Promise<void> = Promise.resolve();
  /** Why the link ended; null while it is up. */
  #error: Error | null = null;

  // Keepalive: one timer, re-armed to the next Ping or the dead line, whichever is first.
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastHeard = 0;
  #nextPing = 0;
  #nonce = 0;
  /** Set when the dead line passed once: the read loop gets one more turn before the verdict. */
  #suspect = false;
  /** Whether the connection and the keepalive timer keep the process alive. */
  #refd = true;

  private constructor(conn: Carrier, config: LinkConfig, events: LinkEvents) {
    this.#conn = conn;
    this.#config = config;
    this.#events = events;
    this.#writer = new FrameWriter(conn, (error) => this.#writeFailed(error));
  }

  /**
   * Connects and waits for the VirtualIP: TCP connect and the TLS handshake
   * (or the WebSocket's opening handshake, `config.websocket`) and the join
   * (Hello, Challenge, Proof, VirtualIP) within one `handshakeTimeoutMs`.
   * Rejects with the Deno connection error, `Deno.errors.InvalidData` when
   * TLS fails or only one side speaks it (see {@linkcode dialRelay}); over
   * WebSocket with what {@linkcode dialWebSocket} rejects with, a RelayError
   * for a close code 4000 + reason and ConnectionReset for any other close;
   * a RelayError (Error frame; JoinTokenError for a
   * refused join token), ProtocolError (a frame out of turn),
   * RelayIdMismatch (the Challenge is not from the pinned relay `config.relayId`;
   * checked before signing), ProofFailed (the keys would not sign), TimedOut (no VirtualIP in time), the error
   * `events.joined` threw, or Closed if `signal` aborts. A rejected open
   * leaves nothing running.
   */
  static async open(config: LinkConfig, events: LinkEvents, signal?: AbortSignal): Promise<Link> {
    const started = performance.now();
    const conn: Carrier = config.websocket === null
      ? await dialRelay(config, config.handshakeTimeoutMs, signal)
      : await dialWebSocket(config.websocket, config.handshakeTimeoutMs, signal);
    const link = new Link(conn, config, events);
    const left = config.handshakeTimeoutMs - (performance.now() - started);
    await link.#join(Math.max(1, left), signal);
    return link;
  }

  /** The relay's id, 32 bytes, from this link's Challenge (always set once the link joined). */
  get relayId(): Uint8Array {
    return this.#relayId;
  }

  /** Whether the link has ended. */
  get ended(): boolean {
    return this.#error !== null;
  }

  /** Queues a packet; dropped once the link has ended. */
  send(packet: Packet): void {
    if (this.#error === null) this.#writer.writePacket(packet);
  }

  /** Queues an ArbitraryData frame; dropped once the link has ended. */
  sendData(connectionId: number, payload: Uint8Array): void {
    if (this.#error === null) this.#writer.appendData(connectionId, payload);
  }

  /** Queues a credit grant, merged into one still queued for the same connection; dropped once the link has ended. */
  sendWindowUpdate(connectionId: number, increment: number): void {
    if (this.#error === null) this.#writer.writeWindowUpdate(connectionId, increment);
  }

  /** Undefined while the link can take more (or has ended), else a promise for when it can. */
  room(): Promise<void> | undefined {
    return this.#error === null ? this.#writer.room() : undefined;
  }

  /**
   * Whether the link keeps the process alive: its TCP connection's pending
   * read and its keepalive timer. The client decides (see `AlphaNetClient.unref`).
   * Deno's WebSocket keeps the process alive while it is open whatever this says.
   */
  setRef(keep: boolean): void {
    if (this.#refd === keep) return;
    this.#refd = keep;
    if (this.#error !== null) return;
    if (keep) this.#conn.ref?.();
    else this.#conn.unref?.();
    if (this.#timer !== undefined) refTimer(this.#timer, keep);
  }

  /**
   * Waits up to `flushMs` for queued frames to leave, then closes the
   * connection (a WebSocket with 1000) without calling `events.ended`. Resolves once the read loop
   * has stopped and no Proof is being signed. Idempotent.
   */
  async close(flushMs: number): Promise<void> {
    if (this.#error === null) {
      await this.#writer.drained(flushMs);
      this.#end(new Closed("Cannot use the link to the relay: it is closed"), false);
    }
    await this.#readLoop;
    await this.#proving;
  }

  async #join(ms: number, signal: AbortSignal | undefined): Promise<void> {
    // A TLS relay answers a plain Hello with a TLS alert: say so rather than "malformed frame".
    const source = this.#config.websocket === null && this.#config.tls === null
      ? sniffFirstRead(
        this.#conn,
        () => this.#end(new Deno.errors.InvalidData(RELAY_SPEAKS_TLS), false),
      )
      : this.#conn;
    this.#readLoop = readFrames(source, (packet, slab) => this.#onPacket(packet, slab)).then(
      () =>
        this.#end(new ConnectionReset(`Cannot ${this.#action}: the relay closed the connection`)),
      (error) =>
        this.#end(
          error instanceof AlphaNetError
            ? error
            : error instanceof WebSocketClosed
            ? closedError(this.#action, error)
            : new ConnectionReset(`Cannot ${this.#action}: the connection failed`, {
              cause: error,
            }),
        ),
    );
    this.#writer.writePacket({ type: PacketType.Hello, version: PROTOCOL_VERSION });
    const timeoutMs = this.#config.handshakeTimeoutMs;
    const timer = setTimeout(
      () =>
        this.#end(new TimedOut(`Cannot join relay: no VirtualIP within ${timeoutMs} ms`), false),
      ms,
    );
    const abort = (): void =>
      this.#end(new Closed("Cannot join relay: the client is closed"), false);
    signal?.addEventListener("abort", abort);
    try {
      if (signal?.aborted) abort();
      await this.#handshake.promise;
    } catch (error) {
      // Nothing left running: the read loop has stopped and no signature is still being made.
      await this.#readLoop;
      await this.#proving;
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
    }
  }

  #onPacket(packet: Packet, slab: Slab | null): void {
    if (this.#error !== null) return;
    this.#lastHeard = performance.now();
    switch (packet.type) {
      case PacketType.Challenge:
        // Only once, and only before the Proof: a second one would have the client sign again.
        if (this.#step !== "challenge") throw unexpected(packet.type);
        this.#step = "signing";
        // The decoder's views are valid only during this call: keep copies.
        this.#relayId = packet.relayId.slice();
        // Before signing: a relay forwarding another relay's Challenge must not get a signature
        // that takes this client's address there.
        this.#checkPinned();
        this.#prove({ ...packet, relayId: this.#relayId, nonce: packet.nonce.slice() });
        return;
      case PacketType.VirtualIP:
        // Only after the Proof went out: a VirtualIP before it admits a client that proved nothing.
        if (this.#step !== "proved") throw unexpected(packet.type);
        this.#events.joined(this, packet.address);
        this.#step = "joined";
        this.#startKeepalive();
        this.#handshake.resolve();
        return;
      case PacketType.Error:
        throw relayError(this.#action, packet);
      case PacketType.Ping:
        if (this.#step !== "joined") throw unexpected(packet.type);
        return this.send({ type: PacketType.Pong, nonce: packet.nonce });
      case PacketType.Pong:
        // The client pings only once joined: a Pong before that answers nothing it sent.
        if (this.#step !== "joined") throw unexpected(packet.type);
        return;
      default:
        if (this.#step !== "joined") throw unexpected(packet.type);
        this.#events.packet(this, packet, slab);
    }
  }

  /** Throws RelayIdMismatch unless the Challenge's relay id is the pinned one (if any). */
  #checkPinned(): void {
    const pinned = this.#config.relayId;
    if (pinned === null) return;
    const actual = hex(this.#relayId);
    if (actual !== pinned) throw new RelayIdMismatch(pinned, actual);
  }

  /**
   * Signs the Proof off the read loop (WebCrypto is asynchronous) and sends
   * it, unless the link ended meanwhile. Frames that arrive while signing
   * are handled in order: anything but an Error is a violation then.
   */
  #prove(challenge: ChallengePacket): void {
    this.#proving = answerChallenge(challenge, this.#config.credentials).then(
      (proof) => {
        if (this.#error !== null) return;
        this.#writer.writePacket(proof);
        this.#step = "proved";
      },
      (error) => this.#end(new ProofFailed({ cause: error }), false),
    );
  }

  /**
   * Pings every `keepaliveMs` whatever else goes out: 9 bytes per interval,
   * no bookkeeping on the send path, and the relay hears from an idle client
   * even when only the relay is talking.
   */
  #startKeepalive(): void {
    const now = performance.now();
    this.#nextPing = now + this.#config.keepaliveMs;
    this.#arm(now);
  }

  #arm(now: number): void {
    const deadline = this.#lastHeard + this.#config.peerTimeoutMs;
    const due = Math.min(this.#nextPing, deadline);
    this.#timer = setTimeout(() => this.#tick(), Math.max(1, Math.ceil(due - now)));
    if (!this.#refd) refTimer(this.#timer, false);
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#error !== null) return;
    const now = performance.now();
    const silent = now - this.#lastHeard;
    if (silent >= this.#config.peerTimeoutMs) {
      if (!this.#suspect) {
        // A stalled event loop may have frames waiting in the socket: let the read loop run first.
        this.#suspect = true;
        this.#timer = setTimeout(() => this.#tick(), 0);
        if (!this.#refd) refTimer(this.#timer, false);
        return;
      }
      return this.#end(
        new PeerTimeout(
          `Cannot ${this.#action}: nothing received for ${Math.round(silent)} ms ` +
            `(peerTimeoutMs ${this.#config.peerTimeoutMs})`,
        ),
      );
    }
    this.#suspect = false;
    if (now >= this.#nextPing) {
      this.#nonce = (this.#nonce + 1) >>> 0;
      this.send({ type: PacketType.Ping, nonce: this.#nonce });
      this.#nextPing = now + this.#config.keepaliveMs;
    }
    this.#arm(now);
  }

  /**
   * A write failed: the relay has closed or reset the connection. It may have
   * said why first (an Error frame, such as Shutdown, still unread), so the
   * read loop gets up to {@linkcode WRITE_FAILURE_GRACE_MS} to reach it before
   * the link ends with the write's own failure.
   */
  #writeFailed(error: unknown): void {
    if (this.#error !== null) return;
    const failed = new ConnectionReset("Cannot write to the relay: the connection failed", {
      cause: error,
    });
    const timer = setTimeout(() => this.#end(failed), WRITE_FAILURE_GRACE_MS);
    if (!this.#refd) refTimer(timer, false);
    void this.#readLoop.finally(() => {
      clearTimeout(timer);
      this.#end(failed);
    });
  }

  /** What the link was doing when it ended, as the action of its error message. */
  get #action(): string {
    return this.#step === "joined" ? "keep the link to the relay" : "join relay";
  }

  /**
   * Ends the link once: stops the timer, closes the connection, tells the
   * client if it had joined. The first cause wins: an Error frame read
   * before a WebSocket's close is what ends the link, not the close code.
   */
  #end(error: Error, notify = true): void {
    if (this.#error !== null) return;
    this.#error = error;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#handshake.reject(error);
    this.#handshake.promise.catch(() => {});
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    if (notify && this.#step === "joined") this.#events.ended(this, error);
  }
}

/**
 * The error an Error frame stands for: {@linkcode Replaced} for a takeover,
 * {@linkcode JoinTokenError} for a refused join token; its message keeps the
 * reason's name and the relay's own words (and, for a join token, what to do).
 */
function relayError(action: string, packet: ErrorPacket): RelayError {
  const reason = reasonName(packet.reason);
  const message = `Cannot ${action}: the relay closed the link with ${reason}: ${packet.message}`;
  if (packet.reason === Reason.Replaced) return new Replaced(message);
  if (isJoinTokenReason(packet.reason)) {
    return new JoinTokenError(`${message}; ${JOIN_TOKEN_ADVICE[packet.reason]}`, packet.reason);
  }
  return new RelayError(message, packet.reason);
}

/**
 * The error a WebSocket closed without an Error frame first stands for:
 * for a code 4000 + R (R a reason of §12), the RelayError the Error frame
 * would have given (the relay sends the frame first, so this is its reason
 * when the frame was lost); for any other code a ConnectionReset naming the
 * code and reason, with the close as its cause.
 */
function closedError(action: string, closed: WebSocketClosed): Error {
  const reason = closed.code - WEBSOCKET_REASON_CLOSE_BASE;
  if (reason >= 0 && isReason(reason)) {
    return relayError(action, { type: PacketType.Error, reason, message: closed.reason });
  }
  return new ConnectionReset(`Cannot ${action}: ${closed.message}`, { cause: closed });
}

/** `bytes` as lowercase hex, the form relay ids are shown and pinned in. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The error for a frame the relay may not send (here or now). */
export function unexpected(type: number): ProtocolError {
  return new ProtocolError(
    `Cannot accept packet: type 0x${type.toString(16)} is not valid from the relay`,
    Reason.UnexpectedPacket,
  );
}
