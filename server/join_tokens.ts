/**
 * Join tokens as the registry keeps them: what a token is, whether it may
 * still admit a new key, and, if not, why. The relay and the `tokens`
 * commands read them the same way.
 *
 * @module
 */

import { AlphaNetError } from "../errors.ts";

/** A join token's row. The registry holds the token key's public half only, never its secret. */
export interface JoinTokenRecord {
  /** The token's id: 16 lowercase hex digits, the public part of its text. */
  readonly id: string;
  /** The raw Ed25519 public key of the token's secret seed, 32 bytes. */
  readonly publicKey: Uint8Array;
  /** New keys registered with it so far. */
  readonly uses: number;
  /** How many new keys it may register; null: no limit. */
  readonly maxUses: number | null;
  /** When it stops admitting (unix ms); null: never. */
  readonly expiresAt: number | null;
  /** When it was made (unix ms). */
  readonly createdAt: number;
  /** When an operator revoked it (unix ms); null: not revoked. */
  readonly revokedAt: number | null;
  /** When it last registered a key (unix ms); null: never. */
  readonly lastUsedAt: number | null;
}

/** Why a join token cannot admit a new key, in the order a relay checks (PROTOCOL.md §5.5). */
export type JoinTokenRefusal = "invalid" | "expired" | "used-up";

/**
 * Why `token` cannot admit a new key at `now`, or null if it can.
 *
 * @param token The token's row, or null if there is none with that id.
 * @param now Unix ms.
 * @returns The refusal, or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { joinTokenRefusal } from "./join_tokens.ts";
 *
 * const token = {
 *   id: "0011223344556677", publicKey: new Uint8Array(32), uses: 1, maxUses: 1,
 *   expiresAt: null, createdAt: 0, revokedAt: null, lastUsedAt: 5,
 * };
 * assert.equal(joinTokenRefusal(token, 10), "used-up");
 * assert.equal(joinTokenRefusal({ ...token, maxUses: null }, 10), null);
 * assert.equal(joinTokenRefusal(null, 10), "invalid");
 * ```
 */
export function joinTokenRefusal(
  token: JoinTokenRecord | null,
  now: number,
): JoinTokenRefusal | null {
  if (token === null || token.revokedAt !== null) return "invalid";
  if (token.expiresAt !== null && now >= token.expiresAt) return "expired";
  if (token.maxUses !== null && token.uses >= token.maxUses) return "used-up";
  return null;
}

/**
 * A join token refused at the moment its use would have been spent: it was
 * revoked, expired or used up since the relay checked it (another join took
 * its last use). Nothing was written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JoinTokenRefused } from "./join_tokens.ts";
 *
 * const error = new JoinTokenRefused("used-up", "Cannot join: the join token is used up");
 * assert.equal(error.refusal, "used-up");
 * ```
 */
export class JoinTokenRefused extends AlphaNetError {
  /** Why the token was refused. */
  readonly refusal: JoinTokenRefusal;

  /** Creates the error. */
  constructor(refusal: JoinTokenRefusal, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "JoinTokenRefused";
    this.refusal = refusal;
  }
}
