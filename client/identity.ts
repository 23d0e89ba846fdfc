/**
 * Client identities: Ed25519 key pairs (WebCrypto, in Deno and every
 * browser). The relay stores the public key and keys the permanent address
 * on it; the client proves it holds the private key by signing each link's
 * challenge. The private key never leaves the process.
 *
 * @module
 */

import { decodeBase64Url, encodeBase64Url } from "../crypto/base64url.ts";
import { ED25519, keyPairFromSeed, seedOf } from "../crypto/ed25519.ts";

/**
 * A client identity: an Ed25519 key pair. The relay keys this client's
 * permanent virtual IP on `publicKey`; `privateKey` signs each link's
 * challenge and never leaves the process.
 *
 * @example Make an identity and connect with it
 * ```ts
 * import { generateIdentity, type Identity } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const identity: Identity = await generateIdentity();
 * assert.equal(identity.publicKey.length, 32);
 * assert.equal(identity.privateKey.algorithm.name, "Ed25519");
 * ```
 */
export interface Identity {
  /** The raw Ed25519 public key, 32 bytes: what the relay stores. */
  readonly publicKey: Uint8Array<ArrayBuffer>;
  /** The Ed25519 private key (usage `sign`); extractable unless made with `extractable: false`. */
  readonly privateKey: CryptoKey;
}

/**
 * Options of {@linkcode generateIdentity} and {@linkcode importIdentity}.
 *
 * @example A key a page can keep in IndexedDB but never read back
 * ```ts
 * import { generateIdentity, type IdentityOptions } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const options: IdentityOptions = { extractable: false };
 * const identity = await generateIdentity(options);
 * assert.equal(identity.privateKey.extractable, false);
 * ```
 */
export interface IdentityOptions {
  /**
   * Whether the private key can be exported ({@linkcode exportIdentity}).
   * A non-extractable key can still be stored as a `CryptoKey` (IndexedDB)
   * and used, but its bytes can never be read. @default {true}
   */
  extractable?: boolean;
}

/** First word of an identity's text, with the format's version. */
const TEXT_PREFIX = "alphanet-identity-1";
/** Bytes of an Ed25519 public key and of a private key's seed. */
const KEY_BYTES = 32;
/** Shortest and longest secret {@linkcode identityFromSecret} takes. */
export const MIN_SECRET_BYTES = 16;
/** Longest secret {@linkcode identityFromSecret} takes. */
export const MAX_SECRET_BYTES = 256;
/** Domain of the seed derived from a secret, so the hash is used for nothing else. */
const SEED_LABEL = new TextEncoder().encode("AlphaNET/2 identity seed\0");

/**
 * Makes a new identity: a random Ed25519 key pair.
 *
 * @param options Whether the private key may be exported; it may by default.
 * @returns The identity.
 *
 * @example Two identities are two addresses
 * ```ts
 * import { generateIdentity } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = await Promise.all([generateIdentity(), generateIdentity()]);
 * assert.notDeepEqual(a.publicKey, b.publicKey);
 * ```
 */
