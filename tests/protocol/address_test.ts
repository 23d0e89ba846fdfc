/** IPv4 addresses and CIDR blocks: strict parsing, formatting, round trips. */

import assert from "node:assert/strict";
import fc from "fast-check";
import { formatIpv4, parseCidr, parseIpv4 } from "../../protocol/mod.ts";

Deno.test({
  name: "parseIpv4() accepts plain dotted quads",
  permissions: "none",
  async fn(t): Promise<void> {
    const cases: [string, number][] = [
      ["0.0.0.0", 0],
      ["10.0.0.1", 0x0a00_0001],
      ["127.0.0.1", 0x7f00_0001],
      ["192.168.1.254", 0xc0a8_01fe],
      ["1.2.3.4", 0x0102_0304],
      ["100.64.0.10", 0x6440_000a],
      ["255.255.255.255", 0xffff_ffff],
      ["128.0.0.0", 0x8000_0000],
    ];
    for (const [text, value] of cases) {
      await t.step(`"${text}" is ${value}`, () => {
        assert.equal(parseIpv4(text), value);
      });
    }
  },
});

Deno.test({
  name: "parseIpv4() rejects anything but four plain decimal octets",
  permissions: "none",
  async fn(t): Promise<void> {
    const rejected = [
      "1..2.3",
      "0x10.0.0.1",
      "1e2.0.0.1",
      " 1.2.3.4",
      "1.2.3.4 ",
      "256.0.0.1",
      "1.2.3.256",
      "999.0.0.1",
      "01.2.3.4",
      "1.2.3.04",
      "00.0.0.0",
      "1.2.3",
      "1.2.3.4.5",
      "",
      "1.2.3.",
      ".1.2.3",
      "1.2.3.4\n",
      "\n1.2.3.4",
      "-1.2.3.4",
      "+1.2.3.4",
      "1.2.3.4/32",
      "1234.0.0.1",
      "a.b.c.d",
      "1.2.3.4:80",
      "1,2,3,4",
      "١.٢.٣.٤",
      "1.2.3.4\u0000",
    ];
    for (const text of rejected) {
      await t.step(`rejects ${JSON.stringify(text)}`, () => {
        assert.equal(parseIpv4(text), null);
      });
    }
  },
});

Deno.test({
  name: "formatIpv4() writes dotted quads",
  permissions: "none",
  fn(): void {
    assert.equal(formatIpv4(0), "0.0.0.0");
    assert.equal(formatIpv4(0x0a00_0001), "10.0.0.1");
    assert.equal(formatIpv4(0x8000_0000), "128.0.0.0");
    assert.equal(formatIpv4(0xffff_ffff), "255.255.255.255");
    assert.equal(formatIpv4(0x0102_0304), "1.2.3.4");
  },
});

Deno.test({
  name: "formatIpv4() throws RangeError on a number that is not a u32",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const value of [-1, 2 ** 32, 1.5, NaN, Infinity, -Infinity, 2 ** 53]) {
      await t.step(`${value}`, () => {
        assert.throws(() => formatIpv4(value), RangeError);
      });
    }
  },
});

Deno.test({
  name: "parseIpv4(formatIpv4(n)) is n for every u32",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (n) => {
        assert.equal(parseIpv4(formatIpv4(n)), n);
      }),
      { numRuns: 1000 },
    );
  },
});

Deno.test({
  name: "formatIpv4(parseIpv4(s)) is s for every canonical dotted quad",
  permissions: "none",
  fn(): void {
    const octet = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), (octets) => {
        const text = octets.join(".");
        const parsed = parseIpv4(text);
        assert.ok(parsed !== null);
        assert.equal(formatIpv4(parsed), text);
      }),
      { numRuns: 500 },
    );
  },
});

Deno.test({
  name: "parseIpv4() never accepts a string that does not format back to itself",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."0123456789. x"), maxLength: 20 }), (s) => {
        const parsed = parseIpv4(s);
        if (parsed !== null) assert.equal(formatIpv4(parsed), s);
      }),
      { numRuns: 1000 },
    );
  },
});

Deno.test({
  name: "parseCidr() parses network blocks into inclusive ranges",
  permissions: "none",
  async fn(t): Promise<void> {
    const cases: [string, number, number][] = [
      ["0.0.0.0/0", 0, 0xffff_ffff],
      ["10.0.0.0/8", 0x0a00_0000, 0x0aff_ffff],
      ["10.1.0.0/16", 0x0a01_0000, 0x0a01_ffff],
      ["100.64.0.0/10", 0x6440_0000, 0x647f_ffff],
      ["192.168.1.0/24", 0xc0a8_0100, 0xc0a8_01ff],
      ["10.0.0.4/30", 0x0a00_0004, 0x0a00_0007],
      ["10.0.0.1/32", 0x0a00_0001, 0x0a00_0001],
      ["255.255.255.255/32", 0xffff_ffff, 0xffff_ffff],
      ["128.0.0.0/1", 0x8000_0000, 0xffff_ffff],
    ];
    for (const [text, first, last] of cases) {
      await t.step(text, () => {
        assert.deepEqual(parseCidr(text), { first, last });
      });
    }
  },
});

Deno.test({
  name: "parseCidr() rejects malformed blocks and blocks with host bits set",
  permissions: "none",
  async fn(t): Promise<void> {
    const rejected = [
      "10.0.0.1/8",
      "10.0.0.1/0",
      "10.0.0.3/31",
      "192.168.1.1/24",
      "10.0.0.0/33",
      "10.0.0.0/99",
      "10.0.0.0",
      "10.0.0.0/",
      "/8",
      "10.0.0.0/08",
      "10.0.0.0/00",
      "10.0.0.0/-1",
      "10.0.0.0/+8",
      "10.0.0.0/8/8",
      "10.0.0.0/ 8",
      "10.0.0.0 /8",
      "10.0.0.0/8 ",
      "10.0.0.0/0x8",
      "256.0.0.0/8",
      "01.0.0.0/8",
      "",
    ];
    for (const text of rejected) {
      await t.step(`rejects ${JSON.stringify(text)}`, () => {
        assert.equal(parseCidr(text), null);
      });
    }
  },
});

Deno.test({
  name: "parseCidr() covers 2**(32-n) addresses starting at its aligned network address",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 32 }), (
        address,
        bits,
      ) => {
        const size = 2 ** (32 - bits);
        const network = address - (address % size);
        const range = parseCidr(`${formatIpv4(network)}/${bits}`);
        assert.deepEqual(range, { first: network, last: network + size - 1 });
        if (address !== network) assert.equal(parseCidr(`${formatIpv4(address)}/${bits}`), null);
      }),
      { numRuns: 1000 },
    );
  },
});
