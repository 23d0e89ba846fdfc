/**
 * Streaming frame decoder: accepts bytes at any chunk boundaries and hands
 * out complete packets. Frames that lie whole inside a chunk are decoded in
 * place (no copy); only a frame split across chunks is copied, into one
 * reusable buffer.
 *
 * @module
 */

import { FRAME_HEADER_BYTES, FRAME_LENGTH_BYTES } from "./constants.ts";
import { checkFrameHeader, decodeBody } from "./decode.ts";
import { readU32 } from "./layout.ts";
import type { Packet } from "./packets.ts";

/** Partial frames up to this size wait in the decoder's own small buffer. */
const SMALL_PENDING_BYTES = 1024;
const EMPTY = new Uint8Array(0);

/**
 * Lends the decoder buffers for partial frames larger than 1 KiB, so a
 * busy link borrows from a shared pool instead of allocating (and leaving
 * garbage) for every frame split across reads.
 *
 * @example Count the buffers a decoder borrows
 * ```ts
 * import { type BufferLender, encode, FrameDecoder, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * let lent = 0;
 * const lender: BufferLender = {
 *   acquire(minBytes) {
 *     lent++;
 *     return new Uint8Array(minBytes);
 *   },
 *   release() {
 *     lent--;
 *   },
 * };
 * const decoder = new FrameDecoder(lender);
 * const frame = encode({
 *   type: PacketType.ArbitraryData,
 *   connectionId: 1,
 *   payload: new Uint8Array(4096),
 * });
 * decoder.push(frame.subarray(0, 2000), () => {});
 * assert.equal(lent, 1);
 * decoder.push(frame.subarray(2000), () => {});
 * assert.equal(lent, 0);
 * ```
 */
export interface BufferLender {
  /**
   * Lends a buffer.
   *
   * @param minBytes The least size the decoder needs.
   * @returns A buffer of at least `minBytes` bytes, for the decoder's use until released.
   */
  acquire(minBytes: number): Uint8Array;
  /**
   * Takes back a buffer from {@linkcode BufferLender.acquire}; the decoder no longer uses it.
   *
   * @param buffer The buffer `acquire` returned.
   */
  release(buffer: Uint8Array): void;
}

const ALLOCATE: BufferLender = {
  acquire: (minBytes) => new Uint8Array(minBytes),
  release: () => {},
};

/**
 * Decodes the whole frames at the start of `bytes`, in order, in place (no
 * copy), and says how many bytes they took; what is left is the start of a
 * frame still to come. The header of that frame is checked as soon as it is
 * whole, so a bad length is refused before its body arrives. For a reader
 * that keeps its own buffer (and so can keep partial frames where they are);
 * {@linkcode FrameDecoder} does the buffering for one that does not.
 *
 * @example Decode what a read brought, keep the rest for the next one
 * ```ts
 * import { decodeFrames, encode, type Packet, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const ping = encode({ type: PacketType.Ping, nonce: 1 });
 * const pong = encode({ type: PacketType.Pong, nonce: 1 });
 * const read = new Uint8Array([...ping, ...pong.subarray(0, 3)]);
 * const packets: Packet[] = [];
 * const used = decodeFrames(read, (packet) => packets.push(packet));
 * assert.equal(used, ping.length);
 * assert.deepEqual(packets, [{ type: PacketType.Ping, nonce: 1 }]);
 * ```
 *
 * @param bytes Stream bytes that start at a frame boundary.
 * @param onPacket Called once per whole frame; its byte fields are views of
 * `bytes`, valid as long as `bytes` is left unchanged.
 * @returns How many bytes, from the start, the decoded frames took.
 * @throws {ProtocolError} With reason `Malformed` when the stream breaks the protocol.
 */
