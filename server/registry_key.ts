/**
 * What the registry knows a client by: its real IP, or its Ed25519 public
 * key, stored as text with a prefix that keeps the kinds apart. Rows of a
 * third kind, `secret` (`id:` + SHA-256 of a version 1 identity secret),
 * come only from migrated files: no join makes one.
 *
 * @module
 */

import { HandshakeBytes } from "../protocol/constants.ts";

/**
 * What identifies a joining client: its real IP (a Proof without identity),
 * or the raw Ed25519 public key of its identity.
 */
export type RegistryKey =
  | { kind: "ip"; realIp: string }
  | { kind: "key"; publicKey: Uint8Array };

/** The kind of a registry row: the two kinds of {@linkcode RegistryKey}, and version 1 secrets. */
export type ClientKind = "ip" | "key" | "secret";

/**
 * Bytes as lowercase hex.
 *
 * @param bytes Any bytes.
 * @returns Two lowercase hex digits per byte.
 */
export function hexOf(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * The bytes of lowercase hex text, or null if it is not that.
 *
 * @param text Lowercase hex digits, two per byte.
 * @returns The bytes, or null.
 */
export function bytesOfHex(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) return null;
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/**
 * The stored text form of a key; throws `RangeError` for a malformed one, before any SQL runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyText } from "./registry_key.ts";
 *
 * assert.equal(keyText({ kind: "ip", realIp: "192.0.2.7" }), "ip:192.0.2.7");
 * assert.equal(keyText({ kind: "key", publicKey: new Uint8Array(32).fill(0xab) }), `key:${"ab".repeat(32)}`);
 * ```
 */
export function keyText(key: RegistryKey): string {
  if (key.kind === "ip") {
    if (key.realIp === "") throw new RangeError("Cannot use registry key: realIp is empty");
    return `ip:${key.realIp}`;
  }
  if (key.kind === "key" && key.publicKey?.length === HandshakeBytes.publicKey) {
    return `key:${hexOf(key.publicKey)}`;
  }
  throw new RangeError("Cannot use registry key: it is neither an IP nor a 32-byte public key");
}

/** Prefix of the stored text of a version 1 secret's row: `id:` and 64 hex digits of SHA-256. */
export const SECRET_KEY_PREFIX = "id:";
