/**
 * One open relay link: the socket to another relay of the cluster after the
 * handshake, the clients of that relay this one routes to (one
 * {@linkcode RemotePeer} each), and the batched writer they share.
 *
 * @module
 */

import { PacketType } from "../../protocol/packet_type.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { Reason, reasonName } from "../../protocol/reason.ts";
import type { Packet } from "../../protocol/packets.ts";
import { readU32 } from "../../protocol/layout.ts";
import { writeAll } from "../../transport/frame_writer.ts";
import {
  acquireSlabBuffer,
  acquireSmallBuffer,
  releaseBuffer,
  SLAB_BUFFER_BYTES,
  SMALL_BUFFER_BYTES,
} from "../../transport/buffer_pool.ts";
import type { Dispatch, Peer } from "../peer.ts";
import type { Logger } from "../log.ts";
import {
  decodeRouted,
  encodeMeshU32,
  encodeRoutedInto,
  type MeshFrameReader,
  MeshProtocolError,
  MeshType,
  routedLength,
} from "./mesh_frames.ts";
import { RemotePeer, type RemotePeerLink } from "./remote_peer.ts";
import type { MeshSocket } from "./mesh_handshake.ts";

/** Bytes one write of a link carries at most: frames are batched up to this (a pooled slab). */
const BATCH_BYTES = SLAB_BUFFER_BYTES;
/**
 * Queued bytes at which the link counts as congested: the clients behind it
 * then hold back credit (as a client's own link does at its mark), so
 * senders slow down instead of the queue growing.
 */
const CONGESTED_BYTES = 1024 * 1024;
/**
 * Queued control bytes (everything but data) at which the other relay is
 * taken to have stopped reading. Data is bounded by the credit the buffer
 * budget gives (per client behind the link and relay-wide), not here.
 */
const MAX_QUEUED_CONTROL_BYTES = 64 * 1024 * 1024;

/** What a link asks of the relay it belongs to. */
export interface MeshLinkHost {
  readonly log: Logger;
  /** Most clients of the other relay this link routes to at once. */
  readonly maxPeers: number;
  /** Adds a client of the other relay to the router; null when a client of this relay holds the address. */
  attachRemote(peer: Peer): Dispatch | null;
  /** Whether a client of this relay holds `address` now. */
  holdsLocally(address: number): boolean;
  /** Removes it from the router: its connections close, its requests fail. */
  detach(peer: Peer, reason: Reason): void;
  /** The link ended (after every remote peer left). */
  ended(link: MeshLink, reason: string): void;
}

interface Batch {
  /** A pooled buffer: small while the batch holds only a few control frames. */
  bytes: Uint8Array;
  length: number;
  /** Data bytes (as the budget counts them) per remote peer, told once written; null: none. */
  data: Map<RemotePeer, number> | null;
  /** Bytes of frames other than data in it. */
  controlBytes: number;
}

/** An authenticated link to one other relay. */
export class MeshLink implements RemotePeerLink {
  /** The other relay's node id, as 32 hex digits. */
  readonly node: string;
  /** The other relay's IP, as the socket saw it. */
  readonly remoteIp: string;

  // Static after construction.
  readonly #socket: MeshSocket & { close(): void };
  readonly #reader: MeshFrameReader;
  readonly #host: MeshLinkHost;

  // Owned by the read loop, the router's sends and close().
  /** The clients of the other relay routed here, by address. */
  readonly #peers = new Map<number, RemotePeer>();
  /** Addresses of this relay's clients the other relay has heard of over this link. */
  readonly #exported = new Set<number>();
  #open: Batch | null = null;
  readonly #full: Batch[] = [];
  #queued = 0;
  #queuedControl = 0;
  /** performance.now() of the last write that completed, or of the queue's last start from empty. */
  #progressAt = performance.now();
  #flushing = false;
  #roomWaiters: (() => void)[] = [];
  #closed = false;
  /** performance.now() of the last byte read, and of the last Ping sent. */
  #heardAt = performance.now();
  #pingedAt = 0;

