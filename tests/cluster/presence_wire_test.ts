/**
 * The presence payloads and subjects (issue 12), pinned without I/O: golden
 * bytes of each payload and of what each MAC covers, the presence key's
 * derivation (checked against node:crypto), the subjects, and the decoders'
 * refusals.
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  MAX_PENDING_MACS,
  PRESENCE_KEY_LABEL,
  PresenceMac,
} from "../../server/cluster/presence_mac.ts";
import {
  checkAddress,
  checkPrefix,
  claimMacInput,
  decodeClaim,
  decodeDialAnswer,
  decodeNodeInfo,
  dialAnswerMacInput,
  dialRequestMacInput,
  encodeClaim,
  encodeDialAnswer,
  encodeNodeInfo,
  locateAnswerMacInput,
  MAX_DIAL_ERROR_CHARS,
  MAX_PAYLOAD_BYTES,
  parseMeshAddress,
  PresenceSubjects,
} from "../../server/cluster/presence_wire.ts";

const NODE = "0123456789abcdef0123456789abcdef";
const MAC = "ab".repeat(32);
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

Deno.test({
  name: "presence limits keep their values",
  permissions: "none",
  fn(): void {
    assert.equal(MAX_PAYLOAD_BYTES, 512);
    assert.equal(MAX_DIAL_ERROR_CHARS, 200);
    assert.equal(MAX_PENDING_MACS, 16_384);
    assert.equal(PRESENCE_KEY_LABEL, "alphanet presence v1");
  },
});

Deno.test({
  name: "presence payloads encode to their golden JSON and decode back",
  permissions: "none",
  fn(): void {
    const info = { node: NODE, mesh: "10.0.0.1:7000" };
    assert.equal(
      text(encodeNodeInfo(info, MAC)),
      `{"node":"${NODE}","mesh":"10.0.0.1:7000","mac":"${MAC}"}`,
    );
    assert.deepEqual(decodeNodeInfo(encodeNodeInfo(info, MAC)), { ...info, mac: MAC });
    const claim = { node: NODE, at: 1234 };
    assert.equal(text(encodeClaim(claim, MAC)), `{"node":"${NODE}","at":1234,"mac":"${MAC}"}`);
    assert.deepEqual(decodeClaim(encodeClaim(claim, MAC)), { node: NODE, at: 1234, mac: MAC });
    assert.equal(text(encodeDialAnswer({ ok: true }, MAC)), `{"ok":true,"mac":"${MAC}"}`);
    assert.equal(
      text(encodeDialAnswer({ ok: false, error: "no" }, MAC)),
      `{"ok":false,"error":"no","mac":"${MAC}"}`,
    );
    assert.deepEqual(decodeDialAnswer(encode(`{"ok":false,"error":"no"}`)), {
      ok: false,
      error: "no",
      mac: "",
    });
    const long = encodeDialAnswer({ ok: false, error: "x".repeat(1_000) }, MAC);
    assert.deepEqual(decodeDialAnswer(long), { ok: false, error: "x".repeat(200), mac: MAC });
    // Control characters are replaced before sending (so the MAC covers what the other side logs).
    assert.equal(
      text(encodeDialAnswer({ ok: false, error: "a\nb" }, MAC)),
      `{"ok":false,"error":"a?b","mac":"${MAC}"}`,
    );
    // Unknown keys are ignored, so a later version may add fields; a missing or odd mac reads "".
    assert.deepEqual(decodeNodeInfo(encode(`{"node":"${NODE}","mesh":"a:1","v":2}`)), {
      node: NODE,
      mesh: "a:1",
      mac: "",
    });
    assert.deepEqual(decodeClaim(encode(`{"node":"${NODE}","at":1,"mac":7}`)), {
      node: NODE,
      at: 1,
      mac: "",
    });
  },
});

Deno.test({
  name: "each MAC covers a kind tag, the subject, the reply subject of an answer and every field",
  permissions: "none",
  fn(): void {
    const vip = "alphanet.0123456789abcdef.vip.7";
    const dial = `alphanet.0123456789abcdef.node.${NODE}.dial`;
    const claim = "alphanet.0123456789abcdef.claim.7";
    const info = { node: NODE, mesh: "[::1]:7000" };
    assert.equal(
      text(locateAnswerMacInput(vip, "_INBOX.x.1", info)),
      `["locate-answer","${vip}","_INBOX.x.1","${NODE}","[::1]:7000"]`,
    );
    assert.equal(
      text(dialRequestMacInput(dial, info)),
      `["dial-request","${dial}","${NODE}","[::1]:7000"]`,
    );
    assert.equal(
      text(claimMacInput(claim, { node: NODE, at: 1234 })),
      `["claim","${claim}","${NODE}",1234]`,
    );
    assert.equal(
      text(dialAnswerMacInput(dial, "_INBOX.x.2", { ok: true })),
      `["dial-answer","${dial}","_INBOX.x.2",true]`,
    );
    assert.equal(
      text(dialAnswerMacInput(dial, "_INBOX.x.2", { ok: false, error: `a"\n${"x".repeat(300)}` })),
      `["dial-answer","${dial}","_INBOX.x.2",false,"a\\"?${"x".repeat(197)}"]`,
    );
  },
});

Deno.test({
  name: "the presence key is HMAC(mesh key, label): MACs match node:crypto, and verify() is strict",
  permissions: "none",
  async fn(): Promise<void> {
    const meshKey = Uint8Array.from({ length: 32 }, (_, i) => i);
    const mac = await PresenceMac.derive(meshKey);
    const input = claimMacInput("alphanet.x.claim.7", { node: NODE, at: 1 });
    const subkey = createHmac("sha256", meshKey).update("alphanet presence v1").digest();
    const expected = createHmac("sha256", subkey).update(input).digest("hex");
    assert.equal(await mac.sign(input), expected);
    // Keyed by a subkey, never the mesh key itself (the relay-link handshake's key).
    assert.notEqual(expected, createHmac("sha256", meshKey).update(input).digest("hex"));
    assert.equal(await mac.verify(input, expected), true);
    const flipped = (expected[0] === "0" ? "1" : "0") + expected.slice(1);
    for (const bad of [flipped, expected.toUpperCase(), expected.slice(2), "", undefined, 7]) {
      assert.equal(await mac.verify(input, bad), false, String(bad));
    }
    const other = await PresenceMac.derive(new Uint8Array(32));
    assert.equal(await other.verify(input, expected), false, "another mesh key");
    assert.equal(mac.available, true);
    await assert.rejects(PresenceMac.derive(new Uint8Array(31)), TypeError);
  },
});

Deno.test({
  name: "presence decoders return null for anything but their payload",
  permissions: "none",
  async fn(t): Promise<void> {
    const bad = [
      "",
      "null",
      "[]",
      "1",
      '"x"',
      "{",
      `{"node":"${NODE.toUpperCase()}","mesh":"a:1"}`,
      `{"node":"${NODE}0","mesh":"a:1"}`,
      `{"node":"${NODE}"}`,
      `{"node":"${NODE}","mesh":7}`,
      `{"node":"${NODE}","mesh":"a:1","pad":"${"x".repeat(MAX_PAYLOAD_BYTES)}"}`,
    ];
    for (const payload of bad) {
      await t.step(`decodeNodeInfo() refuses ${payload.slice(0, 40)}`, () => {
        assert.equal(decodeNodeInfo(encode(payload)), null);
      });
    }
    assert.equal(decodeNodeInfo(new Uint8Array([0x7b, 0xff, 0x7d])), null, "not UTF-8");
    assert.equal(decodeClaim(encode(`{"node":"xyz"}`)), null);
    assert.equal(decodeClaim(encode(`{"mode":"${NODE}"}`)), null);
    assert.equal(decodeClaim(encode(`{"node":"${NODE}"}`)), null, "a claim says when");
    assert.equal(decodeClaim(encode(`{"node":"${NODE}","at":-1}`)), null);
    assert.equal(decodeClaim(encode(`{"node":"${NODE}","at":1.5}`)), null);
    assert.equal(decodeClaim(encode(`{"node":"${NODE}","at":"1"}`)), null);
    assert.equal(decodeDialAnswer(encode(`{"ok":"true"}`)), null);
    assert.equal(decodeDialAnswer(encode(`{"ok":false}`)), null);
    assert.equal(decodeDialAnswer(encode(`{"ok":false,"error":"${"x".repeat(201)}"}`)), null);
    assert.deepEqual(decodeDialAnswer(encode(`{"ok":false,"error":"a\\u0000b\\nc"}`)), {
      ok: false,
      error: "a?b?c",
      mac: "",
    });
  },
});

Deno.test({
  name: "parseMeshAddress() takes host:port with a DNS name, IPv4 or bracketed IPv6 only",
  permissions: "none",
  async fn(t): Promise<void> {
    const good: [string, string, number][] = [
      ["127.0.0.1:7000", "127.0.0.1", 7000],
      ["relay-1.example.org:1", "relay-1.example.org", 1],
      ["[::1]:65535", "::1", 65535],
      ["[fe80::1:2]:80", "fe80::1:2", 80],
    ];
    for (const [value, hostname, port] of good) {
      await t.step(`accepts ${value}`, () => {
        assert.deepEqual(parseMeshAddress(value), { hostname, port });
      });
    }
    const bad = [
      "",
      "host",
      ":80",
      "host:",
      "host:0",
      "host:65536",
      "host:080",
      "host:+80",
      "host:8 0",
      "::1:80",
      "[]:80",
      "[zz]:80",
      "256.0.0.1:80",
      "1..2.3:80",
      "1.2.3:80",
      "01.2.3.4:80",
      " host:80",
      "-host:80",
      "host_1:80",
      `${"a".repeat(254)}:80`,
      `${"a".repeat(64)}.b:80`,
    ];
    for (const value of bad) {
      await t.step(`refuses ${JSON.stringify(value.slice(0, 40))}`, () => {
        assert.equal(parseMeshAddress(value), null);
      });
    }
    assert.equal(parseMeshAddress(80), null);
  },
});

Deno.test({
  name: "PresenceSubjects names each subject under the prefix and parses claim subjects strictly",
  permissions: "none",
  fn(): void {
    const subjects = new PresenceSubjects("alphanet.0123456789abcdef");
    assert.equal(subjects.vip(167772161), "alphanet.0123456789abcdef.vip.167772161");
    assert.equal(subjects.claim(0), "alphanet.0123456789abcdef.claim.0");
    assert.equal(subjects.claims(), "alphanet.0123456789abcdef.claim.*");
    assert.equal(subjects.dial(NODE), `alphanet.0123456789abcdef.node.${NODE}.dial`);
    assert.equal(subjects.claimAddress("alphanet.0123456789abcdef.claim.4294967295"), 4294967295);
    assert.equal(subjects.claimAddress("alphanet.0123456789abcdef.claim.0"), 0);
    for (
      const token of ["4294967296", "01", "-1", "1.5", "", "1e3", "abc", "99999999999", "1.2"]
    ) {
      assert.equal(subjects.claimAddress(`alphanet.0123456789abcdef.claim.${token}`), null, token);
    }
    assert.equal(subjects.claimAddress("other.claim.1"), null);
    for (const prefix of ["", "a.", ".a", "a..b", "a.*", "a.>", "a b", "a\tb", "x".repeat(129)]) {
      assert.throws(() => checkPrefix(prefix), TypeError, JSON.stringify(prefix));
    }
    for (const address of [-1, 2 ** 32, 1.5, NaN]) {
      assert.throws(() => checkAddress(address), RangeError, String(address));
    }
  },
});
