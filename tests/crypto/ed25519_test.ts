/**
 * Ed25519 verification as the relay uses it: honest signatures verify, and
 * no key of small order or of a non-canonical encoding is ever accepted,
 * although WebCrypto's own verification accepts forged signatures for them.
 */

import assert from "node:assert/strict";
import { isWeakPublicKey, keyPairFromSeed, sign, verify } from "../../crypto/ed25519.ts";

const fromHex = (hex: string): Uint8Array =>
  new Uint8Array(hex.match(/../g)!.map((byte) => parseInt(byte, 16)));

/** Every encoding of a small-order point: each y with the sign bit clear and set. */
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
].flatMap((hex) => {
  const set = fromHex(hex);
  set[31] |= 0x80;
  return [fromHex(hex), set];
});

/** A forged signature: R = the identity point, S = 0. */
const FORGED = new Uint8Array(64);
FORGED[0] = 1;

Deno.test({
  name: "an honest signature verifies, and one of another message does not",
  permissions: "none",
  async fn(): Promise<void> {
    const keys = await keyPairFromSeed(crypto.getRandomValues(new Uint8Array(32)), false);
    const message = new TextEncoder().encode("a message");
    const signature = await sign(keys.privateKey, message);
    assert.ok(await verify(keys.publicKey, signature, message));
    assert.ok(!await verify(keys.publicKey, signature, new TextEncoder().encode("another")));
    assert.ok(!isWeakPublicKey(keys.publicKey));
  },
});

Deno.test({
  name: "a small-order key is refused, though WebCrypto alone accepts a forgery for it",
  permissions: "none",
  async fn(): Promise<void> {
    // WebCrypto accepts the forgery for the identity point on every message: the reason for the check.
    const identityPoint = SMALL_ORDER[2];
    const key = await crypto.subtle.importKey(
      "raw",
      new Uint8Array(identityPoint),
      "Ed25519",
      false,
      [
        "verify",
      ],
    );
    assert.ok(await crypto.subtle.verify("Ed25519", key, FORGED, new Uint8Array(8)));
    for (const weak of SMALL_ORDER) {
      assert.ok(isWeakPublicKey(weak), `not refused: ${weak}`);
      for (let i = 0; i < 16; i++) {
        const message = crypto.getRandomValues(new Uint8Array(16));
        assert.ok(!await verify(weak, FORGED, message));
      }
    }
  },
});

Deno.test({
  name: "an encoding whose y is not below p is refused, and one just below is not",
  permissions: "none",
  fn(): void {
    const p = fromHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    assert.ok(isWeakPublicKey(p));
    const max = fromHex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    assert.ok(isWeakPublicKey(max));
    const below = fromHex("ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    assert.ok(!isWeakPublicKey(below));
    assert.ok(isWeakPublicKey(new Uint8Array(31)));
  },
});
