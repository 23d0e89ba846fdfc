/**
 * The cryptographic checks of a Proof (PROTOCOL.md §3.1b), over the
 * messages `protocol/handshake.ts` builds from this link's Challenge, in
 * two steps so that a Proof costs the registry nothing until its identity
 * is proved: {@linkcode verifyIdentity} (the identity's Ed25519 signature,
 * needing nothing stored), then, for a key new to the registry,
 * {@linkcode checkAdmission} (the join token's signature by the stored
 * token key, and the HMAC of a legacy claim keyed with the stored version 1
 * hash). What the relay makes of the results is decided by the membership,
 * in the order of PROTOCOL.md §4.
 *
 * @module
 */

import { verify } from "../crypto/ed25519.ts";
import {
  identityProofMessage,
  joinTokenProofMessage,
  legacyClaimMessage,
} from "../protocol/handshake.ts";
import type { ChallengePacket, ProofPacket } from "../protocol/packets.ts";
import type { JoinTokenRecord } from "./join_tokens.ts";
import type { SecretRow } from "./registry.ts";

/** What the registry holds for the Proof of a key new to it: its join token and version 1 row. */
export interface ProofEvidence {
  /** The row of the Proof's join token, if it has one and the relay asks for tokens. */
  readonly token: JoinTokenRecord | null;
  /** The version 1 row the Proof's legacy claim names by its tag, if any. */
  readonly secret: SecretRow | null;
}

/** Which of the signatures that admit a new key verify. */
export interface AdmissionVerdict {
  /** The join token's signature verifies by the stored token's key (false without one). */
  readonly token: boolean;
  /** The legacy claim's HMAC verifies with the found row's hash (false without one). */
  readonly legacy: boolean;
}

/**
 * A copy of a Proof whose byte fields may be views into a read buffer that
 * is reused once the decoder's callback returns: the checks outlive it.
 *
 * @param proof A decoded Proof.
 * @returns The same Proof over bytes of its own.
 */
export function copyProof(proof: ProofPacket): ProofPacket {
  const { identity, joinToken, legacyClaim } = proof;
  return {
    type: proof.type,
    identity: identity &&
      { publicKey: identity.publicKey.slice(), signature: identity.signature.slice() },
    joinToken: joinToken && { id: joinToken.id.slice(), signature: joinToken.signature.slice() },
    legacyClaim: legacyClaim && { tag: legacyClaim.tag.slice(), mac: legacyClaim.mac.slice() },
  };
}

/**
 * Whether the Proof's identity signature verifies against this link's
 * Challenge; true for a Proof without identity (it has nothing to verify).
 * Needs nothing from the registry, so the relay runs it first. Never
 * rejects for bad input: a key that is not a curve point, or any other
 * refusal of WebCrypto's, is a signature that does not verify.
 *
 * @param challenge The Challenge the relay sent on this link.
 * @param proof The Proof, over bytes of its own (see {@linkcode copyProof}).
 * @returns Whether the identity is proved.
 */
export async function verifyIdentity(
  challenge: ChallengePacket,
  proof: ProofPacket,
): Promise<boolean> {
  if (proof.identity === null) return true;
  const { publicKey, signature } = proof.identity;
  return await verify(publicKey, signature, identityProofMessage(challenge, publicKey));
}

/**
 * Verifies, at once, what may admit a key new to the registry: the join
 * token's signature by the stored token's key, and the legacy claim's HMAC
 * with the stored version 1 hash. Each is false when the Proof or the
 * registry lacks its part. Never rejects for bad input.
 *
 * @param challenge The Challenge the relay sent on this link.
 * @param proof The Proof, over bytes of its own (see {@linkcode copyProof}).
 * @param evidence The stored token and version 1 row the Proof names.
 * @returns Which of the two verify.
 */
export async function checkAdmission(
  challenge: ChallengePacket,
  proof: ProofPacket,
  evidence: ProofEvidence,
): Promise<AdmissionVerdict> {
  const publicKey = proof.identity?.publicKey ?? null;
  const { joinToken, legacyClaim } = proof;
  const [token, legacy] = await Promise.all([
    joinToken === null || evidence.token === null ? false : verify(
      evidence.token.publicKey,
      joinToken.signature,
      joinTokenProofMessage(challenge, publicKey, joinToken.id),
    ),
    legacyClaim === null || publicKey === null || evidence.secret === null
      ? false
      : verifyLegacyMac(
        evidence.secret.hash,
        legacyClaim.mac,
        legacyClaimMessage(challenge, publicKey, legacyClaim.tag),
      ),
  ]);
  return { token, legacy };
}

/**
 * Whether `mac` is HMAC-SHA-256 of `message` keyed with `hash`, the stored
 * SHA-256 of a version 1 secret. WebCrypto compares in constant time.
 *
 * @param hash The version 1 row's 32 hash bytes.
 * @param mac The claim's 32 bytes, as received (untrusted).
 * @param message The legacy claim message of this link.
 * @returns Whether it verifies; never rejects.
 */
export async function verifyLegacyMac(
  hash: Uint8Array<ArrayBuffer>,
  mac: Uint8Array,
  message: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey(
      "raw",
      hash,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify("HMAC", key, new Uint8Array(mac), message);
  } catch {
    return false;
  }
}