  /** A link over `socket`, whose handshake read into `reader` (it may hold frames already). */
  constructor(
    socket: MeshSocket & { close(): void },
    reader: MeshFrameReader,
    node: string,
    remoteIp: string,
    host: MeshLinkHost,
  ) {
    this.#socket = socket;
    this.#reader = reader;
    this.node = node;
    this.remoteIp = remoteIp;
    this.#host = host;
  }

  /** Whether the link has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Clients of the other relay this link routes to now. */
  get peerCount(): number {
    return this.#peers.size;
  }

  /** Whether more is queued than the link is taking. */
  get congested(): boolean {
    return this.#queued >= CONGESTED_BYTES;
  }

  /** Undefined unless congested, else resolves once the queue is down to half the mark. */
  room(): Promise<void> | undefined {
    if (!this.congested) return undefined;
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Reads frames until the link ends; never rejects. */
  async run(): Promise<void> {
    let reason = "closed by the other relay";
    try {
      this.#drain();
      for (;;) {
        const count = await this.#socket.read(this.#reader.space());
        if (count === null) break;
        this.#heardAt = performance.now();
        this.#reader.filled(count);
        this.#drain();
      }
    } catch (error) {
      if (!this.#closed) {
        reason = error instanceof MeshProtocolError || error instanceof ProtocolError
          ? `protocol error: ${error.message}`
          : `read failed: ${error instanceof Error ? error.message : error}`;
        this.#host.log.log("warn", "mesh-link-error", { relay: this.remoteIp, error: reason });
      }
    }
    this.close(reason);
  }

  /** Pings a quiet link; closes one silent past `timeoutMs`. */
  checkLiveness(now: number, keepaliveMs: number, timeoutMs: number): void {
    if (this.#closed) return;
    if (now - this.#heardAt > timeoutMs) {
      this.#host.log.log("warn", "mesh-link-timeout", { relay: this.remoteIp });
      return this.close("the other relay went silent");
    }
    if (this.#queued > 0 && now - this.#progressAt > timeoutMs) {
      // It answers Pings (queued behind the rest) yet takes nothing: as good as gone.
      this.#host.log.log("warn", "mesh-link-stalled", { relay: this.remoteIp });
      return this.close("the other relay stopped reading");
    }
    if (now - this.#heardAt > keepaliveMs && now - this.#pingedAt > keepaliveMs) {
      this.#pingedAt = now;
      this.#queueRaw(encodeMeshU32(MeshType.Ping, 0));
    }
  }

  /**
   * The peer for the other relay's client at `address`, made and attached
   * on first use; null while a client of this relay holds the address, or
   * when the link routes to as many clients as it may.
   */
  peerFor(address: number): RemotePeer | null {
    const known = this.#peers.get(address);
    if (known !== undefined) return known;
    if (this.#closed || this.#peers.size >= this.#host.maxPeers) return null;
    const peer = new RemotePeer(this, address);
    const dispatch = this.#host.attachRemote(peer);
    if (dispatch === null) return null;
    peer.attach(dispatch);
    this.#peers.set(address, peer);
    return peer;
  }

  /** Tells the other relay that this relay's client at `address` left, if it ever heard of it. */
  gone(address: number): void {
    if (!this.#exported.delete(address) || this.#closed) return;
    this.#queueRaw(encodeMeshU32(MeshType.Gone, address));
  }

  /**
   * Forgets a remote peer this relay closed, telling the other relay that
   * what it routed here is gone and that answers for it will find no one.
   */
  forget(peer: RemotePeer, reason: Reason): void {
    if (this.#peers.get(peer.address) !== peer) return;
    this.#peers.delete(peer.address);
    peer.shut(true);
    this.#queueRaw(encodeMeshU32(MeshType.Dropped, peer.address));
    this.#host.detach(peer, reason);
    this.#host.log.log("debug", "mesh-peer-closed", {
      relay: this.remoteIp,
      reason: reasonName(reason),
    });
  }

  /** Queues a Routed frame; see {@linkcode RemotePeerLink.route}. */
  route(from: number, to: number, aux: number, packet: Packet, owner: RemotePeer | null): void {
    if (this.#closed) return;
    // Sent for the router: `from` is a client of this relay, which the other relay now knows.
    if (owner !== null && this.#host.holdsLocally(from)) this.#exported.add(from);
    const size = routedLength(packet);
    const batch = this.#batchFor(size);
    batch.length += encodeRoutedInto(batch.bytes, batch.length, from, to, aux, packet);
    if (packet.type === PacketType.ArbitraryData) {
      if (owner !== null) {
        const bytes = RemotePeer.dataBytes(packet.payload.length);
        const data = batch.data ??= new Map();
        data.set(owner, (data.get(owner) ?? 0) + bytes);
      }
    } else {
      batch.controlBytes += size;
      this.#queuedControl += size;
    }
    this.#queue(size);
  }

  /**
   * Ends the link: the socket closes and every client of the other relay
   * leaves this relay's router (their connections close with
   * PeerDisconnected, requests to them fail). Idempotent.
   */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close();
    } catch {
      // Closed already.
    }
    const peers = [...this.#peers.values()];
    this.#peers.clear();
    for (const peer of peers) {
      peer.shut(false);
      this.#host.detach(peer, Reason.PeerDisconnected);
    }
    // Batches not in flight go back to the pool; the one being written goes when its write ends.
    for (const batch of this.#full.splice(0)) releaseBuffer(batch.bytes);
    if (this.#open !== null) releaseBuffer(this.#open.bytes);
    this.#open = null;
    this.#queued = this.#queuedControl = 0;
    this.#wakeRoom();
    this.#host.ended(this, reason);
  }

  /** Handles every whole frame read so far. */
  #drain(): void {
    for (let frame = this.#reader.take(); frame !== null; frame = this.#reader.take()) {
      if (this.#closed) return;
      this.#onFrame(frame.type, frame.body);
    }
  }

  #onFrame(type: number, body: Uint8Array): void {
    switch (type) {
      case MeshType.Routed:
        return this.#onRouted(body);
      case MeshType.Gone: {
        const peer = this.#peers.get(readU32(body, 0));
        if (peer === undefined) return;
        this.#peers.delete(peer.address);
        peer.shut(false);
        this.#host.detach(peer, Reason.PeerDisconnected);
        return;
      }
      case MeshType.Dropped: {
        // Requests its clients made ours are answered into the void: forget them now.
        const address = readU32(body, 0);
        for (const peer of this.#peers.values()) peer.forgetRequestsTo(address);
        return;
      }
      case MeshType.Ping:
        return this.#queueRaw(encodeMeshU32(MeshType.Pong, readU32(body, 0)));
      case MeshType.Pong:
        return;
      default:
        throw new MeshProtocolError(`frame type 0x${type.toString(16)} after the handshake`);
    }
  }

  #onRouted(body: Uint8Array): void {
    const routed = decodeRouted(body);
    const packet = routed.packet;
    if (isRequest(packet.type) && !this.#host.holdsLocally(routed.to)) {
      // A stale lookup sent it here: Offline, and the other relay forgets its peer for `to`.
      this.route(routed.to, routed.from, 0, {
        type: PacketType.RequestFailed,
        requestId: (packet as { requestId: number }).requestId,
        reason: Reason.Offline,
      }, null);
      return this.#queueRaw(encodeMeshU32(MeshType.Gone, routed.to));
    }
    let peer = this.#peers.get(routed.from);
    if (peer === undefined && isRequest(packet.type)) {
      peer = this.peerFor(routed.from) ?? undefined;
      if (peer === undefined) {
        // A client of this relay holds that address now (it moved here), or the link is full.
        return this.route(routed.to, routed.from, 0, {
          type: PacketType.RequestFailed,
          requestId: (packet as { requestId: number }).requestId,
          reason: Reason.Offline,
        }, null);
      }
    }
    if (peer === undefined) {
      // A late frame of a client this relay no longer routes to: an accept it undoes.
      if (packet.type === PacketType.SocketConnectionResponse && packet.accepted) {
        this.route(routed.to, routed.from, 0, {
          type: PacketType.SocketClosed,
          connectionId: routed.aux,
          reason: Reason.PeerDisconnected,
        }, null);
      }
      return;
    }
    // A frame for a client that left here finds its ends closed, its requests Offline.
    try {
      peer.deliver(routed);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // This client's state differs between the relays: it alone is let go, not the link.
      this.#host.log.log("warn", "mesh-peer-error", {
        relay: this.remoteIp,
        error: error.message,
      });
      this.forget(peer, Reason.Internal);
    }
  }

  /**
   * The open batch with room for `size` more bytes. Buffers come from the
   * pool: a lone control frame (a round trip's request) takes a small one,
   * promoted to a full one as frames join it.
   */
  #batchFor(size: number): Batch {
    let batch = this.#open;
    if (batch !== null) {
      if (batch.length + size <= batch.bytes.length) return batch;
      if (batch.bytes.length === SMALL_BUFFER_BYTES && batch.length + size <= BATCH_BYTES) {
        const large = acquireSlabBuffer();
        large.set(batch.bytes.subarray(0, batch.length));
        releaseBuffer(batch.bytes);
        batch.bytes = large;
        return batch;
      }
      this.#full.push(batch);
    }
    batch = {
      bytes: size <= SMALL_BUFFER_BYTES ? acquireSmallBuffer() : acquireSlabBuffer(),
      length: 0,
      data: null,
      controlBytes: 0,
    };
    this.#open = batch;
    return batch;
  }

  #queueRaw(frame: Uint8Array): void {
    if (this.#closed) return;
    const batch = this.#batchFor(frame.length);
    batch.bytes.set(frame, batch.length);
    batch.length += frame.length;
    batch.controlBytes += frame.length;
    this.#queuedControl += frame.length;
    this.#queue(frame.length);
  }

  /** Counts `size` more bytes queued, and makes sure a flush runs. */
  #queue(size: number): void {
    if (this.#queued === 0) this.#progressAt = performance.now();
    this.#queued += size;
    if (this.#queuedControl > MAX_QUEUED_CONTROL_BYTES) {
      this.#host.log.log("warn", "mesh-link-stalled", { relay: this.remoteIp });
      return this.close("the other relay stopped reading");
    }
    if (this.#flushing) return;
    this.#flushing = true;
    // After the current turn, so the frames it queues go in one write.
    queueMicrotask(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    try {
      for (;;) {
        if (this.#closed) return;
        const batch = this.#full.shift() ?? this.#open;
        if (batch === null || batch === undefined || batch.length === 0) break;
        if (batch === this.#open) this.#open = null;
        try {
          await writeAll(this.#socket, batch.bytes.subarray(0, batch.length));
        } finally {
          releaseBuffer(batch.bytes);
        }
        if (this.#closed) return;
        this.#queued -= batch.length;
        this.#queuedControl -= batch.controlBytes;
        this.#progressAt = performance.now();
        if (batch.data !== null) {
          for (const [peer, bytes] of batch.data) peer.dataWritten?.(bytes);
        }
        if (this.#queued <= CONGESTED_BYTES / 2) this.#wakeRoom();
      }
    } catch (error) {
      if (!this.#closed) {
        this.#host.log.log("warn", "mesh-link-error", {
          relay: this.remoteIp,
          error: `write failed: ${error instanceof Error ? error.message : error}`,
        });
      }
      this.close("write failed");
    } finally {
      this.#flushing = false;
    }
  }

  #wakeRoom(): void {
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** Whether a client frame of `type` starts a request. */
function isRequest(type: number): boolean {
  return type === PacketType.SocketStatusRequest || type === PacketType.EchoRequest ||
    type === PacketType.SocketConnectionRequest;
}
