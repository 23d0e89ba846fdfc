/**
 * The relay-link wire (docs/CLUSTER.md, "Relay links"): pure functions over
 * bytes, no I/O. A link carries the same 5-byte-header framing as a client
 * link, with its own frame types: the mutual handshake, then client frames
 * inside a Routed envelope that names the two clients, plus link liveness
 * and the notice that a client left.
 *
 * @module
 */

import { readU32, writeU32 } from "../../protocol/layout.ts";
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from "../../protocol/constants.ts";
import { decode } from "../../protocol/codec.ts";
import type { Packet } from "../../protocol/packets.ts";
import { encodedLength, encodeInto } from "../../protocol/codec.ts";

/** The relay-link protocol's version, in its Hello. */
export const MESH_VERSION = 1;

/** Bytes of a relay's instance id. */
export const NODE_ID_BYTES = 16;
/** Bytes of a handshake nonce. */
export const MESH_NONCE_BYTES = 32;
/** Bytes of a handshake MAC (HMAC-SHA-256). */
export const MESH_MAC_BYTES = 32;

/** Frame types of a relay link. */
export const MeshType = {
  /** Dialer → acceptor: version u8, node id, nonce. */
  Hello: 0x40,
  /** Acceptor → dialer: node id, nonce, MAC proving the key. */
  Welcome: 0x41,
  /** Dialer → acceptor: MAC proving the key. */
  Proof: 0x42,
  /** A client frame between two clients: from u32, to u32, aux u32, then the frame. */
  Routed: 0x43,
  /** The client at an address left the sending relay: address u32. */
  Gone: 0x44,
  /** Liveness: nonce u32, answered by Pong. */
  Ping: 0x45,
  /** Liveness answer: the Ping's nonce. */
  Pong: 0x46,
  /** Acceptor → dialer after a good Proof: the link is open (u32 0). */
  Ready: 0x47,
  /**
   * The sender no longer routes to the receiver's client at an address
   * (address u32): answers to requests it made that client will find no one.
   */
  Dropped: 0x48,
} as const;

/** Bytes of a Routed envelope before its inner frame. */
export const ROUTED_ENVELOPE_BYTES = 12;

const HELLO_BODY = 1 + NODE_ID_BYTES + MESH_NONCE_BYTES;
const WELCOME_BODY = NODE_ID_BYTES + MESH_NONCE_BYTES + MESH_MAC_BYTES;

/** Exact body length of each fixed-size type. */
const FIXED_BODY: Readonly<Record<number, number>> = {
  [MeshType.Hello]: HELLO_BODY,
  [MeshType.Welcome]: WELCOME_BODY,
  [MeshType.Proof]: MESH_MAC_BYTES,
  [MeshType.Gone]: 4,
  [MeshType.Ping]: 4,
  [MeshType.Pong]: 4,
  [MeshType.Ready]: 4,
  [MeshType.Dropped]: 4,
};

/** Bytes a link reads into: room for several of the largest frames, so a bulk read is one call. */
const READ_BUFFER_BYTES = 256 * 1024;

/** Largest body of a relay-link frame: a Routed envelope around the largest client frame. */
export const MAX_MESH_BODY_BYTES = ROUTED_ENVELOPE_BYTES + MAX_FRAME_BYTES;

/** A relay link broke its protocol: the link is closed, naming what was wrong. */
export class MeshProtocolError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MeshProtocolError";
  }
}

/** Throws unless `type` is a relay-link type whose body may be `length` bytes. */
export function checkMeshHeader(type: number, length: number): void {
  const fixed = FIXED_BODY[type];
  if (fixed !== undefined) {
    if (length !== fixed) {
      throw new MeshProtocolError(`frame type 0x${type.toString(16)} has length ${length}`);
    }
    return;
  }
  if (type !== MeshType.Routed) {
    throw new MeshProtocolError(`unknown frame type 0x${type.toString(16)}`);
  }
  if (length < ROUTED_ENVELOPE_BYTES + FRAME_HEADER_BYTES || length > MAX_MESH_BODY_BYTES) {
    throw new MeshProtocolError(`a Routed frame has length ${length}`);
  }
}

/** A Routed frame, decoded. */
export interface Routed {
  /** The client the frame is from, as the receiving relay knows it (a client of the sender). */
  readonly from: number;
  /** The client of the receiving relay it concerns. */
  readonly to: number;
  /** An accepted SocketConnectionResponse: the sender's id of its end; otherwise 0. */
  readonly aux: number;
  /** The client frame; byte fields are views into the input. */
  readonly packet: Packet;
}

/**
 * Decodes a Routed frame's body: the envelope, then exactly one client frame
 * filling the rest, checked by the client protocol's own decoder.
 */
export function decodeRouted(body: Uint8Array): Routed {
  const inner = body.subarray(ROUTED_ENVELOPE_BYTES);
  let decoded;
  try {
    decoded = decode(inner);
  } catch (error) {
    throw new MeshProtocolError(`a Routed frame holds a bad client frame: ${error}`);
  }
  if (decoded === null || decoded.bytesUsed !== inner.length) {
    throw new MeshProtocolError("a Routed frame's client frame does not fill it");
  }
  return {
    from: readU32(body, 0),
    to: readU32(body, 4),
    aux: readU32(body, 8),
    packet: decoded.packet,
  };
}

