/**
 * Identities (client/identity.ts, exported from mod.ts): generate, export and
 * import round trip; every kind of damage to the text refused, never read
 * as another identity; a secret's key pair the same every time.
 */

import assert from "node:assert/strict";
import { exportIdentity, generateIdentity, type Identity, importIdentity } from "../../mod.ts";
import { identityFromSecret } from "../../client/identity.ts";
import { verify } from "../../crypto/ed25519.ts";

/** Whether `identity`'s private key signs for its public key. */
async function signsForItself(identity: Identity): Promise<boolean> {
  const message = crypto.getRandomValues(new Uint8Array(40));
  const signature = new Uint8Array(
    await crypto.subtle.sign("Ed25519", identity.privateKey, message),
  );
  return await verify(identity.publicKey, signature, message);
}

/** The text with its character at `at` replaced by another base64url character. */
function changeAt(text: string, at: number): string {
  const other = text[at] === "A" ? "B" : "A";
  return text.slice(0, at) + other + text.slice(at + 1);
}

Deno.test("identity: generate, export, import round trip keeps the key pair", async () => {
  const identity = await generateIdentity();
  assert.equal(identity.publicKey.length, 32);
  assert.equal(identity.privateKey.type, "private");
  assert.equal(identity.privateKey.algorithm.name, "Ed25519");
  assert.ok(Object.isFrozen(identity));
  assert.ok(await signsForItself(identity));
  const text = await exportIdentity(identity);
  assert.match(text, /^alphanet-identity-1 ed25519 [A-Za-z0-9_-]{43} [A-Za-z0-9_-]{43}\n$/);
  const back = await importIdentity(text);
  assert.deepEqual(back.publicKey, identity.publicKey);
  assert.ok(await signsForItself(back));
  // Exported again, the same text: nothing is lost or added.
  assert.equal(await exportIdentity(back), text);
  // Two identities are two key pairs.
  assert.notDeepEqual((await generateIdentity()).publicKey, identity.publicKey);
});

Deno.test("identity: CRLF and no final newline are accepted", async () => {
  const identity = await generateIdentity();
  const line = (await exportIdentity(identity)).trimEnd();
  for (const text of [line, `${line}\r\n`, `${line}\n`]) {
    assert.deepEqual((await importIdentity(text)).publicKey, identity.publicKey);
  }
});

Deno.test("identity: every kind of damage to the text is refused with what is wrong", async (t) => {
  const identity = await generateIdentity();
  const text = await exportIdentity(identity);
  const [prefix, type, publicKey, privateKey] = text.trimEnd().split(" ");
  const publicStart = prefix.length + type.length + 2;
  const privateStart = publicStart + publicKey.length + 1;
  const other = await exportIdentity(await generateIdentity());
  const cases: [string, string, RegExp][] = [
    ["empty", "", /does not start with "alphanet-identity-1"/],
    [
      "truncated in the private key",
      text.slice(0, 100),
      /private key is not 32 bytes of base64url/,
    ],
    ["truncated to the public key", text.slice(0, privateStart - 1), /has 3 words, not the 4/],
    ["truncated to the prefix", prefix, /has 1 word, not the 4/],
    [
      "a changed character in the public key",
      changeAt(text, publicStart + 5),
      /public key does not match its private key/,
    ],
    [
      "a changed character in the private key",
      changeAt(text, privateStart + 5),
      /public key does not match its private key/,
    ],
    [
      "the last character of a key changed (padding bits)",
      changeAt(text, publicStart + 42),
      /public key/,
    ],
    [
      "swapped keys",
      `${prefix} ${type} ${privateKey} ${publicKey}\n`,
      /public key does not match its private key/,
    ],
    [
      "the public key of another identity",
      `${prefix} ${type} ${other.split(" ")[2]} ${privateKey}\n`,
      /does not match/,
    ],
    ["an extra word", `${text.trimEnd()} extra\n`, /has 5 words, not the 4/],
    ["a word in between", `${prefix} ${type} x ${publicKey} ${privateKey}\n`, /has 5 words/],
    ["two spaces", text.replace(" ed25519 ", " ed25519  "), /has 5 words/],
    ["a trailing space", `${text.trimEnd()} \n`, /has 5 words/],
    ["two newlines", `${text}\n`, /more than the one line/],
    ["a second identity", text + other, /more than the one line/],
    ["another key type", text.replace("ed25519", "ed448"), /key type is "ed448", not "ed25519"/],
    ["another format version", text.replace("identity-1", "identity-2"), /does not start with/],
    [
      "a character outside base64url",
      `${text.slice(0, publicStart)}+${text.slice(publicStart + 1)}`,
      /public key is not 32 bytes/,
    ],
    [
      "padding added",
      `${prefix} ${type} ${publicKey}= ${privateKey}\n`,
      /public key is not 32 bytes/,
    ],
    ["uppercase prefix", text.toUpperCase(), /does not start with/],
  ];
  for (const [name, damaged, why] of cases) {
    await t.step(name, async () => {
      assert.notEqual(damaged, text);
      const error = await importIdentity(damaged).catch((e) => e);
      assert.ok(error instanceof SyntaxError, `${name}: ${error}`);
      assert.match(error.message, /^Cannot import identity: /);
      assert.match(error.message, why);
      // The private key is never repeated in a message.
      assert.ok(!error.message.includes(privateKey.slice(0, 20)), error.message);
    });
  }
  await t.step("not a string", async () => {
    await assert.rejects(importIdentity(42 as unknown as string), TypeError);
  });
});

