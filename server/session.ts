/**
 * One client's link to the relay: the handshake, the read loop, the
 * outgoing queue, and the ids this client may name.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { PacketType, PROTOCOL_VERSION, Reason, reasonName } from "../protocol/constants.ts";
import type { HelloPacket, Packet } from "../protocol/packets.ts";
import { FrameWriter } from "../transport/frame_writer.ts";
import { readFrames } from "../transport/read_loop.ts";
import type { RelayConfig } from "./config.ts";
import { type ConnectionEnd, grantCredit, isLinked } from "./connections.ts";
import type { Logger } from "./log.ts";
import type { PendingRequest } from "./pending.ts";
import { identityKey, PoolExhausted, type Registry, type RegistryKey } from "./registry.ts";
import type { Router } from "./router.ts";
import { TokenBucket } from "./token_bucket.ts";

/** What a session needs from the relay that owns it. */
export interface SessionContext {
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly registry: Registry;
  readonly router: Router;
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

/** What a session without connections or requests reads instead of a map of its own. */
const NONE: ReadonlyMap<number, never> = new Map<number, never>();

type SessionState = "hello" | "open" | "closed";

/** The relay's side of one client's TCP link. */
export class ClientSession {
  // Static after construction.
  readonly #conn: Deno.Conn;
  readonly #context: SessionContext;
  readonly #writer: FrameWriter;
  /** The peer's IP without its port: the registry key of clients without an identity. */
  readonly realIp: string;

  // Set once by the handshake.
  /** The client's virtual IPv4 as a u32; 0 until the handshake completes. */
  address = 0;

  // Owned by the router. Most clients stay idle, so each map is created on first use.
  #ends: Map<number, ConnectionEnd> | null = null;
  #outgoing: Map<number, PendingRequest> | null = null;
  #incoming: Map<number, PendingRequest> | null = null;
  #lastConnectionId = 0;
  #lastRequestId = 0;
  /** Senders' ends whose grants from this client wait for this client's queue to drain. */
  #heldGrants: Set<ConnectionEnd> | null = null;

  // Owned by the read loop and close().
  #state: SessionState = "hello";
  #helloTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the relay last read anything from this client (performance.now() ms). */
  #lastHeardAt = performance.now();
  #pingedAt = 0;
  #pingNonce = 0;
  /** Created on first use: most clients never send a request or are never byte-limited. */
  #requestBucket: TokenBucket | null = null;
  #byteBucket: TokenBucket | null = null;
  /** The pause of a byte-limited client's read loop, ended early by close(). */
  #readPause: { timer: ReturnType<typeof setTimeout>; resume: () => void } | null = null;

  /** Wraps an accepted TCP connection; call {@linkcode run} to serve it. */
  constructor(conn: Deno.Conn, context: SessionContext) {
    this.#conn = conn;
    this.#context = context;
    this.realIp = (conn.remoteAddr as Deno.NetAddr).hostname;
    this.#writer = new FrameWriter(
      conn,
      () => this.close(Reason.PeerDisconnected, "write failed"),
      CONGESTED_QUEUE_BYTES,
    );
  }

