/**
 * The relay-link handshake: both relays prove they hold the mesh key without
 * sending it. Each side's MAC (HMAC-SHA-256 under the key) covers both
 * nonces and both node ids, in an order and with a label of its own, so no
 * message can be replayed, reflected or reused on another link.
 *
 * Dialer → Hello(version, node, nonce); acceptor → Welcome(node, nonce, MAC);
 * dialer → Proof(MAC); acceptor → Ready. Nothing else moves before Ready.
 *
 * @module
 */

import { writeAll } from "../../transport/frame_writer.ts";
import {
  encodeMesh,
  encodeMeshU32,
  helloBody,
  MESH_NONCE_BYTES,
  type MeshFrameReader,
  MeshProtocolError,
  MeshType,
  parseHello,
  parseWelcome,
  welcomeBody,
} from "./mesh_frames.ts";

/** What the handshake reads from and writes to: a relay link's socket. */
export interface MeshSocket {
  /** Reads into `buffer`; null at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes`; returns how many. */
  write(bytes: Uint8Array): Promise<number>;
}

const encoder = new TextEncoder();
const DIALER_LABEL = encoder.encode("alphanet relay link v1 dialer");
const ACCEPTOR_LABEL = encoder.encode("alphanet relay link v1 acceptor");

/** The mesh key as an HMAC key that can sign and verify, never be exported. */
export function importMeshKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    new Uint8Array(raw),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

function transcript(label: Uint8Array, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const total = parts.reduce((sum, part) => sum + part.length, label.length);
  const out = new Uint8Array(total);
  out.set(label, 0);
  let at = label.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function mac(key: CryptoKey, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
}

/** Constant-time in the MAC's bytes: WebCrypto's verify. */
function verify(key: CryptoKey, tag: Uint8Array, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  return crypto.subtle.verify("HMAC", key, new Uint8Array(tag), data);
}

/** The next frame of `type`; anything else, or the end of the stream, is a refusal. */
async function expect(
  socket: MeshSocket,
  reader: MeshFrameReader,
  type: number,
): Promise<Uint8Array> {
  for (;;) {
    const frame = reader.take();
    if (frame !== null) {
      if (frame.type !== type) {
        throw new MeshProtocolError(
          `expected frame type 0x${type.toString(16)} in the handshake, got 0x${
            frame.type.toString(16)
          }`,
        );
      }
      return frame.body.slice();
    }
    const count = await socket.read(reader.space());
    if (count === null) throw new MeshProtocolError("the link closed during the handshake");
    reader.filled(count);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Runs the dialer's side; returns the acceptor's node id. Throws
 * {@linkcode MeshProtocolError} when the acceptor does not prove the key.
 */
export async function dialHandshake(
  socket: MeshSocket,
  reader: MeshFrameReader,
  key: CryptoKey,
  self: Uint8Array,
): Promise<Uint8Array> {
  const nonce = crypto.getRandomValues(new Uint8Array(MESH_NONCE_BYTES));
  await writeAll(socket, encodeMesh(MeshType.Hello, helloBody(self, nonce)));
  const welcome = parseWelcome(await expect(socket, reader, MeshType.Welcome));
  if (sameBytes(welcome.node, self)) throw new MeshProtocolError("the link leads back to itself");
  const theirs = transcript(ACCEPTOR_LABEL, nonce, welcome.nonce, self, welcome.node);
  if (!await verify(key, welcome.mac, theirs)) {
    throw new MeshProtocolError("the other relay does not hold the mesh key");
  }
  const ours = transcript(DIALER_LABEL, welcome.nonce, nonce, welcome.node, self);
  await writeAll(socket, encodeMesh(MeshType.Proof, await mac(key, ours)));
  await expect(socket, reader, MeshType.Ready);
  return welcome.node;
}

/**
 * Runs the acceptor's side; returns the dialer's node id. Throws
 * {@linkcode MeshProtocolError} when the dialer does not prove the key.
 */
export async function acceptHandshake(
  socket: MeshSocket,
  reader: MeshFrameReader,
  key: CryptoKey,
  self: Uint8Array,
): Promise<Uint8Array> {
  const hello = parseHello(await expect(socket, reader, MeshType.Hello));
  if (sameBytes(hello.node, self)) throw new MeshProtocolError("the link comes from itself");
  const nonce = crypto.getRandomValues(new Uint8Array(MESH_NONCE_BYTES));
  const ours = transcript(ACCEPTOR_LABEL, hello.nonce, nonce, hello.node, self);
  await writeAll(
    socket,
    encodeMesh(MeshType.Welcome, welcomeBody(self, nonce, await mac(key, ours))),
  );
  const proof = await expect(socket, reader, MeshType.Proof);
  const theirs = transcript(DIALER_LABEL, nonce, hello.nonce, self, hello.node);
  if (!await verify(key, proof, theirs)) {
    throw new MeshProtocolError("the other relay does not hold the mesh key");
  }
  await writeAll(socket, encodeMeshU32(MeshType.Ready, 0));
  return hello.node;
}
