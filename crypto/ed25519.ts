/**
 * Ed25519 through WebCrypto, as the client and the relay both use it: key
 * pairs from 32-byte seeds (identities and join tokens), and verification
 * of a raw public key's signature.
 *
 * @module
 */

import { decodeBase64Url } from "./base64url.ts";

/** The algorithm's name in WebCrypto. */
export const ED25519 = "Ed25519";
/** Bytes of a raw Ed25519 public key, and of a private key's seed. */
export const ED25519_KEY_BYTES = 32;
/** PKCS #8 of an Ed25519 private key, before its 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = new Uint8Array([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
]);

/** An Ed25519 key pair: the raw public key and the private key. */
export interface Ed25519KeyPair {
  /** Raw public key, 32 bytes. */
  readonly publicKey: Uint8Array<ArrayBuffer>;
  /** Private key, usage `sign`. */
  readonly privateKey: CryptoKey;
}

/**
 * The key pair of a 32-byte seed (an Ed25519 private key's bytes).
 *
 * @param seed 32 bytes.
 * @param extractable Whether the private key may be exported.
 * @returns The key pair.
 */
export async function keyPairFromSeed(
  seed: Uint8Array,
  extractable: boolean,
): Promise<Ed25519KeyPair> {
  if (seed.length !== ED25519_KEY_BYTES) {
    throw new RangeError(`Cannot derive key: seed has ${seed.length} bytes, not 32`);
  }
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + seed.length);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(seed, PKCS8_PREFIX.length);
  // Imported extractable once to read the public key WebCrypto derives from the seed.
  const full = await crypto.subtle.importKey("pkcs8", pkcs8, ED25519, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", full);
  const publicKey = decodeBase64Url(jwk.x ?? "", ED25519_KEY_BYTES);
  if (publicKey === null) throw new TypeError("Cannot derive key: WebCrypto gave no public key");
  const privateKey = extractable
    ? full
    : await crypto.subtle.importKey("pkcs8", pkcs8, ED25519, false, ["sign"]);
  return { publicKey, privateKey };
}

/**
 * The 32-byte seed of an extractable Ed25519 private key.
 *
 * @param privateKey An extractable Ed25519 private key.
 * @returns Its seed.
 */
export async function seedOf(privateKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", privateKey));
  return pkcs8.slice(PKCS8_PREFIX.length);
}

/**
 * Signs `message` with an Ed25519 private key.
 *
 * @param privateKey The key, usage `sign`.
 * @param message The bytes to sign.
 * @returns The 64-byte signature.
 */
export async function sign(
  privateKey: CryptoKey,
  message: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.sign(ED25519, privateKey, message));
}

/**
 * Whether `signature` is the signature of `message` by the raw public key.
 * A key WebCrypto refuses to import, and a weak key ({@linkcode isWeakPublicKey}),
 * count as a failed verification.
 *
 * @param publicKey The raw public key, 32 bytes, as received (untrusted).
 * @param signature The signature, 64 bytes, as received (untrusted).
 * @param message The signed bytes.
 * @returns Whether the signature verifies; never rejects.
 */
export async function verify(
  publicKey: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  if (isWeakPublicKey(publicKey)) return false;
  try {
    const key = await crypto.subtle.importKey("raw", new Uint8Array(publicKey), ED25519, false, [
      "verify",
    ]);
    return await crypto.subtle.verify(ED25519, key, new Uint8Array(signature), message);
  } catch {
    return false;
  }
}

/** y (little-endian, sign bit cleared) of the points of order 1, 2, 4 and 8 (RFC 8032 §5.1). */
const SMALL_ORDER_Y: readonly string[] = [
  "0000000000000000000000000000000000000000000000000000000000000000", // order 4
  "0100000000000000000000000000000000000000000000000000000000000000", // order 1: the identity
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2: y = p - 1
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
];

/**
 * Whether a raw Ed25519 public key is one no honest key pair has: a point
 * of small order, for which a forged signature verifies for many messages
 * (WebCrypto's verification is cofactorless and accepts them), or an
 * encoding whose y is not below p = 2^255 - 19 (not canonical).
 *
 * @param publicKey 32 bytes, as received.
 * @returns Whether the key must be refused.
 */
export function isWeakPublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== ED25519_KEY_BYTES) return true;
  const y = Uint8Array.from(publicKey);
  y[31] &= 0x7f;
  // y >= p: the top byte 0x7f, bytes 30..1 all 0xff and the lowest byte at least 0xed.
  if (y[31] === 0x7f && y.subarray(1, 31).every((byte) => byte === 0xff) && y[0] >= 0xed) {
    return true;
  }
  const hex = Array.from(y, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return SMALL_ORDER_Y.includes(hex);
}
