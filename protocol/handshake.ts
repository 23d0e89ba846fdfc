/**
 * The messages a Proof signs, byte for byte: pure functions, so a client
 * signs and the relay verifies exactly the same bytes. Each message starts
 * with its own label (which names the protocol version) and holds the
 * relay's id and the link's nonce, so a signature is good for one purpose,
 * on one relay, on one link.
 *
 * @module
 */

import { HandshakeBytes } from "./constants.ts";
import type { ChallengePacket } from "./packets.ts";

/** What of a Challenge every signed message holds. */
export type ChallengeFields = Pick<ChallengePacket, "relayId" | "nonce">;

const ascii = new TextEncoder();

/** Label of the identity signature, NUL-terminated: "AlphaNET/2 identity". */
const IDENTITY_LABEL = ascii.encode("AlphaNET/2 identity\0");
/** Label of the join token signature, NUL-terminated: "AlphaNET/2 join token". */
const JOIN_TOKEN_LABEL = ascii.encode("AlphaNET/2 join token\0");
/** Label of the legacy claim's HMAC, NUL-terminated: "AlphaNET/2 legacy claim". */
const LEGACY_CLAIM_LABEL = ascii.encode("AlphaNET/2 legacy claim\0");

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function checkSize(what: string, bytes: Uint8Array, size: number): void {
  if (bytes.length !== size) {
    throw new RangeError(
      `Cannot build proof message: ${what} has ${bytes.length} bytes, not ${size}`,
    );
  }
}

function checkChallenge(challenge: ChallengeFields): void {
  checkSize("relay id", challenge.relayId, HandshakeBytes.relayId);
  checkSize("nonce", challenge.nonce, HandshakeBytes.nonce);
}

/**
 * The bytes a client signs with its identity's Ed25519 key:
 * `"AlphaNET/2 identity" 0x00 | relayId[32] | nonce[32] | publicKey[32]`.
 *
 * @param challenge The Challenge of this link.
 * @param publicKey The identity's raw Ed25519 public key, 32 bytes.
 * @returns The 116-byte message, in a buffer of its own.
 * @throws {RangeError} If a field has the wrong size.
 *
 * @example Sign and verify an identity proof
 * ```ts
 * import { identityProofMessage } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const keys = await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]) as CryptoKeyPair;
 * const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
 * const challenge = { relayId: new Uint8Array(32), nonce: crypto.getRandomValues(new Uint8Array(32)) };
 * const message = identityProofMessage(challenge, publicKey);
 * const signature = await crypto.subtle.sign("Ed25519", keys.privateKey, message);
 * assert.ok(await crypto.subtle.verify("Ed25519", keys.publicKey, signature, message));
 * assert.equal(message.length, 116);
 * ```
 */
export function identityProofMessage(
  challenge: ChallengeFields,
  publicKey: Uint8Array,
): Uint8Array<ArrayBuffer> {
  checkChallenge(challenge);
  checkSize("public key", publicKey, HandshakeBytes.publicKey);
  return concat([IDENTITY_LABEL, challenge.relayId, challenge.nonce, publicKey]);
}

/**
 * The bytes a client signs with a join token's Ed25519 key:
 * `"AlphaNET/2 join token" 0x00 | relayId[32] | nonce[32] | publicKey[32] | tokenId[8]`,
 * where `publicKey` is the identity's, or 32 zero bytes for a client without
 * one; the token is thus spent on this identity and no other.
 *
 * @param challenge The Challenge of this link.
 * @param publicKey The identity's raw public key, or null without an identity.
 * @param tokenId The token's 8-byte id.
 * @returns The 126-byte message.
 * @throws {RangeError} If a field has the wrong size.
 *
 * @example The message binds the token to the identity
 * ```ts
 * import { joinTokenProofMessage } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const challenge = { relayId: new Uint8Array(32), nonce: new Uint8Array(32) };
 * const tokenId = new Uint8Array(8).fill(7);
 * const anonymous = joinTokenProofMessage(challenge, null, tokenId);
 * const keyed = joinTokenProofMessage(challenge, new Uint8Array(32).fill(1), tokenId);
 * assert.equal(anonymous.length, 126);
 * assert.notDeepEqual(anonymous, keyed);
 * ```
 */
export function joinTokenProofMessage(
  challenge: ChallengeFields,
  publicKey: Uint8Array | null,
  tokenId: Uint8Array,
): Uint8Array<ArrayBuffer> {
  checkChallenge(challenge);
  const key = publicKey ?? new Uint8Array(HandshakeBytes.publicKey);
  checkSize("public key", key, HandshakeBytes.publicKey);
  checkSize("token id", tokenId, HandshakeBytes.tokenId);
  return concat([JOIN_TOKEN_LABEL, challenge.relayId, challenge.nonce, key, tokenId]);
}

/**
 * The bytes a client authenticates with HMAC-SHA-256, keyed with the 32-byte
 * SHA-256 of its version 1 identity secret, to move the address that secret
 * held to its key pair:
 * `"AlphaNET/2 legacy claim" 0x00 | relayId[32] | nonce[32] | publicKey[32] | legacyTag[32]`.
 *
 * @param challenge The Challenge of this link.
 * @param publicKey The identity's raw public key, which takes over the address.
 * @param tag SHA-256 of the SHA-256 of the version 1 secret.
 * @returns The 152-byte message.
 * @throws {RangeError} If a field has the wrong size.
 *
 * @example Build the message of a legacy claim
 * ```ts
 * import { legacyClaimMessage } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const challenge = { relayId: new Uint8Array(32), nonce: new Uint8Array(32) };
 * const message = legacyClaimMessage(challenge, new Uint8Array(32), new Uint8Array(32));
 * assert.equal(message.length, 152);
 * ```
 */
export function legacyClaimMessage(
  challenge: ChallengeFields,
  publicKey: Uint8Array,
  tag: Uint8Array,
): Uint8Array<ArrayBuffer> {
  checkChallenge(challenge);
  checkSize("public key", publicKey, HandshakeBytes.publicKey);
  checkSize("legacy tag", tag, HandshakeBytes.legacyTag);
  return concat([LEGACY_CLAIM_LABEL, challenge.relayId, challenge.nonce, publicKey, tag]);
}
