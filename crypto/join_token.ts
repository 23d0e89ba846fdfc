/**
 * The text of a join token, shared by the relay that makes it and the
 * client that presents it: `anj1.ID.SECRET`, where ID is the token's 8-byte
 * id in 16 lowercase hex digits (public: `tokens list` shows it) and SECRET
 * the 32-byte seed of the token's Ed25519 key in base64url. The relay
 * stores only the id and the key's public half; the client signs with the
 * key and never sends the secret.
 *
 * @module
 */

import { decodeBase64Url, encodeBase64Url } from "./base64url.ts";

/** The first part of every join token's text, with the format's version. */
export const JOIN_TOKEN_PREFIX = "anj1";
/** Bytes of a join token's id. */
export const JOIN_TOKEN_ID_BYTES = 8;
/** Bytes of a join token's secret seed. */
export const JOIN_TOKEN_SECRET_BYTES = 32;

/** A join token's parts. */
export interface JoinTokenParts {
  /** The id, 8 bytes. */
  readonly id: Uint8Array<ArrayBuffer>;
  /** The Ed25519 seed, 32 bytes: secret. */
  readonly seed: Uint8Array<ArrayBuffer>;
}

/** The token's id as text: 16 lowercase hex digits. */
export function joinTokenIdText(id: Uint8Array): string {
  return Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The id's bytes from its text, or null unless it is 16 lowercase hex digits. */
export function parseJoinTokenId(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[0-9a-f]{16}$/.test(text)) return null;
  const id = new Uint8Array(JOIN_TOKEN_ID_BYTES);
  for (let i = 0; i < id.length; i++) id[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return id;
}

/** The token's text from its parts. */
export function formatJoinToken(parts: JoinTokenParts): string {
  return `${JOIN_TOKEN_PREFIX}.${joinTokenIdText(parts.id)}.${encodeBase64Url(parts.seed)}`;
}

/**
 * The parts of a join token's text (surrounding whitespace ignored), or why
 * it is not one: a few words that read on after "the join token ".
 */
export function parseJoinToken(text: string): JoinTokenParts | string {
  const words = text.trim().split(".");
  if (words.length !== 3 || words[0] !== JOIN_TOKEN_PREFIX) {
    return `is not of the form ${JOIN_TOKEN_PREFIX}.ID.SECRET`;
  }
  const id = parseJoinTokenId(words[1]);
  if (id === null) return "has an id that is not 16 lowercase hex digits";
  const seed = decodeBase64Url(words[2], JOIN_TOKEN_SECRET_BYTES);
  if (seed === null) return "has a secret that is not 32 bytes of base64url (it is damaged)";
  return { id, seed };
}
