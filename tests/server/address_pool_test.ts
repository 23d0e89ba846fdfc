import assert from "node:assert/strict";
import { AddressPool } from "../../server/address_pool.ts";
import { parseCidr, parseIpv4 } from "../../protocol/address.ts";

function ip(text: string): number {
  const address = parseIpv4(text);
  if (address === null) throw new Error(`bad test address ${text}`);
  return address;
}

const RESERVED = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

Deno.test("the default pool excludes the first and last address of every reserved range", () => {
  const pool = AddressPool.default();
  for (const cidr of RESERVED) {
    const range = parseCidr(cidr)!;
    assert.equal(pool.contains(range.first), false, `${cidr} first`);
    assert.equal(pool.contains(range.last), false, `${cidr} last`);
  }
});

Deno.test("the default pool includes the unicast addresses next to reserved ranges", () => {
  const pool = AddressPool.default();
  for (
    const text of [
      "1.0.0.0",
      "9.255.255.255",
      "11.0.0.0",
      "100.63.255.255",
      "100.128.0.0",
      "126.255.255.255",
      "128.0.0.0",
      "192.0.1.0",
      "198.17.255.255",
      "223.255.255.255",
    ]
  ) {
    assert.equal(pool.contains(ip(text)), true, text);
  }
});

Deno.test("the default pool holds exactly the addresses left after removing reserved ranges", () => {
  const removed = 3 * 2 ** 24 + // 0/8, 10/8, 127/8
    2 ** 22 + // 100.64/10
    2 * 2 ** 16 + // 169.254/16, 192.168/16
    2 ** 20 + // 172.16/12
    4 * 2 ** 8 + // 192.0.0/24, 192.0.2/24, 198.51.100/24, 203.0.113/24
    2 ** 17 + // 198.18/15
    2 * 2 ** 28; // 224/4, 240/4
  assert.equal(2 ** 32 - removed, 3_702_258_688);
  assert.equal(AddressPool.default().size, 3_702_258_688);
});

Deno.test("the default pool's ranges are sorted, disjoint and sum to its size", () => {
  const pool = AddressPool.default();
  let total = 0;
  let previousLast = -2;
  for (const range of pool.ranges) {
    assert.ok(range.first > previousLast + 1, "ranges are disjoint and not adjacent");
    assert.ok(range.first <= range.last);
    total += range.last - range.first + 1;
    previousLast = range.last;
  }
  assert.equal(total, pool.size);
});

Deno.test("at walks the pool in ascending order across range boundaries", () => {
  const pool = AddressPool.default();
  assert.equal(pool.at(0), ip("1.0.0.0"));
  assert.equal(pool.at(ip("9.255.255.255") - ip("1.0.0.0")), ip("9.255.255.255"));
  assert.equal(pool.at(ip("10.0.0.0") - ip("1.0.0.0")), ip("11.0.0.0"));
  assert.equal(pool.at(pool.size - 1), ip("223.255.255.255"));
  for (let i = 0; i < 1000; i++) {
    const index = Math.floor(Math.random() * pool.size);
    assert.equal(pool.contains(pool.at(index)), true);
  }
  assert.throws(() => pool.at(pool.size), RangeError);
  assert.throws(() => pool.at(-1), RangeError);
  assert.throws(() => pool.at(0.5), RangeError);
});

Deno.test("a /29 range drops its network and broadcast addresses", () => {
  const pool = AddressPool.fromCidr("10.0.0.0/29");
  assert.equal(pool.size, 6);
  assert.deepEqual(
    Array.from({ length: 6 }, (_, i) => pool.at(i)),
    [1, 2, 3, 4, 5, 6].map((n) => ip("10.0.0.0") + n),
  );
  assert.equal(pool.contains(ip("10.0.0.0")), false);
  assert.equal(pool.contains(ip("10.0.0.7")), false);
});

Deno.test("a /30 range keeps only its two host addresses", () => {
  const pool = AddressPool.fromCidr("192.168.1.4/30");
  assert.deepEqual(pool.ranges, [{ first: ip("192.168.1.5"), last: ip("192.168.1.6") }]);
});

Deno.test("/31 and /32 ranges keep every address", () => {
  assert.equal(AddressPool.fromCidr("10.0.0.0/31").size, 2);
  const single = AddressPool.fromCidr("10.1.2.3/32");
  assert.equal(single.size, 1);
  assert.equal(single.at(0), ip("10.1.2.3"));
});

Deno.test("private ranges are allowed for --vip-range", () => {
  const pool = AddressPool.fromCidr("10.0.0.0/8");
  assert.equal(pool.size, 2 ** 24 - 2);
  assert.equal(pool.contains(ip("10.20.30.40")), true);
});

Deno.test("--vip-range never yields loopback, multicast, reserved or 0/8 addresses", () => {
  const pool = AddressPool.fromCidr("0.0.0.0/0");
  // Only 0/8, 127/8, 224/4 and 240/4 go; they also hold the network and broadcast addresses.
  assert.equal(pool.size, 2 ** 32 - 2 * 2 ** 24 - 2 * 2 ** 28);
  for (const text of ["0.0.0.1", "127.0.0.1", "224.0.0.1", "255.255.255.254"]) {
    assert.equal(pool.contains(ip(text)), false, text);
  }
  assert.equal(AddressPool.fromCidr("126.0.0.0/7").size, 2 ** 24 - 1);
});

Deno.test("invalid --vip-range text throws a RangeError that names the problem", () => {
  const cases: [string, RegExp][] = [
    ["10.0.0.1/8", /^Cannot use --vip-range 10\.0\.0\.1\/8: host bits are set$/],
    ["10.0.0.0", /expected a CIDR block/],
    ["10.0.0/8", /is not an IPv4 address/],
    ["10.0.0.0/33", /prefix length "33" is not 0\.\.32/],
    ["10.0.0.0/08", /prefix length/],
    ["", /expected a CIDR block/],
    [" 10.0.0.0/8", /is not an IPv4 address/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => AddressPool.fromCidr(text), (error: unknown) => {
      assert.ok(error instanceof RangeError, text);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("a --vip-range with no usable address throws a RangeError", () => {
  for (const text of ["127.0.0.0/8", "127.0.0.1/32", "224.0.0.0/3", "0.0.0.0/8"]) {
    assert.throws(() => AddressPool.fromCidr(text), /no assignable unicast addresses/, text);
  }
});
