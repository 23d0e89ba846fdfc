/**
 * One client's link to the relay, over any {@linkcode RelayCarrier} (TCP,
 * TLS, WebSocket): the read loop, the outgoing queue,
 * the handshake's states and time-out, pacing and the close. It only moves
 * frames: the Hello, the Proof, joining and leaving are the
 * {@linkcode PeerHost}'s, routing the {@linkcode Dispatch} the join returns.
 * Its pacing lives in {@linkcode ClientPacing}.
 *
 * @module
 */

import type { Slab } from "../transport/slab.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason } from "../protocol/reason.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type { Packet } from "../protocol/packets.ts";
import { FrameWriter } from "../transport/frame_writer.ts";
import { readFrames } from "../transport/read_loop.ts";
import type { CarrierKind, RelayCarrier } from "./carrier.ts";
import type { RelayConfig } from "./config.ts";
import type { Logger } from "./log.ts";
import { ClientPacing, type PacingConfig } from "./pacing.ts";
import type { Dispatch, Handshake, Peer, PeerHost } from "./peer.ts";
import type { SourceShare } from "./source_limits.ts";

/** The settings a session reads, as the relay's config states them. */
export type SessionConfig =
  & Pick<RelayConfig, "helloTimeoutMs" | "maxQueuedControlBytes">
  & PacingConfig;

/** What a session needs from the relay that owns it. */
export interface SessionContext {
  readonly config: SessionConfig;
  readonly log: Logger;
  /** Greets the client at its Hello, joins it at its Proof and lets it go at its close. */
  readonly host: PeerHost;
  /** Called once per session, when its handshake has completed and it joined. */
  readonly joined: (session: ClientSession) => void;
  /** Called once per session, when its link has ended and been cleaned up. */
  readonly ended: (session: ClientSession) => void;
}

/**
 * Queued bytes at which the relay counts a client's link as congested and
 * holds back the credit it grants (released at half): about a millisecond of
 * loopback traffic, far below the windows it would otherwise queue.
 */
const CONGESTED_QUEUE_BYTES = 1024 * 1024;

/** How long a closing session waits for its last frames to leave. */
const CLOSE_FLUSH_MS = 1000;

/**
 * The handshake's states (PROTOCOL.md §4): waiting for the Hello, for the
 * Proof, for the Proof's verification; then open, until closed.
 */
type SessionState = "hello" | "proof" | "verifying" | "open" | "closed";

/** The relay's side of one client's link: a {@linkcode Peer} over a {@linkcode RelayCarrier}. */
export class ClientSession implements Peer {
  // Static after construction.
  readonly #carrier: RelayCarrier;
  readonly #context: SessionContext;
  readonly #writer: FrameWriter;
  readonly #pacing: ClientPacing;
  /** The client's IP without its port. */
  readonly realIp: string;
  /** What the client's source IP holds of the relay: its shared request rate among it. */
  readonly source: SourceShare;

  // Owned by the host: written once, at the join.
  /** The client's virtual IPv4 as a u32; 0 until the join. */
  address = 0;
  /** Set by the relay's buffer budget while it counts what it holds for this client. */
  dataWritten: ((bytes: number) => void) | undefined = undefined;

  // Owned by the read loop and close().
  #state: SessionState = "hello";
  #helloTimer: ReturnType<typeof setTimeout> | undefined;
  /** What the Proof goes to, between the Hello and the Proof. */
  #handshake: Handshake | null = null;
  /** The Proof's verification and join, awaited before the relay is told the link ended. */
  #verification: Promise<void> | null = null;
  /** Where frames go once joined; the router's, bound to this client's book. */
  #dispatch: Dispatch | null = null;

