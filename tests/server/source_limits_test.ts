import assert from "node:assert/strict";
import { MAX_REMEMBERED_REGISTRATION_SOURCES, SourceLimits } from "../../server/source_limits.ts";

const HOUR_MS = 3_600_000;

function limits(perHour: number): SourceLimits {
  return new SourceLimits({
    maxLinksPerIp: 0,
    maxHandshakesPerIp: 0,
    maxRequestsPerIp: 0,
    maxNewIdentitiesPerIp: perHour,
  });
}

Deno.test("SourceLimits allows N new identities per IP an hour, at once, then one every hour/N", () => {
  const sources = limits(4);
  for (let i = 0; i < 4; i++) assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null);
  assert.match(sources.admitNewIdentity("192.0.2.7", 0) ?? "", /registered 4 new addresses/);
  assert.equal(sources.admitNewIdentity("192.0.2.8", 0), null, "another IP has its own");
  assert.notEqual(sources.admitNewIdentity("192.0.2.7", HOUR_MS / 4 - 1), null);
  assert.equal(sources.admitNewIdentity("192.0.2.7", HOUR_MS / 4 + 1), null);
  assert.notEqual(sources.admitNewIdentity("192.0.2.7", HOUR_MS / 4 + 1), null);
  for (let i = 0; i < 4; i++) {
    assert.equal(sources.admitNewIdentity("192.0.2.7", 3 * HOUR_MS), null);
  }
});

Deno.test("SourceLimits takes back a registration given back, never above the allowance", () => {
  const sources = limits(2);
  assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null);
  assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null);
  assert.notEqual(sources.admitNewIdentity("192.0.2.7", 0), null);
  sources.refundNewIdentity("192.0.2.7", 0);
  assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null, "the refund is one registration");
  assert.notEqual(sources.admitNewIdentity("192.0.2.7", 0), null);
  sources.refundNewIdentity("192.0.2.8", 0); // an IP never seen: nothing to give back
  for (let i = 0; i < 5; i++) sources.refundNewIdentity("192.0.2.7", 0);
  assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null);
  assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null);
  assert.notEqual(sources.admitNewIdentity("192.0.2.7", 0), null, "never more than the allowance");
});

Deno.test("SourceLimits with maxNewIdentitiesPerIp 0 never refuses a new identity", () => {
  const sources = limits(0);
  for (let i = 0; i < 1000; i++) assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null);
  assert.equal(sources.rememberedSize, 0);
});

Deno.test("SourceLimits keeps a spent allowance when the IP's last link closes: reconnecting does not reset it", () => {
  const sources = limits(2);
  const share = sources.admit("192.0.2.7");
  assert.ok(typeof share !== "string");
  assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null);
  assert.equal(sources.admitNewIdentity("192.0.2.7", 0), null);
  sources.release(share, false, 0);
  assert.equal(sources.size, 0);
  assert.equal(sources.rememberedSize, 1);
  const again = sources.admit("192.0.2.7");
  assert.ok(typeof again !== "string");
  assert.equal(sources.rememberedSize, 0, "the allowance went back into the share");
  assert.notEqual(sources.admitNewIdentity("192.0.2.7", 1), null);
  // Once full again it is what a fresh one would be, and is not remembered.
  sources.release(again, false, HOUR_MS + 1);
  assert.equal(sources.rememberedSize, 0);
});

Deno.test("SourceLimits remembers at most MAX_REMEMBERED_REGISTRATION_SOURCES linkless IPs, least recently used first out", () => {
  const sources = limits(1);
  const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  for (let i = 0; i <= MAX_REMEMBERED_REGISTRATION_SOURCES; i++) {
    assert.equal(sources.admitNewIdentity(ip(i), 0), null);
  }
  assert.equal(sources.rememberedSize, MAX_REMEMBERED_REGISTRATION_SOURCES);
  assert.equal(sources.admitNewIdentity(ip(0), 0), null, "the oldest was forgotten");
  assert.notEqual(sources.admitNewIdentity(ip(MAX_REMEMBERED_REGISTRATION_SOURCES), 0), null);
});