Deno.test("identity: a non-extractable key works but cannot be exported", async () => {
  const identity = await generateIdentity({ extractable: false });
  assert.equal(identity.privateKey.extractable, false);
  assert.ok(await signsForItself(identity));
  await assert.rejects(exportIdentity(identity), TypeError);
  const imported = await importIdentity(await exportIdentity(await generateIdentity()), {
    extractable: false,
  });
  assert.equal(imported.privateKey.extractable, false);
  await assert.rejects(
    exportIdentity(imported),
    (error: Error) =>
      error instanceof TypeError && /private key is not extractable/.test(error.message),
  );
});

Deno.test("identity: a secret gives the same key pair every time, and its bytes the same as its string", async () => {
  const secret = "the same secret of some length";
  const [a, b] = [await identityFromSecret(secret), await identityFromSecret(secret)];
  assert.deepEqual(a.publicKey, b.publicKey);
  assert.deepEqual(
    (await identityFromSecret(new TextEncoder().encode(secret))).publicKey,
    a.publicKey,
  );
  assert.equal(a.privateKey.extractable, false);
  assert.ok(await signsForItself(a));
  assert.notDeepEqual((await identityFromSecret(`${secret}!`)).publicKey, a.publicKey);
  // Pinned: SHA-256("AlphaNET/2 identity seed" 00 ‖ secret) as the seed, so every client agrees.
  const label = new TextEncoder().encode("AlphaNET/2 identity seed\0");
  const bytes = new TextEncoder().encode(secret);
  const input = new Uint8Array([...label, ...bytes]);
  const seed = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  const pkcs8 = new Uint8Array([
    ...[0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04],
    0x20,
    ...seed,
  ]);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, "Ed25519", true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const expected = new Uint8Array(
    atob(jwk.x!.replaceAll("-", "+").replaceAll("_", "/") + "=").split("").map((c) =>
      c.charCodeAt(0)
    ),
  );
  assert.deepEqual(a.publicKey, expected);
});

Deno.test("identity: a secret outside 16..256 bytes is a RangeError", async () => {
  await assert.rejects(identityFromSecret("15 bytes secret"), RangeError);
  await assert.rejects(identityFromSecret(new Uint8Array(257)), RangeError);
  await identityFromSecret("16 bytes secret!");
  await identityFromSecret(new Uint8Array(256));
});
