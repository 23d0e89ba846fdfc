/**
 * What a client proves at each join, resolved once from its options: its
 * identity, the claim of a version 1 address when its identity comes from a
 * secret, and a join token; and the Proof that answers a Challenge with them.
 *
 * @module
 */

import { parseJoinToken } from "../crypto/join_token.ts";
import { keyPairFromSeed, sign } from "../crypto/ed25519.ts";
import {
  identityProofMessage,
  joinTokenProofMessage,
  legacyClaimMessage,
} from "../protocol/handshake.ts";
import { PacketType } from "../protocol/packet_type.ts";
import type { ChallengePacket, ProofPacket } from "../protocol/packets.ts";
import { type Identity, identityFromSecret, secretBytes } from "./identity.ts";

/**
 * Proof that this client held a version 1 identity secret: the relay keyed
 * it on SHA-256(secret), so HMAC with that hash as key proves the secret
 * without sending it; the tag, SHA-256 of the hash, finds the address.
 */
export interface LegacyCredential {
  /** SHA-256(SHA-256(secret)), 32 bytes. */
  readonly tag: Uint8Array<ArrayBuffer>;
  /** HMAC-SHA-256 key: SHA-256(secret). */
  readonly key: CryptoKey;
}

/** A join token ready to sign with. */
export interface JoinTokenCredential {
  /** The token's 8-byte id. */
  readonly id: Uint8Array<ArrayBuffer>;
  /** The token's Ed25519 private key. */
  readonly privateKey: CryptoKey;
}

/** Everything a client proves at a join. */
export interface Credentials {
  /** The identity, or null to be keyed on the real IP. */
  readonly identity: Identity | null;
  /** The version 1 claim, for an identity that comes from a secret. */
  readonly legacy: LegacyCredential | null;
  /** The join token, or null. */
  readonly joinToken: JoinTokenCredential | null;
}

/**
 * Resolves the identity and join token options into credentials.
 *
 * @param identity An Identity, a secret (16..256 bytes; a string is UTF-8), or undefined.
 * @param joinToken A join token's text, or undefined.
 * @returns The credentials.
 * @throws {RangeError} If the secret has the wrong size; {@linkcode SyntaxError} if the
 * join token is not one.
 */
export async function resolveCredentials(
  identity: Identity | string | Uint8Array | undefined,
  joinToken: string | undefined,
): Promise<Credentials> {
  let resolved: Identity | null = null;
  let legacy: LegacyCredential | null = null;
  if (identity instanceof Uint8Array || typeof identity === "string") {
    const secret = secretBytes(identity);
    resolved = await identityFromSecret(secret);
    legacy = await legacyCredential(secret);
  } else if (identity !== undefined) {
    resolved = identity;
  }
  let token: JoinTokenCredential | null = null;
  if (joinToken !== undefined) {
    const parts = parseJoinToken(joinToken);
    if (typeof parts === "string") throw new SyntaxError(`Cannot use join token: it ${parts}`);
    const { privateKey } = await keyPairFromSeed(parts.seed, false);
    token = { id: parts.id, privateKey };
  }
  return { identity: resolved, legacy, joinToken: token };
}

async function legacyCredential(secret: Uint8Array<ArrayBuffer>): Promise<LegacyCredential> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", secret));
  const tag = new Uint8Array(await crypto.subtle.digest("SHA-256", hash));
  const key = await crypto.subtle.importKey(
    "raw",
    hash,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return { tag, key };
}

/**
 * The Proof that answers `challenge` with `credentials`.
 *
 * @param challenge The relay's Challenge on this link.
 * @param credentials What to prove.
 * @returns The Proof packet.
 */
export async function answerChallenge(
  challenge: ChallengePacket,
  credentials: Credentials,
): Promise<ProofPacket> {
  const { identity, legacy, joinToken } = credentials;
  const publicKey = identity?.publicKey ?? null;
  const [identitySignature, tokenSignature, legacyMac] = await Promise.all([
    identity === null
      ? null
      : sign(identity.privateKey, identityProofMessage(challenge, identity.publicKey)),
    joinToken === null
      ? null
      : sign(joinToken.privateKey, joinTokenProofMessage(challenge, publicKey, joinToken.id)),
    legacy === null || publicKey === null ? null : crypto.subtle.sign(
      "HMAC",
      legacy.key,
      legacyClaimMessage(challenge, publicKey, legacy.tag),
    ),
  ]);
  return {
    type: PacketType.Proof,
    identity: identity === null
      ? null
      : { publicKey: identity.publicKey, signature: identitySignature! },
    joinToken: joinToken === null ? null : { id: joinToken.id, signature: tokenSignature! },
    legacyClaim: legacy === null || legacyMac === null
      ? null
      : { tag: legacy.tag, mac: new Uint8Array(legacyMac) },
  };
}
