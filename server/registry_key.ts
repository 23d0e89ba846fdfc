/**
 * What the registry knows a client by: its real IP, or a hash of its
 * identity, stored as text with a prefix that keeps the two kinds apart.
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * What identifies a client: its real IP, or the SHA-256 of the identity
 * secret it presents (see {@linkcode identityKey}).
 */
export type RegistryKey =
  | { kind: "ip"; realIp: string }
  | { kind: "identity"; identityHash: string };

/**
 * Hashes an identity secret into a registry key, so the secret itself is
 * never stored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { identityKey } from "./registry_key.ts";
 *
 * const key = identityKey(new Uint8Array(32));
 * assert.equal(key.kind, "identity");
 * ```
 */
export function identityKey(identity: Uint8Array): RegistryKey {
  // Synchronous on purpose: the handshake then completes in the read loop's turn, so frames
  // pipelined behind Hello are handled in order, and a join leaves no promise behind.
  return { kind: "identity", identityHash: createHash("sha256").update(identity).digest("hex") };
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
 * ```
 */
export function keyText(key: RegistryKey): string {
  if (key.kind === "ip") {
    if (key.realIp === "") throw new RangeError("Cannot use registry key: realIp is empty");
    return `ip:${key.realIp}`;
  }
  if (!/^[0-9a-f]{64}$/.test(key.identityHash)) {
    throw new RangeError("Cannot use registry key: identityHash is not lowercase SHA-256 hex");
  }
  return `id:${key.identityHash}`;
}
