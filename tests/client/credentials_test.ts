/**
 * Credentials and the Proof built from them (client/credentials.ts): every
 * combination of identity, secret and join token gives the Proof shape of
 * docs/PROTOCOL.md §3.1b, and every signature in it verifies over the
 * messages of protocol/handshake.ts.
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../../mod.ts";
import { answerChallenge, resolveCredentials } from "../../client/credentials.ts";
import { identityFromSecret } from "../../client/identity.ts";
import { keyPairFromSeed, verify } from "../../crypto/ed25519.ts";
import { formatJoinToken } from "../../crypto/join_token.ts";
import {
  decode,
  encode,
  identityProofMessage,
  joinTokenProofMessage,
  legacyClaimMessage,
  PacketType,
} from "../../protocol/mod.ts";
import { challenge } from "./_scripted_relay.ts";

const SECRET = "an identity secret of version 1";

async function token(): Promise<{ text: string; id: Uint8Array; publicKey: Uint8Array }> {
  const id = crypto.getRandomValues(new Uint8Array(8));
  const seed = crypto.getRandomValues(new Uint8Array(32));
  return { text: formatJoinToken({ id, seed }), id, ...(await keyPairFromSeed(seed, false)) };
}

Deno.test("credentials: the Proof of each combination has the shape and body length of §3.1b", async (t) => {
  const identity = await generateIdentity();
  const joinToken = await token();
  const cases: [string, Parameters<typeof resolveCredentials>, number][] = [
    ["nothing", [undefined, undefined], 1],
    ["an identity", [identity, undefined], 97],
    ["a join token", [undefined, joinToken.text], 73],
    ["an identity and a join token", [identity, joinToken.text], 169],
    ["a secret", [SECRET, undefined], 161],
    ["a secret and a join token", [SECRET, joinToken.text], 233],
  ];
  for (const [name, args, bodyBytes] of cases) {
    await t.step(name, async () => {
      const credentials = await resolveCredentials(...args);
      const sent = challenge();
      const proof = await answerChallenge(sent, credentials);
      const frame = encode(proof);
      assert.equal(frame.length, 5 + bodyBytes);
      assert.deepEqual(decode(frame)?.packet, proof);
      const publicKey = credentials.identity?.publicKey ?? null;
      if (proof.identity !== null) {
        assert.ok(publicKey !== null);
        const message = identityProofMessage(sent, publicKey);
        assert.ok(await verify(proof.identity.publicKey, proof.identity.signature, message));
      }
      if (proof.joinToken !== null) {
        assert.deepEqual(proof.joinToken.id, joinToken.id);
        const message = joinTokenProofMessage(sent, publicKey, joinToken.id);
        assert.ok(await verify(joinToken.publicKey, proof.joinToken.signature, message));
        // The token's signature is bound to the identity it admits.
        const other = joinTokenProofMessage(sent, new Uint8Array(32).fill(9), joinToken.id);
        assert.ok(!(await verify(joinToken.publicKey, proof.joinToken.signature, other)));
      }
      if (proof.legacyClaim !== null) {
        assert.ok(publicKey !== null);
        const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(SECRET));
        const key = await crypto.subtle.importKey(
          "raw",
          hash,
          { name: "HMAC", hash: "SHA-256" },
          false,
          ["verify"],
        );
        const message = legacyClaimMessage(sent, publicKey, proof.legacyClaim.tag);
        assert.ok(
          await crypto.subtle.verify("HMAC", key, new Uint8Array(proof.legacyClaim.mac), message),
        );
      }
      assert.equal(proof.type, PacketType.Proof);
    });
  }
});

Deno.test("credentials: a secret resolves to its derived identity, the same for bytes and copies", async () => {
  const bytes = new TextEncoder().encode(SECRET);
  const credentials = await resolveCredentials(bytes, undefined);
  bytes.fill(0); // The caller's buffer changing later changes nothing.
  assert.deepEqual(
    credentials.identity?.publicKey,
    (await identityFromSecret(SECRET)).publicKey,
  );
  const again = await resolveCredentials(SECRET, undefined);
  const sent = challenge();
  const [a, b] = [await answerChallenge(sent, credentials), await answerChallenge(sent, again)];
  assert.deepEqual(a.legacyClaim?.tag, b.legacyClaim?.tag);
  assert.deepEqual(a.identity?.publicKey, b.identity?.publicKey);
});

Deno.test("credentials: a bad secret is a RangeError, a bad join token a SyntaxError", async () => {
  await assert.rejects(resolveCredentials("short", undefined), RangeError);
  await assert.rejects(resolveCredentials(undefined, "anj1.0011223344556677.short"), SyntaxError);
  await assert.rejects(resolveCredentials(undefined, "not a token"), SyntaxError);
  // Whitespace around a pasted token is fine.
  const { text } = await token();
  await resolveCredentials(undefined, ` ${text}\n`);
});