/** Bytes of a Routed frame around `packet`. */
export function routedLength(packet: Packet): number {
  return FRAME_HEADER_BYTES + ROUTED_ENVELOPE_BYTES + encodedLength(packet);
}

/** Writes a Routed frame at `offset` of `target`; returns the bytes written. */
export function encodeRoutedInto(
  target: Uint8Array,
  offset: number,
  from: number,
  to: number,
  aux: number,
  packet: Packet,
): number {
  const inner = encodedLength(packet);
  const body = ROUTED_ENVELOPE_BYTES + inner;
  writeHeader(target, offset, MeshType.Routed, body);
  writeU32(target, offset + FRAME_HEADER_BYTES, from);
  writeU32(target, offset + FRAME_HEADER_BYTES + 4, to);
  writeU32(target, offset + FRAME_HEADER_BYTES + 8, aux);
  encodeInto(packet, target, offset + FRAME_HEADER_BYTES + ROUTED_ENVELOPE_BYTES);
  return FRAME_HEADER_BYTES + body;
}

/** A frame of one of the fixed-size types, with `body`. */
export function encodeMesh(type: number, body: Uint8Array): Uint8Array {
  checkMeshHeader(type, body.length);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  writeHeader(frame, 0, type, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/** A Gone, Ping or Pong frame carrying `value`. */
export function encodeMeshU32(type: number, value: number): Uint8Array {
  const body = new Uint8Array(4);
  writeU32(body, 0, value);
  return encodeMesh(type, body);
}

/** The Hello's body: version, node id, nonce. */
export function helloBody(node: Uint8Array, nonce: Uint8Array): Uint8Array {
  const body = new Uint8Array(HELLO_BODY);
  body[0] = MESH_VERSION;
  body.set(node, 1);
  body.set(nonce, 1 + NODE_ID_BYTES);
  return body;
}

/** The Hello's fields; throws on another version. */
export function parseHello(body: Uint8Array): { node: Uint8Array; nonce: Uint8Array } {
  if (body[0] !== MESH_VERSION) {
    throw new MeshProtocolError(`relay-link version ${body[0]} is not ${MESH_VERSION}`);
  }
  return {
    node: body.slice(1, 1 + NODE_ID_BYTES),
    nonce: body.slice(1 + NODE_ID_BYTES),
  };
}

/** The Welcome's body: node id, nonce, MAC. */
export function welcomeBody(node: Uint8Array, nonce: Uint8Array, mac: Uint8Array): Uint8Array {
  const body = new Uint8Array(WELCOME_BODY);
  body.set(node, 0);
  body.set(nonce, NODE_ID_BYTES);
  body.set(mac, NODE_ID_BYTES + MESH_NONCE_BYTES);
  return body;
}

/** The Welcome's fields. */
export function parseWelcome(
  body: Uint8Array,
): { node: Uint8Array; nonce: Uint8Array; mac: Uint8Array } {
  return {
    node: body.slice(0, NODE_ID_BYTES),
    nonce: body.slice(NODE_ID_BYTES, NODE_ID_BYTES + MESH_NONCE_BYTES),
    mac: body.slice(NODE_ID_BYTES + MESH_NONCE_BYTES),
  };
}

function writeHeader(target: Uint8Array, offset: number, type: number, body: number): void {
  writeU32(target, offset, body);
  target[offset + 4] = type;
}

/**
 * Splits a relay link's byte stream into frames: read into {@linkcode space},
 * report the count to {@linkcode filled}, then {@linkcode take} whole frames
 * until it returns null. A link has few of these, so one fixed buffer holds
 * any partial frame.
 */
export class MeshFrameReader {
  readonly #buffer = new Uint8Array(READ_BUFFER_BYTES);
  /** Where the next frame starts. */
  #start = 0;
  /** Where the bytes read end. */
  #end = 0;

  /** Where the next read goes: the free tail, once what was taken is dropped (never empty). */
  space(): Uint8Array {
    if (this.#start > 0) {
      // At most one partial frame is left: far less than the buffer.
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    return this.#buffer.subarray(this.#end);
  }

  /** Counts `count` bytes read into {@linkcode space}. */
  filled(count: number): void {
    this.#end += count;
  }

  /**
   * The next whole frame, its body a view valid until the next
   * {@linkcode space}; null while only part of one is read. Throws
   * {@linkcode MeshProtocolError} on a bad header, before its body is read.
   */
  take(): { type: number; body: Uint8Array } | null {
    const at = this.#start;
    if (this.#end - at < FRAME_HEADER_BYTES) return null;
    const length = readU32(this.#buffer, at);
    const type = this.#buffer[at + 4];
    checkMeshHeader(type, length);
    const end = at + FRAME_HEADER_BYTES + length;
    if (end > this.#end) return null;
    this.#start = end;
    return { type, body: this.#buffer.subarray(at + FRAME_HEADER_BYTES, end) };
  }
}
