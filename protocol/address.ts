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
 * Parses a dotted-quad IPv4 address into a u32, or returns null. Rejects
 * anything but four plain decimal octets 0..255 without leading zeros:
 * `"1..2.3"`, `"0x10.0.0.1"`, `"1e2.0.0.1"`, `" 1.2.3.4"`, `"256.0.0.1"`, `"01.2.3.4"`.
 *
 * @example
 * ```ts
 * import { parseIpv4 } from "@alphanet/net";
 * console.log(parseIpv4("10.0.0.1")); // 167772161
 * console.log(parseIpv4("10.0.0.256")); // null
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
 * @example
 * ```ts
 * import { formatIpv4 } from "@alphanet/net";
 * console.log(formatIpv4(167772161)); // "10.0.0.1"
 * ```
 */
export function formatIpv4(address: number): string {
  if (!Number.isInteger(address) || address < 0 || address > 0xffff_ffff) {
    throw new RangeError(`Cannot format IPv4 address: ${address} is not a u32`);
  }
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

/** An inclusive range of IPv4 addresses as u32s. */
export interface Ipv4Range {
  /** First address of the range. */
  readonly first: number;
  /** Last address of the range, inclusive. */
  readonly last: number;
}

/**
 * Parses `"a.b.c.d/n"` into the range it covers, or returns null. The
 * address must be the network address (no host bits set).
 *
 * @example
 * ```ts
 * import { parseCidr } from "@alphanet/net";
 * console.log(parseCidr("10.1.0.0/16")); // { first: 167837696, last: 167903231 }
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
