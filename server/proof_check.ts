/**
 * The cryptographic checks of a Proof (PROTOCOL.md §3.1b): the identity's
 * Ed25519 signature, the join token's, and the HMAC of a legacy claim, all
 * over the messages `protocol/handshake.ts` builds from this link's
 * Challenge. Run at once, in one await; what the relay makes of the results
 * is decided after, in order, by the membership.
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

/** What the registry holds for a Proof's join token and legacy claim, read before the checks. */
export interface ProofEvidence {
  /** The row of the Proof's join token, if it has one and the relay asks for tokens. */
  readonly token: JoinTokenRecord | null;
  /** The version 1 row the Proof's legacy claim names by its tag, if any. */
  readonly secret: SecretRow | null;
  /**
   * Whether the Proof's key was registered when it arrived: then neither its
   * token nor its legacy claim is read or checked (a known key needs neither).
   */
  readonly registered: boolean;
}

/** Which of a Proof's signatures verify. */
export interface ProofVerdict {
  /** The identity's signature verifies, or the Proof has no identity. */
  readonly identity: boolean;
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
 * Verifies every signature a Proof carries against this link's Challenge.
 * Never rejects for bad input: a key that is not a curve point, or any
 * other refusal of WebCrypto's, is a signature that does not verify.
 *
 * @param challenge The Challenge the relay sent on this link.
 * @param proof The Proof, over bytes of its own (see {@linkcode copyProof}).
 * @param evidence The stored token and version 1 row the Proof names.
 * @returns Which signatures verify.
 */
export async function checkProof(
  challenge: ChallengePacket,
  proof: ProofPacket,
  evidence: ProofEvidence,
): Promise<ProofVerdict> {
  const publicKey = proof.identity?.publicKey ?? null;
  const { joinToken, legacyClaim } = proof;
  const [identity, token, legacy] = await Promise.all([
    proof.identity === null ? true : verify(
      proof.identity.publicKey,
      proof.identity.signature,
      identityProofMessage(challenge, proof.identity.publicKey),
    ),
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
  return { identity, token, legacy };
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