  /**
   * Serves the link until it ends and the relay has been told; never rejects.
   * Not async itself: the read loop is the only async frame an idle client keeps.
   */
  run(): Promise<void> {
    this.#helloTimer = setTimeout(
      () =>
        this.close(
          Reason.HelloTimeout,
          `no Hello within ${this.#context.config.helloTimeoutMs} ms`,
        ),
      this.#context.config.helloTimeoutMs,
    );
    return readFrames(
      this.#conn,
      (packet) => this.#onPacket(packet),
      (bytes) => this.#afterRead(bytes),
    ).then(
      () => this.#end(Reason.PeerDisconnected, "link closed by the client"),
      (error) => this.#endAfterReadError(error),
    );
  }

  /**
   * The relay's periodic check (the seed's polling scheme): pings a client
   * that has been quiet for the keepalive interval, closes one that has been
   * silent for the peer time-out. Any frame from the client counts as life.
   */
  checkLiveness(now: number): void {
    // A client whose reads the relay itself has paused (byte-rate cap) is not silent.
    if (this.#state !== "open" || this.#readPause !== null) return;
    const { keepaliveMs, peerTimeoutMs } = this.#context.config;
    const quietMs = now - this.#lastHeardAt;
    if (quietMs >= peerTimeoutMs) {
      void this.close(Reason.PeerTimeout, `nothing heard for ${Math.round(quietMs)} ms`);
    } else if (quietMs >= keepaliveMs && now - this.#pingedAt >= keepaliveMs) {
      this.#pingedAt = now;
      this.#pingNonce = (this.#pingNonce + 1) >>> 0;
      this.send({ type: PacketType.Ping, nonce: this.#pingNonce });
    }
  }

  /** Takes one request token; false when the client is over its request rate. */
  takeRequestToken(now: number): boolean {
    const { requestRate, requestBurst } = this.#context.config;
    this.#requestBucket ??= new TokenBucket(requestRate, requestBurst, now);
    return this.#requestBucket.tryTake(now);
  }

  /** Queues a packet to this client; a client that stops reading is closed as a slow consumer. */
  send(packet: Packet): void {
    if (this.#state === "closed") return;
    this.#writer.writePacket(packet);
    // Data to this client is bounded by the credit it grants; control frames are not, so they
    // have their own cap.
    if (this.#writer.queuedControlBytes > this.#context.config.maxQueuedControlBytes) {
      void this.close(Reason.SlowConsumer, "you do not read what the relay sends");
    }
  }

  /** Whether the relay has more queued for this client than its link is taking. */
  get congested(): boolean {
    return this.#writer.congested;
  }

  /**
   * Keeps credit this client granted to `sender` until this client's queue
   * is down to half the congestion mark, then passes on all that was held.
   */
  holdGrant(sender: ConnectionEnd, increment: number): void {
    sender.heldCredit += increment;
    if (this.#heldGrants === null) {
      this.#heldGrants = new Set();
      const drained = this.#writer.room();
      if (drained) void drained.then(() => this.#releaseGrants());
      else queueMicrotask(() => this.#releaseGrants());
    }
    this.#heldGrants.add(sender);
  }

  #releaseGrants(): void {
    const held = this.#heldGrants;
    this.#heldGrants = null;
    for (const sender of held ?? []) {
      const increment = sender.heldCredit;
      sender.heldCredit = 0;
      if (increment > 0 && isLinked(sender)) grantCredit(sender, increment);
    }
  }

  /** Queues data on one of this client's ends; its size is already bounded by credit. */
  sendData(connectionId: number, payload: Uint8Array): void {
    if (this.#state !== "closed") this.#writer.writeData(connectionId, payload);
  }

  /** A fresh connection id for an end of this client. */
  issueConnectionId(): number {
    return ++this.#lastConnectionId;
  }

  /** A fresh id for a request made to this client. */
  issueRequestId(): number {
    return ++this.#lastRequestId;
  }

  /** Whether the relay ever gave this client `id` as a request id. */
  isIssuedRequestId(id: number): boolean {
    return id >= 1 && id <= this.#lastRequestId;
  }

  /** Whether the relay ever gave this client `id` as a connection id. */
  isIssuedConnectionId(id: number): boolean {
    return id >= 1 && id <= this.#lastConnectionId;
  }

  /** Active connection ends of this client, by this client's connection id. */
  get ends(): ReadonlyMap<number, ConnectionEnd> {
    return this.#ends ?? NONE;
  }

  /** Requests this client made, by its own request id. */
  get outgoing(): ReadonlyMap<number, PendingRequest> {
    return this.#outgoing ?? NONE;
  }

  /** Requests made to this client, by the id the relay gave them. */
  get incoming(): ReadonlyMap<number, PendingRequest> {
    return this.#incoming ?? NONE;
  }

  /**
   * The active end `id` names, or undefined for an end that has closed (a
   * frame that crossed the close is dropped). An id never issued is a violation.
   */
  endFor(id: number): ConnectionEnd | undefined {
    const end = this.#ends?.get(id);
    if (!end && !this.isIssuedConnectionId(id)) {
      throw new ProtocolError(
        `Cannot use connection ${id}: it was never issued to you`,
        Reason.UnknownId,
      );
    }
    return end;
  }

  /** Registers an end of this client (router only). */
  addEnd(end: ConnectionEnd): void {
    (this.#ends ??= new Map()).set(end.id, end);
  }

  /** Unregisters an end; false if it was not registered (router only). */
  removeEnd(end: ConnectionEnd): boolean {
    return this.#ends?.delete(end.id) ?? false;
  }

  /** Registers a request this client made (router only). */
  addOutgoing(request: PendingRequest): void {
    (this.#outgoing ??= new Map()).set(request.requesterRequestId, request);
  }

  /** Unregisters a request this client made (router only). */
  removeOutgoing(request: PendingRequest): void {
    this.#outgoing?.delete(request.requesterRequestId);
  }

  /** Registers a request made to this client (router only). */
  addIncoming(request: PendingRequest): void {
    (this.#incoming ??= new Map()).set(request.ownerRequestId, request);
  }

  /** Unregisters a request made to this client (router only). */
  removeIncoming(request: PendingRequest): void {
    this.#incoming?.delete(request.ownerRequestId);
  }

  /**
   * Ends the session: an Error frame with `reason` unless the client itself
   * left, connections and requests cleaned up, the socket closed once the
   * last frames are out (or after a short grace). Idempotent.
   */
  async close(reason: Reason, message: string): Promise<void> {
    if (this.#state === "closed") return;
    const wasOpen = this.#state === "open";
    this.#state = "closed";
    this.#stopHelloTimer();
    if (this.#readPause) {
      clearTimeout(this.#readPause.timer);
      this.#readPause.resume();
      this.#readPause = null;
    }
    const { log, router } = this.#context;
    if (reason !== Reason.PeerDisconnected) {
      this.#writer.writePacket({ type: PacketType.Error, reason, message: truncate(message) });
    }
    if (wasOpen) {
      router.detach(this, reason);
      // After a takeover the address is online again under the newer session.
      if (router.sessionFor(this.address) === undefined) this.#markOffline();
      log.log("info", "disconnect", {
        client: this.realIp,
        vip: formatIpv4(this.address),
        reason: reasonName(reason),
      });
    } else if (reason !== Reason.PeerDisconnected) {
      log.log("warn", "refused", { client: this.realIp, reason: reasonName(reason), message });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#writer.drained(),
      new Promise((resolve) => timer = setTimeout(resolve, CLOSE_FLUSH_MS)),
    ]);
    clearTimeout(timer);
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer's reset.
    }
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
    } else {
      this.#context.log.log("error", "internal-error", {
        client: this.realIp,
        error: String(error),
      });
      await this.close(Reason.Internal, "internal error");
    }
    this.#context.ended(this);
  }

  /** Closes the session, then tells the relay. */
  async #end(reason: Reason, message: string): Promise<void> {
    await this.close(reason, message);
    this.#context.ended(this);
  }

  /**
   * Runs after each read: records that the client is alive and, when the
   * relay caps this client's byte rate, pauses the next read until the
   * client is back within it. Not reading is the cap: TCP backpressure
   * slows the client down and nothing is dropped.
   */
  #afterRead(bytes: number): Promise<void> | undefined {
    const now = performance.now();
    this.#lastHeardAt = now;
    const { maxBytesPerSec } = this.#context.config;
    if (maxBytesPerSec === 0 || bytes === 0 || this.#state === "closed") return undefined;
    this.#byteBucket ??= new TokenBucket(maxBytesPerSec, maxBytesPerSec, now);
    const waitMs = this.#byteBucket.spend(bytes, now);
    if (waitMs === 0) return undefined;
    return new Promise((resume) => {
      const timer = setTimeout(() => {
        this.#readPause = null;
        this.#lastHeardAt = performance.now(); // the pause was ours, not the client's silence
        resume();
      }, waitMs);
      this.#readPause = { timer, resume };
    });
  }

  #markOffline(): void {
    try {
      this.#context.registry.markOnline(this.address, false);
    } catch (error) {
      // The registry closes last on shutdown; a failure here must not stop the close.
      this.#context.log.log("error", "registry-error", {
        vip: formatIpv4(this.address),
        error: String(error),
      });
    }
  }

  /** Drops the timer, not just its schedule: a cleared Timeout still pins ~0.3 KiB. */
  #stopHelloTimer(): void {
    clearTimeout(this.#helloTimer);
    this.#helloTimer = undefined;
  }

  #onPacket(packet: Packet): void {
    switch (this.#state) {
      case "open":
        return this.#context.router.dispatch(this, packet);
      case "hello":
        if (packet.type !== PacketType.Hello) {
          throw new ProtocolError(
            `Cannot accept packet: the first frame must be Hello, got type 0x${
              packet.type.toString(16)
            }`,
            Reason.UnexpectedPacket,
          );
        }
        return this.#join(packet);
      case "closed":
        return;
    }
  }

  /**
   * Completes the handshake within the read loop's turn, so frames a client
   * pipelines behind its Hello are handled in order, as an open session's.
   */
  #join(hello: HelloPacket): void {
    if (hello.version !== PROTOCOL_VERSION) {
      return void this.close(
        Reason.UnsupportedVersion,
        `Cannot join: protocol version ${hello.version} is not supported, this relay speaks ${PROTOCOL_VERSION}`,
      );
    }
    const key: RegistryKey = hello.identity
      ? identityKey(hello.identity)
      : { kind: "ip", realIp: this.realIp };
    const { registry, router, log } = this.#context;
    try {
      const known = registry.lookup(key);
      this.address = registry.assign(key);
      registry.markOnline(this.address, true);
      if (known === null) {
        log.log("info", "assign", {
          client: this.realIp,
          vip: formatIpv4(this.address),
          kind: key.kind,
        });
      }
    } catch (error) {
      if (error instanceof PoolExhausted) {
        return void this.close(
          Reason.PoolExhausted,
          "Cannot assign a virtual IP: the pool is exhausted",
        );
      }
      log.log("error", "registry-error", { client: this.realIp, error: String(error) });
      return void this.close(Reason.Internal, "Cannot assign a virtual IP: registry error");
    }
    this.#stopHelloTimer();
    this.#state = "open";
    const previous = router.attach(this);
    if (previous && previous !== this) {
      void previous.close(
        Reason.Replaced,
        "a newer client with your identity or real IP took over",
      );
    }
    this.send({ type: PacketType.VirtualIP, address: this.address });
    log.log("info", "connect", {
      client: this.realIp,
      vip: formatIpv4(this.address),
      kind: key.kind,
    });
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