export function decodeFrames(bytes: Uint8Array, onPacket: (packet: Packet) => void): number {
  let offset = 0;
  while (bytes.length - offset >= FRAME_HEADER_BYTES) {
    const length = readU32(bytes, offset);
    const type = bytes[offset + FRAME_LENGTH_BYTES];
    checkFrameHeader(type, length);
    const end = offset + FRAME_HEADER_BYTES + length;
    if (end > bytes.length) break;
    onPacket(decodeBody(type, bytes.subarray(offset + FRAME_HEADER_BYTES, end)));
    offset = end;
  }
  return offset;
}

/**
 * How many more bytes the frame that starts `partial` needs to be whole: the
 * rest of its header while that is incomplete, else the rest of the frame.
 *
 * @example A frame of which three bytes have arrived
 * ```ts
 * import { encode, frameBytesNeeded, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const frame = encode({ type: PacketType.Ping, nonce: 7 });
 * assert.equal(frameBytesNeeded(frame.subarray(0, 3)), 2); // the header is 5 bytes
 * assert.equal(frameBytesNeeded(frame.subarray(0, 6)), frame.length - 6);
 * ```
 *
 * @param partial The bytes of the frame so far (fewer than the whole frame).
 * @returns The bytes still to come before the header, or the frame, is whole.
 */
export function frameBytesNeeded(partial: Uint8Array): number {
  if (partial.length < FRAME_HEADER_BYTES) return FRAME_HEADER_BYTES - partial.length;
  return FRAME_HEADER_BYTES + readU32(partial, 0) - partial.length;
}

/**
 * Decodes a byte stream into packets, whatever the chunk boundaries. Frames
 * that lie whole inside a chunk are decoded in place (no copy); only a frame
 * split across chunks is copied, into one reusable buffer.
 *
 * Payload views passed to `onPacket` point into the pushed chunk or into the
 * decoder's own buffer: they are valid only during the callback, so copy
 * what must outlive it. After a {@linkcode ProtocolError} the stream is
 * unrecoverable; discard the decoder.
 *
 * @example Decode a stream that arrives one byte at a time
 * ```ts
 * import { encode, FrameDecoder, type Packet, PacketType } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const stream = new Uint8Array([
 *   ...encode({ type: PacketType.Ping, nonce: 9 }),
 *   ...encode({ type: PacketType.Pong, nonce: 9 }),
 * ]);
 * const decoder = new FrameDecoder();
 * const packets: Packet[] = [];
 * for (const byte of stream) decoder.push(Uint8Array.of(byte), (packet) => packets.push(packet));
 * assert.deepEqual(packets, [
 *   { type: PacketType.Ping, nonce: 9 },
 *   { type: PacketType.Pong, nonce: 9 },
 * ]);
 * assert.equal(decoder.bufferedBytes, 0);
 * ```
 */
export class FrameDecoder {
  readonly #lender: BufferLender;
  #small: Uint8Array | null = null;
  /** Holds the partial frame: EMPTY, #small, or a buffer borrowed from the lender. */
  #pending: Uint8Array = EMPTY;
  #pendingLength = 0;
  /** Whole frame size of the pending frame, or 0 while its header is incomplete. */
  #pendingFrameBytes = 0;

  /**
   * Creates a decoder.
   *
   * @param lender Supplies buffers for partial frames over 1 KiB; by default they are allocated.
   */
  constructor(lender: BufferLender = ALLOCATE) {
    this.#lender = lender;
  }

  /**
   * Bytes held of a frame that is not complete yet.
   *
   * @returns 0 between frames, else how much of the next frame has arrived.
   */
  get bufferedBytes(): number {
    return this.#pendingLength;
  }

