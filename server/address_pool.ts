/**
 * The set of virtual IPv4 addresses the relay may hand out, as sorted,
 * disjoint, inclusive u32 ranges.
 *
 * @module
 */

import { formatIpv4, type Ipv4Range, parseCidr, parseIpv4 } from "../protocol/address.ts";

const IPV4_COUNT = 2 ** 32;

/**
 * Special-purpose blocks (RFC 6890 and friends) that the default pool never
 * assigns, so a virtual IP can't be confused with a real private, loopback,
 * documentation or multicast address.
 */
const RESERVED_CIDRS: readonly (readonly [cidr: string, why: string])[] = [
  ["0.0.0.0/8", "'this network'; 0.0.0.0 means 'any' to sockets"],
  ["10.0.0.0/8", "RFC 1918 private network"],
  ["100.64.0.0/10", "RFC 6598 carrier-grade NAT shared space"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local (APIPA)"],
  ["172.16.0.0/12", "RFC 1918 private network"],
  ["192.0.0.0/24", "IETF protocol assignments"],
  ["192.0.2.0/24", "TEST-NET-1 documentation"],
  ["192.168.0.0/16", "RFC 1918 private network"],
  ["198.18.0.0/15", "benchmarking (RFC 2544)"],
  ["198.51.100.0/24", "TEST-NET-2 documentation"],
  ["203.0.113.0/24", "TEST-NET-3 documentation"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved for future use, includes broadcast 255.255.255.255"],
];

/**
 * Blocks that are never unicast-usable, so even an explicit --vip-range
 * can't hand them out (unlike private ranges, which are the point of it).
 */
const NEVER_UNICAST_CIDRS: readonly string[] = [
  "0.0.0.0/8",
  "127.0.0.0/8",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

/** Parses a CIDR from the constant tables above; a typo there is a bug. */
function constantCidr(cidr: string): Ipv4Range {
  const range = parseCidr(cidr);
  if (range === null) throw new Error(`Invalid built-in CIDR ${cidr}`);
  return range;
}

/** Returns `ranges` minus every range in `holes`; both sorted and disjoint. */
function subtract(ranges: readonly Ipv4Range[], holes: readonly Ipv4Range[]): Ipv4Range[] {
  const result: Ipv4Range[] = [];
  for (const range of ranges) {
    let first = range.first;
    for (const hole of holes) {
      if (hole.last < first || hole.first > range.last) continue;
      if (hole.first > first) result.push({ first, last: hole.first - 1 });
      first = hole.last + 1;
      if (first > range.last) break;
    }
    if (first <= range.last) result.push({ first, last: range.last });
  }
  return result;
}

/** Sorts by start; the tables hold no overlapping blocks, so no merge is needed. */
function sortedRanges(cidrs: readonly string[]): Ipv4Range[] {
  return cidrs.map(constantCidr).sort((a, b) => a.first - b.first);
}

/**
 * Assignable virtual IPv4 addresses. Indexing (`at`) lets the registry pick
 * a uniformly random address without materialising billions of them.
 *
 * @example
 * ```ts
 * import { AddressPool } from "./address_pool.ts";
 * const pool = AddressPool.fromCidr("10.0.0.0/29");
 * console.log(pool.size); // 6
 * ```
 */
export class AddressPool {
  #ranges: readonly Ipv4Range[];
  /** `#starts[i]` is the pool index of `#ranges[i].first`. */
  #starts: readonly number[];
  #size: number;

  private constructor(ranges: readonly Ipv4Range[]) {
    this.#ranges = Object.freeze(ranges.map((range) => Object.freeze({ ...range })));
    const starts: number[] = [];
    let size = 0;
    for (const range of ranges) {
      starts.push(size);
      size += range.last - range.first + 1;
    }
    this.#starts = starts;
    this.#size = size;
  }

  /** All unicast IPv4 except the private and special-purpose blocks. */
  static default(): AddressPool {
    return new AddressPool(
      subtract([{ first: 0, last: IPV4_COUNT - 1 }], sortedRanges(RESERVED_CIDRS.map(([c]) => c))),
    );
  }

  /**
   * The pool for `--vip-range`: the CIDR block minus its network and
   * broadcast addresses (for prefixes up to /30) and minus blocks that are
   * never unicast. Throws `RangeError` for invalid text or an empty pool.
   */
  static fromCidr(text: string): AddressPool {
    const range = parseCidr(text);
    if (range === null) {
      throw new RangeError(`Cannot use --vip-range ${text}: ${cidrProblem(text)}`);
    }
    const prefix = 32 - Math.log2(range.last - range.first + 1);
    // /31 (RFC 3021) and /32 have no network or broadcast address to avoid.
    const usable = prefix <= 30 ? { first: range.first + 1, last: range.last - 1 } : range;
    const pool = new AddressPool(subtract([usable], sortedRanges(NEVER_UNICAST_CIDRS)));
    if (pool.size === 0) {
      throw new RangeError(
        `Cannot use --vip-range ${text}: it holds no assignable unicast addresses`,
      );
    }
    return pool;
  }

  /** Number of assignable addresses. */
  get size(): number {
    return this.#size;
  }

  /** The sorted, disjoint, inclusive ranges making up the pool. */
  get ranges(): readonly Ipv4Range[] {
    return this.#ranges;
  }

  /** The `index`-th address in ascending order; `index` is in `[0, size)`. */
  at(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.#size) {
      throw new RangeError(`Cannot get pool address ${index}: pool holds ${this.#size}`);
    }
    // Binary search for the last range starting at or before `index`.
    let low = 0;
    let high = this.#starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (this.#starts[mid] <= index) low = mid;
      else high = mid - 1;
    }
    return this.#ranges[low].first + (index - this.#starts[low]);
  }

  /**
   * The ranges as text, `first-last` dotted quads joined by commas: equal
   * pools give equal text, so the registry keys its walk of a pool by it.
   */
  toString(): string {
    return this.#ranges.map((range) => `${formatIpv4(range.first)}-${formatIpv4(range.last)}`)
      .join(",");
  }

  /** Whether `address` (a u32) is assignable from this pool. */
  contains(address: number): boolean {
    let low = 0;
    let high = this.#ranges.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const range = this.#ranges[mid];
      if (address < range.first) high = mid - 1;
      else if (address > range.last) low = mid + 1;
      else return true;
    }
    return false;
  }
}

/** Explains why `text` is not a valid CIDR block, for the error message. */
function cidrProblem(text: string): string {
  const slash = text.indexOf("/");
  if (slash < 0) return "expected a CIDR block such as 10.0.0.0/8";
  if (parseIpv4(text.slice(0, slash)) === null) {
    return `${JSON.stringify(text.slice(0, slash))} is not an IPv4 address`;
  }
  const bits = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(bits) || Number(bits) > 32) {
    return `prefix length ${JSON.stringify(bits)} is not 0..32`;
  }
  return "host bits are set";
}
