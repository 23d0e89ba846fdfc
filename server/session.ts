/**
 * One client's link to the relay: the handshake, the read loop, the
 * outgoing queue and the close. Its pacing lives in {@linkcode ClientPacing},
 * the ids it may name in {@linkcode SessionBook}.
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
import type { Logger } from "./log.ts";
import { ClientPacing } from "./pacing.ts";
import { identityKey, PoolExhausted, type Registry, type RegistryKey } from "./registry.ts";
import type { Router } from "./router.ts";
import { SessionBook } from "./session_book.ts";

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

type SessionState = "hello" | "open" | "closed";

/** The relay's side of one client's TCP link. */
export class ClientSession extends SessionBook {
  // Static after construction.
  readonly #conn: Deno.Conn;
  readonly #context: SessionContext;
  readonly #writer: FrameWriter;
  readonly #pacing: ClientPacing;
  /** The peer's IP without its port: the registry key of clients without an identity. */
  readonly realIp: string;

  // Set once by the handshake.
  /** The client's virtual IPv4 as a u32; 0 until the handshake completes. */
  address = 0;

  // Owned by the read loop and close().
  #state: SessionState = "hello";
  #helloTimer: ReturnType<typeof setTimeout> | undefined;

  /** Wraps an accepted TCP connection; call {@linkcode run} to serve it. */
  constructor(conn: Deno.Conn, context: SessionContext) {
    super();
    this.#conn = conn;
    this.#context = context;
    this.realIp = (conn.remoteAddr as Deno.NetAddr).hostname;
    this.#writer = new FrameWriter(
      conn,
      () => this.close(Reason.PeerDisconnected, "write failed"),
      CONGESTED_QUEUE_BYTES,
    );
    this.#pacing = new ClientPacing(context.config, this);
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
      (bytes) => this.#pacing.afterRead(bytes),
    ).then(
      () => this.#end(Reason.PeerDisconnected, "link closed by the client"),
      (error) => this.#endAfterReadError(error),
    );
  }

  /** Pings a quiet client, closes a silent one (see {@linkcode ClientPacing.checkLiveness}). */
  checkLiveness(now: number): void {
    if (this.#state === "open") this.#pacing.checkLiveness(now);
  }

  /** Takes one request token; false when the client is over its request rate. */
  takeRequestToken(now: number): boolean {
    return this.#pacing.takeRequestToken(now);
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

  /** Undefined unless congested, else resolves once this client's queue is down to half the mark. */
  room(): Promise<void> | undefined {
    return this.#writer.room();
  }

  /** Queues data on one of this client's ends; its size is already bounded by credit. */
  sendData(connectionId: number, payload: Uint8Array): void {
    if (this.#state !== "closed") this.#writer.writeData(connectionId, payload);
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
    this.#pacing.stop();
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
    await this.#writer.drained(CLOSE_FLUSH_MS);
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
