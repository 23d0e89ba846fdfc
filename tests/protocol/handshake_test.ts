/**
 * The messages a Proof signs, pinned byte for byte: a client written from
 * docs/PROTOCOL.md §3.1b must sign exactly these.
 */

import assert from "node:assert/strict";
import {
  identityProofMessage,
  joinTokenProofMessage,
  legacyClaimMessage,
} from "../../protocol/mod.ts";

const ascii = (text: string): number[] => [...new TextEncoder().encode(text)];
const filled = (size: number, byte: number): Uint8Array => new Uint8Array(size).fill(byte);
const CHALLENGE = { relayId: filled(32, 0x11), nonce: filled(32, 0x22) };

Deno.test({
  name: "identityProofMessage() is the label, relay id, nonce and public key",
  permissions: "none",
  fn(): void {
    const message = identityProofMessage(CHALLENGE, filled(32, 0x33));
    assert.deepEqual([...message], [
      ...ascii("AlphaNET/2 identity"),
      0,
      ...filled(32, 0x11),
      ...filled(32, 0x22),
      ...filled(32, 0x33),
    ]);
  },
});

Deno.test({
  name: "joinTokenProofMessage() binds the token id to the identity, or to 32 zero bytes",
  permissions: "none",
  fn(): void {
    const tokenId = filled(8, 0x44);
    const keyed = joinTokenProofMessage(CHALLENGE, filled(32, 0x33), tokenId);
    assert.deepEqual([...keyed], [
      ...ascii("AlphaNET/2 join token"),
      0,
      ...filled(32, 0x11),
      ...filled(32, 0x22),
      ...filled(32, 0x33),
      ...tokenId,
    ]);
    const anonymous = joinTokenProofMessage(CHALLENGE, null, tokenId);
    assert.deepEqual([...anonymous.subarray(22 + 64, 22 + 96)], [...filled(32, 0)]);
    assert.equal(anonymous.length, 126);
  },
});

Deno.test({
  name: "legacyClaimMessage() is the label, relay id, nonce, public key and tag",
  permissions: "none",
  fn(): void {
    const message = legacyClaimMessage(CHALLENGE, filled(32, 0x33), filled(32, 0x55));
    assert.deepEqual([...message], [
      ...ascii("AlphaNET/2 legacy claim"),
      0,
      ...filled(32, 0x11),
      ...filled(32, 0x22),
      ...filled(32, 0x33),
      ...filled(32, 0x55),
    ]);
  },
});

Deno.test({
  name: "the message builders refuse fields of the wrong size",
  permissions: "none",
  fn(): void {
    const short = filled(31, 0);
    assert.throws(
      () => identityProofMessage({ ...CHALLENGE, nonce: short }, filled(32, 0)),
      RangeError,
    );
    assert.throws(() => identityProofMessage(CHALLENGE, short), RangeError);
    assert.throws(() => joinTokenProofMessage(CHALLENGE, null, filled(7, 0)), RangeError);
    assert.throws(() => legacyClaimMessage(CHALLENGE, filled(32, 0), short), RangeError);
  },
});

Deno.test({
  name: "a signature of one message does not verify as another's",
  permissions: "none",
  async fn(): Promise<void> {
    const keys = await crypto.subtle.generateKey("Ed25519", true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
    const message = identityProofMessage(CHALLENGE, publicKey);
    const signature = await crypto.subtle.sign("Ed25519", keys.privateKey, message);
    const otherNonce = identityProofMessage({ ...CHALLENGE, nonce: filled(32, 0x23) }, publicKey);
    const otherRelay = identityProofMessage({ ...CHALLENGE, relayId: filled(32, 0x12) }, publicKey);
    assert.ok(await crypto.subtle.verify("Ed25519", keys.publicKey, signature, message));
    assert.ok(!await crypto.subtle.verify("Ed25519", keys.publicKey, signature, otherNonce));
    assert.ok(!await crypto.subtle.verify("Ed25519", keys.publicKey, signature, otherRelay));
  },
});