export async function generateIdentity(options: IdentityOptions = {}): Promise<Identity> {
  const keys = await crypto.subtle.generateKey(ED25519, options.extractable ?? true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  return Object.freeze({ publicKey, privateKey: keys.privateKey });
}

/**
 * The identity as one line of text, for a file (keep it private: it holds
 * the private key): `alphanet-identity-1 ed25519 PUBLIC PRIVATE` and a
 * newline, each key in base64url. {@linkcode importIdentity} reads it back.
 *
 * @param identity An identity whose private key is extractable.
 * @returns The text.
 * @throws {TypeError} If the private key is not extractable.
 *
 * @example Save an identity and read it back
 * ```ts
 * import { exportIdentity, generateIdentity, importIdentity } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const identity = await generateIdentity();
 * const text = await exportIdentity(identity);
 * assert.match(text, /^alphanet-identity-1 ed25519 [\w-]{43} [\w-]{43}\n$/);
 * assert.deepEqual((await importIdentity(text)).publicKey, identity.publicKey);
 * ```
 */
export async function exportIdentity(identity: Identity): Promise<string> {
  if (!identity.privateKey.extractable) {
    throw new TypeError("Cannot export identity: its private key is not extractable");
  }
  const seed = await seedOf(identity.privateKey);
  return `${TEXT_PREFIX} ed25519 ${encodeBase64Url(identity.publicKey)} ${encodeBase64Url(seed)}\n`;
}

/**
 * Reads an identity from the text {@linkcode exportIdentity} wrote. The text
 * holds both keys, so any damage (a changed, missing or extra character) is
 * found: it is an error, never another identity.
 *
 * @param text The identity's text; one trailing newline (LF or CRLF) is allowed.
 * @param options Whether the private key may be exported again; it may by default.
 * @returns The identity.
 * @throws {SyntaxError} If the text is not an intact identity; the message says what is wrong.
 * @throws {TypeError} If `text` is not a string.
 *
 * @example A damaged text is refused
 * ```ts
 * import { exportIdentity, generateIdentity, importIdentity } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const text = await exportIdentity(await generateIdentity());
 * await assert.rejects(importIdentity(text.slice(0, 60)), SyntaxError);
 * ```
 */
export async function importIdentity(
  text: string,
  options: IdentityOptions = {},
): Promise<Identity> {
  if (typeof text !== "string") throw new TypeError("Cannot import identity: it is not a string");
  const identity = await readIdentityText(text, options.extractable ?? true);
  if (typeof identity === "string") throw new SyntaxError(`Cannot import identity: ${identity}`);
  return identity;
}

/**
 * The identity in `text` (the format of {@linkcode exportIdentity}), or why
 * it is not one, in a few words that read on after "Cannot import identity: "
 * or "it is damaged: ". Every key is decoded strictly and the public key
 * must be the private key's, so no damage passes as another identity.
 *
 * @param text The text; one trailing newline (LF or CRLF) is allowed.
 * @param extractable Whether the private key may be exported again.
 * @returns The identity, or the reason.
 */
export async function readIdentityText(
  text: string,
  extractable: boolean,
): Promise<Identity | string> {
  const line = text.endsWith("\r\n")
    ? text.slice(0, -2)
    : text.endsWith("\n")
    ? text.slice(0, -1)
    : text;
  const form = `"${TEXT_PREFIX} ed25519 PUBLIC PRIVATE"`;
  if (!line.startsWith(`${TEXT_PREFIX} `) && line !== TEXT_PREFIX) {
    return `it does not start with "${TEXT_PREFIX}"`;
  }
  if (/[\r\n]/.test(line)) return `it is more than the one line ${form}`;
  const words = line.split(" ");
  if (words.length !== 4) {
    return `it has ${words.length} word${words.length === 1 ? "" : "s"}, not the 4 of ${form}`;
  }
  if (words[1] !== "ed25519") return `its key type is ${JSON.stringify(words[1])}, not "ed25519"`;
  const publicKey = decodeBase64Url(words[2], KEY_BYTES);
  if (publicKey === null) {
    return `its public key is not ${KEY_BYTES} bytes of base64url (43 characters of A-Z a-z 0-9 - _)`;
  }
  const seed = decodeBase64Url(words[3], KEY_BYTES);
  if (seed === null) {
    return `its private key is not ${KEY_BYTES} bytes of base64url (43 characters of A-Z a-z 0-9 - _)`;
  }
  const identity = await identityFromSeed(seed, extractable);
  if (!equalBytes(identity.publicKey, publicKey)) {
    return "its public key does not match its private key";
  }
  return identity;
}

/**
 * The identity a secret stands for: an Ed25519 key pair whose seed is
 * SHA-256 of a fixed label and the secret. The same secret is always the
 * same identity, on every machine; the secret itself never leaves the
 * process. What `connect({ identity: "a secret" })` uses.
 *
 * @param secret 16..256 bytes; a string is taken as UTF-8.
 * @returns The identity (its private key not extractable).
 * @throws {RangeError} If the secret is outside 16..256 bytes.
 */
export async function identityFromSecret(secret: string | Uint8Array): Promise<Identity> {
  const bytes = secretBytes(secret);
  const seed = new Uint8Array(
    await crypto.subtle.digest("SHA-256", concatBytes(SEED_LABEL, bytes)),
  );
  return await identityFromSeed(seed, false);
}

/**
 * A secret as bytes, checked against 16..256 bytes.
 *
 * @param secret A string (UTF-8) or bytes.
 * @returns The secret's bytes.
 * @throws {RangeError} If the secret is outside 16..256 bytes.
 */
export function secretBytes(secret: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const bytes = typeof secret === "string"
    ? new TextEncoder().encode(secret)
    : new Uint8Array(secret);
  if (bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES) {
    throw new RangeError(
      `Cannot use identity: a secret of ${bytes.length} bytes is outside ${MIN_SECRET_BYTES}..${MAX_SECRET_BYTES}`,
    );
  }
  return bytes;
}

/**
 * The identity of a 32-byte Ed25519 seed (the private key's bytes).
 *
 * @param seed 32 bytes.
 * @param extractable Whether the private key may be exported.
 * @returns The identity.
 */
export async function identityFromSeed(seed: Uint8Array, extractable: boolean): Promise<Identity> {
  return Object.freeze(await keyPairFromSeed(seed, extractable));
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