  /** Wraps an accepted link; call {@linkcode run} to serve it. */
  constructor(carrier: RelayCarrier, context: SessionContext, source: SourceShare) {
    this.#carrier = carrier;
    this.#context = context;
    this.realIp = carrier.remoteAddr.hostname;
    this.source = source;
    this.#writer = new FrameWriter(
      carrier,
      () => this.close(Reason.PeerDisconnected, "write failed"),
      CONGESTED_QUEUE_BYTES,
      (bytes) => this.dataWritten?.(bytes),
    );
    this.#pacing = new ClientPacing(context.config, this);
  }

  /**
   * Serves the link until it ends and the relay has been told; never rejects.
   * Not async itself: the read loop is the only async frame an idle client keeps.
   */
  run(): Promise<void> {
    // One timer for the whole handshake: Hello, Proof and its verification.
    this.#helloTimer = setTimeout(
      () =>
        this.close(
          Reason.HelloTimeout,
          `Cannot join: the handshake did not complete within ${this.#context.config.helloTimeoutMs} ms`,
        ),
      this.#context.config.helloTimeoutMs,
    );
    // A TLS client at a plain relay reads as ended: each carrier checks its first bytes.
    return readFrames(
      this.#carrier,
      (packet, slab) => this.#onPacket(packet, slab),
      (bytes, progress) =>
        this.#pacing.afterRead(
          bytes,
          performance.now(),
          progress,
          this.#carrier.takeOverheadBytes?.() ?? 0,
        ),
    ).then(
      () => this.#end(Reason.PeerDisconnected, "link closed by the client"),
      (error) => this.#endAfterReadError(error),
    );
  }

  /** How the client reached the relay: shown per client on the status page. */
  get carrier(): CarrierKind {
    return this.#carrier.kind;
  }

  /** Pings a quiet client, closes a silent one (see {@linkcode ClientPacing.checkLiveness}). */
  checkLiveness(now: number): void {
    if (this.#state === "open") this.#pacing.checkLiveness(now);
  }

  /** Takes one request token; false when the client, or its source IP, is over its request rate. */
  takeRequestToken(now: number): boolean {
    return this.#pacing.takeRequestToken(now) && this.source.takeRequestToken(now);
  }

  /** Whether the session is closed: a join after the Proof's verification checks it. */
  get closed(): boolean {
    return this.#state === "closed";
  }

  /** Queues a packet to this client; a client that stops reading is closed as a slow consumer. */
  send(packet: Packet): void {
    if (this.#state === "closed") return;
    this.#writer.writePacket(packet);
    this.#checkControlQueue();
  }

  /** Queues a credit grant, merged into one still queued for the same end. */
  sendWindowUpdate(connectionId: number, increment: number): void {
    if (this.#state === "closed") return;
    this.#writer.writeWindowUpdate(connectionId, increment);
    this.#checkControlQueue();
  }

  /**
   * Data to this client is bounded by the credit it grants; control frames
   * are not, so they have their own cap: a client that lets them pile up is
   * closed as a slow consumer.
   */
  #checkControlQueue(): void {
    if (this.#writer.queuedControlBytes > this.#context.config.maxQueuedControlBytes) {
      void this.close(Reason.SlowConsumer, "you do not read what the relay sends");
    }
  }

  /** Whether the relay has more queued for this client than its link is taking. */
  get congested(): boolean {
    return this.#writer.congested;
  }

  /** Undefined unless congested, else resolves once this client's queue is down to half the mark. */
  room(): Promise<void> | undefined {
    return this.#writer.room();
  }

  /** Queues data on one of this client's ends; its size is already bounded by credit. */
  sendData(connectionId: number, payload: Uint8Array, slab: Slab | null = null): void {
    if (this.#state !== "closed") this.#writer.writeData(connectionId, payload, slab);
  }

  /**
   * Ends the session: an Error frame with `reason` unless the client itself
   * left, the host told (connections and requests cleaned up before anything
   * else can route to this client), the carrier closed once the last frames
   * are out (or after a short grace), told the reason for its own last word
   * (a WebSocket's close code). Idempotent.
   */
  async close(reason: Reason, message: string): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#dispatch = null;
    this.#handshake = null;
    this.#stopHelloTimer();
    this.#pacing.stop();
    try {
      if (reason !== Reason.PeerDisconnected) {
        // A client that is not taking its queue gets the reason next, not behind that queue.
        const discard = reason === Reason.SlowConsumer || this.#writer.congested;
        this.#writer.finish(
          { type: PacketType.Error, reason, message: truncate(message) },
          discard,
        );
      }
      this.#context.host.leave(this, reason, message);
    } catch (error) {
      // A close must finish whatever went wrong: the socket is closed below all the same.
      this.#context.log.log("error", "internal-error", {
        client: this.realIp,
        during: "close",
        error: String(error),
      });
    }
    await this.#writer.drained(CLOSE_FLUSH_MS);
    await this.#carrier.close(reason, message);
  }

  /** Closes after the read loop failed, with the reason the failure implies, then tells the relay. */
  async #endAfterReadError(error: unknown): Promise<void> {
    if (error instanceof ProtocolError) {
      await this.close(error.reason, error.message);
    } else if (this.#state === "closed") {
      // The read was cut short by close(): nothing more to report.
    } else if (
      error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe
    ) {
      await this.close(Reason.PeerDisconnected, "link reset by the client");
    } else if (
      error instanceof Deno.errors.InvalidData || error instanceof Deno.errors.UnexpectedEof
    ) {
      // Only a TLS link fails so: a plain client at a TLS relay, a bad certificate, a scanner.
      this.#context.log.log("debug", "tls-failed", { client: this.realIp, error: String(error) });
      await this.close(Reason.PeerDisconnected, "TLS failed");
    } else {
      this.#context.log.log("error", "internal-error", {
        client: this.realIp,
        error: String(error),
      });
      await this.close(Reason.Internal, "internal error");
    }
    await this.#ended();
  }

  /** Closes the session, then tells the relay. */
  async #end(reason: Reason, message: string): Promise<void> {
    await this.close(reason, message);
    await this.#ended();
  }

  /**
   * Tells the relay the link has ended, once a Proof still being verified
   * is done with (it finds the session closed and joins nothing): the relay
   * closes its registry only after every session has ended.
   */
  async #ended(): Promise<void> {
    await this.#verification;
    this.#context.ended(this);
  }

  /** Drops the timer, not just its schedule: a cleared Timeout still pins ~0.3 KiB. */
  #stopHelloTimer(): void {
    clearTimeout(this.#helloTimer);
    this.#helloTimer = undefined;
  }

  #onPacket(packet: Packet, slab: Slab | null): void {
    switch (this.#state) {
      case "open":
        return this.#dispatch!(packet, slab);
      case "hello":
        return this.#onHello(packet);
      case "proof":
        return this.#onProof(packet);
      case "verifying":
        throw new ProtocolError(
          `Cannot accept packet: type 0x${
            packet.type.toString(16)
          } before your VirtualIP (send nothing after the Proof until it comes)`,
          Reason.UnexpectedPacket,
        );
      case "closed":
        return;
    }
  }

  /** The Hello: the host checks its version and sends the Challenge. */
  #onHello(packet: Packet): void {
    if (packet.type !== PacketType.Hello) {
      throw new ProtocolError(
        `Cannot accept packet: the first frame must be Hello, got type 0x${
          packet.type.toString(16)
        }`,
        Reason.UnexpectedPacket,
      );
    }
    const handshake = this.#context.host.greet(this, packet);
    // A refused client is closed already; so, rarely, is one the Challenge overran.
    if (handshake === null || this.#state === "closed") return;
    this.#handshake = handshake;
    this.#state = "proof";
  }

  /**
   * The Proof: verified asynchronously, while any other frame is refused;
   * the session opens when the host has joined it.
   */
  #onProof(packet: Packet): void {
    if (packet.type !== PacketType.Proof) {
      throw new ProtocolError(
        `Cannot accept packet: the frame after Hello must be Proof, got type 0x${
          packet.type.toString(16)
        }`,
        Reason.UnexpectedPacket,
      );
    }
    const handshake = this.#handshake!;
    this.#handshake = null;
    this.#state = "verifying";
    // The host copies the proof's bytes before its first await. Its prove() never rejects;
    // if one did, it would cost this link, not an unhandled rejection.
    this.#verification = handshake.prove(packet).then(
      (dispatch) => this.#open(dispatch),
      (error) => this.#failed("verification", error),
    ).finally(() => {
      // Settled: an open session keeps no promise for the rest of its life.
      this.#verification = null;
    });
  }

  /** Logs an internal error of this link and closes it with Internal. */
  #failed(during: string, error: unknown): void {
    this.#context.log.log("error", "internal-error", {
      client: this.realIp,
      during,
      error: String(error),
    });
    void this.close(Reason.Internal, "internal error");
  }

  /** Opens the session the host joined, unless it was refused or closed meanwhile. */
  #open(dispatch: Dispatch | null): void {
    // Closed meanwhile: close() has told the host, which detached the peer if it had joined.
    if (dispatch === null || this.#state !== "verifying") return;
    this.#stopHelloTimer();
    this.#dispatch = dispatch;
    this.#state = "open";
    try {
      this.#context.joined(this);
    } catch (error) {
      // Not to be left as an unhandled rejection of the verification.
      this.#failed("join", error);
    }
  }
}

const MAX_REASON_TEXT = 200;

function truncate(message: string): string {
  if (message.length <= MAX_REASON_TEXT) return message;
  // Never cut a surrogate pair in half: that would put U+FFFD on the wire.
  const end = /[\uD800-\uDBFF]/.test(message[MAX_REASON_TEXT - 1])
    ? MAX_REASON_TEXT - 1
    : MAX_REASON_TEXT;
  return message.slice(0, end);
}