  /**
   * Feeds `chunk` and calls `onPacket` for every frame it completes, in
   * order. A header is checked as soon as it is whole, before its body is
   * buffered, so a bad length is refused without waiting for (or storing) it.
   *
   * @param chunk The next bytes of the stream, of any length.
   * @param onPacket Called once per completed packet; its byte fields are valid
   * only during the call.
   * @throws {ProtocolError} With reason `Malformed` when the stream breaks the protocol.
   */
  push(chunk: Uint8Array, onPacket: (packet: Packet) => void): void {
    let offset = 0;
    if (this.#pendingLength > 0) {
      offset = this.#completePending(chunk, onPacket);
      if (this.#pendingLength > 0) return;
    }
    offset += decodeFrames(offset === 0 ? chunk : chunk.subarray(offset), onPacket);
    if (offset < chunk.length) this.#stash(chunk.subarray(offset));
  }

  /**
   * Drops the partial-frame buffers while no frame is pending, so an idle
   * peer pins no memory. Does nothing while part of a frame is held.
   */
  releaseIdleBuffer(): void {
    if (this.#pendingLength !== 0) return;
    this.#returnBorrowed();
    this.#small = null;
    this.#pending = EMPTY;
  }

  #completePending(chunk: Uint8Array, onPacket: (packet: Packet) => void): number {
    let offset = 0;
    if (this.#pendingFrameBytes === 0) {
      offset = this.#append(chunk, FRAME_HEADER_BYTES - this.#pendingLength);
      if (this.#pendingLength < FRAME_HEADER_BYTES) return offset;
      this.#startFrame();
    }
    offset += this.#append(chunk.subarray(offset), this.#pendingFrameBytes - this.#pendingLength);
    if (this.#pendingLength < this.#pendingFrameBytes) return offset;
    const end = this.#pendingFrameBytes;
    this.#pendingLength = 0;
    this.#pendingFrameBytes = 0;
    const type = this.#pending[FRAME_LENGTH_BYTES];
    onPacket(decodeBody(type, this.#pending.subarray(FRAME_HEADER_BYTES, end)));
    this.#returnBorrowed();
    return offset;
  }

  /** Gives a borrowed buffer back once no partial frame needs it. */
  #returnBorrowed(): void {
    if (this.#pending === EMPTY || this.#pending === this.#small) return;
    this.#lender.release(this.#pending);
    this.#pending = this.#small ?? EMPTY;
  }

  /**
   * Parses the buffered header. The buffer grows as the body arrives, not
   * here: a peer that sends a header and stalls pins the small buffer only.
   */
  #startFrame(): void {
    const length = readU32(this.#pending, 0);
    checkFrameHeader(this.#pending[FRAME_LENGTH_BYTES], length);
    this.#pendingFrameBytes = FRAME_HEADER_BYTES + length;
  }

  #stash(rest: Uint8Array): void {
    this.#pendingLength = 0;
    this.#pendingFrameBytes = 0;
    this.#reserve(FRAME_HEADER_BYTES);
    const used = this.#append(rest, FRAME_HEADER_BYTES);
    if (this.#pendingLength < FRAME_HEADER_BYTES) return;
    this.#startFrame();
    this.#append(rest.subarray(used), this.#pendingFrameBytes - this.#pendingLength);
  }

  /** Copies up to `max` bytes of `source` into the pending buffer; returns how many. */
  #append(source: Uint8Array, max: number): number {
    const take = Math.min(max, source.length);
    this.#reserve(this.#pendingLength + take);
    this.#pending.set(source.subarray(0, take), this.#pendingLength);
    this.#pendingLength += take;
    return take;
  }

  #reserve(bytes: number): void {
    if (this.#pending.length >= bytes) return;
    let grown: Uint8Array;
    if (bytes <= SMALL_PENDING_BYTES) {
      this.#small ??= new Uint8Array(SMALL_PENDING_BYTES);
      grown = this.#small;
    } else {
      // Once past the small buffer, borrow for the whole frame: it grows at most once more.
      grown = this.#lender.acquire(Math.max(bytes, this.#pendingFrameBytes));
    }
    grown.set(this.#pending.subarray(0, this.#pendingLength));
    this.#returnBorrowed();
    this.#pending = grown;
  }
}
