/**
 * The presence payloads and subjects (issue 12), pinned without I/O: golden
 * bytes of each payload, the subjects, and the decoders' refusals.
 */

import assert from "node:assert/strict";
import {
  checkAddress,
  checkPrefix,
  decodeClaim,
  decodeDialAnswer,
  decodeNodeInfo,
  encodeClaim,
  encodeDialAnswer,
  encodeNodeInfo,
  MAX_DIAL_ERROR_CHARS,
  MAX_PAYLOAD_BYTES,
  parseMeshAddress,
  PresenceSubjects,
} from "../../server/cluster/presence_wire.ts";

const NODE = "0123456789abcdef0123456789abcdef";
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

Deno.test({
  name: "presence limits keep their values",
  permissions: "none",
  fn(): void {
    assert.equal(MAX_PAYLOAD_BYTES, 512);
    assert.equal(MAX_DIAL_ERROR_CHARS, 200);
  },
});

Deno.test({
  name: "presence payloads encode to their golden JSON and decode back",
  permissions: "none",
  fn(): void {
    const info = { node: NODE, mesh: "10.0.0.1:7000" };
    assert.equal(text(encodeNodeInfo(info)), `{"node":"${NODE}","mesh":"10.0.0.1:7000"}`);
    assert.deepEqual(decodeNodeInfo(encodeNodeInfo(info)), info);
    assert.equal(text(encodeClaim(NODE, 1234)), `{"node":"${NODE}","at":1234}`);
    assert.deepEqual(decodeClaim(encodeClaim(NODE, 1234)), { node: NODE, at: 1234 });
    assert.equal(text(encodeDialAnswer({ ok: true })), `{"ok":true}`);
    assert.equal(text(encodeDialAnswer({ ok: false, error: "no" })), `{"ok":false,"error":"no"}`);
    assert.deepEqual(decodeDialAnswer(encode(`{"ok":false,"error":"no"}`)), {
      ok: false,
      error: "no",
    });
    const long = encodeDialAnswer({ ok: false, error: "x".repeat(1_000) });
    assert.deepEqual(decodeDialAnswer(long), { ok: false, error: "x".repeat(200) });
    // Unknown keys are ignored, so a later version may add fields.
    assert.deepEqual(decodeNodeInfo(encode(`{"node":"${NODE}","mesh":"a:1","v":2}`)), {
      node: NODE,
      mesh: "a:1",
    });
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
