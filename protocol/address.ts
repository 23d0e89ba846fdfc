/**
 * IPv4 addresses and CIDR blocks, parsed once and strictly at the boundary.
 * Inside AlphaNET an address is an unsigned 32-bit integer.
 *
 * @module
 */

const DOTTED_QUAD =
  /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const IPV4_BITS = 32;

/**
 * Parses a dotted-quad IPv4 address into a u32. Accepts only four plain
 * decimal octets 0..255 without leading zeros, so each address has one
 * spelling: `"1..2.3"`, `"0x10.0.0.1"`, `"1e2.0.0.1"`, `" 1.2.3.4"`,
 * `"256.0.0.1"` and `"01.2.3.4"` are all refused.
 *
 * @param text The address as text.
 * @returns The address as an unsigned 32-bit integer, or null if `text` is not
 * a dotted-quad IPv4 address.
 *
 * @example Parse an address from user input
 * ```ts
 * import { parseIpv4 } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseIpv4("10.0.0.1"), 0x0a00_0001);
 * assert.equal(parseIpv4("10.0.0.256"), null);
 * assert.equal(parseIpv4("010.0.0.1"), null);
 * ```
 */
export function parseIpv4(text: string): number | null {
  const match = DOTTED_QUAD.exec(text);
  if (!match) return null;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(match[i]);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

/**
 * Formats a u32 as a dotted-quad IPv4 address.
 *
 * @param address The address as an unsigned 32-bit integer.
 * @returns The address as text, e.g. `"10.0.0.1"`.
 * @throws {RangeError} If `address` is not an integer in 0..2^32-1.
 *
 * @example Show a virtual address from a packet
 * ```ts
 * import { formatIpv4, parseIpv4 } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatIpv4(0x0a00_0001), "10.0.0.1");
 * assert.equal(formatIpv4(parseIpv4("192.168.7.42")!), "192.168.7.42");
 * assert.throws(() => formatIpv4(2 ** 32), RangeError);
 * ```
 */
export function formatIpv4(address: number): string {
  if (!Number.isInteger(address) || address < 0 || address > 0xffff_ffff) {
    throw new RangeError(`Cannot format IPv4 address: ${address} is not a u32`);
  }
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

/**
 * An inclusive range of IPv4 addresses as u32s.
 *
 * @example Check whether an address is in a range
 * ```ts
 * import { formatIpv4, type Ipv4Range, parseCidr, parseIpv4 } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const range: Ipv4Range = parseCidr("10.1.0.0/16")!;
 * const inRange = (address: number) => address >= range.first && address <= range.last;
 * assert.ok(inRange(parseIpv4("10.1.200.3")!));
 * assert.ok(!inRange(parseIpv4("10.2.0.0")!));
 * assert.equal(formatIpv4(range.last), "10.1.255.255");
 * ```
 */
export interface Ipv4Range {
  /** First address of the range. */
  readonly first: number;
  /** Last address of the range, inclusive. */
  readonly last: number;
}

/**
 * Parses `"a.b.c.d/n"` into the range of addresses it covers. The address
 * must be the network address (no host bits set), so `"10.0.0.1/8"` is
 * refused rather than silently widened.
 *
 * @param text The block in CIDR notation.
 * @returns The first and last address of the block, or null if `text` is not a
 * CIDR block.
 *
 * @example Parse an address pool
 * ```ts
 * import { formatIpv4, parseCidr } from "@alphanet/net/protocol";
 * import assert from "node:assert/strict";
 *
 * const pool = parseCidr("10.1.0.0/16");
 * assert.ok(pool !== null);
 * assert.equal(formatIpv4(pool.first), "10.1.0.0");
 * assert.equal(formatIpv4(pool.last), "10.1.255.255");
 * assert.equal(parseCidr("10.1.0.1/16"), null);
 * ```
 */
export function parseCidr(text: string): Ipv4Range | null {
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const base = parseIpv4(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (base === null || !/^(0|[1-9][0-9]?)$/.test(bitsText)) return null;
  const bits = Number(bitsText);
  if (bits > IPV4_BITS) return null;
  const size = 2 ** (IPV4_BITS - bits);
  if (base % size !== 0) return null;
  return { first: base, last: base + size - 1 };
}
