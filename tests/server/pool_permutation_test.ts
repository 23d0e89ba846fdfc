import assert from "node:assert/strict";
import { PERMUTATION_KEY_BYTES, PoolPermutation } from "../../server/pool_permutation.ts";

function key(seed: number): Uint8Array {
  return new Uint8Array(PERMUTATION_KEY_BYTES).map((_, i) => (seed * 31 + i * 7) & 0xff);
}

/** Whether `permutation` maps `[0, size)` onto itself one to one. */
function isBijection(permutation: PoolPermutation): boolean {
  const seen = new Uint8Array(permutation.size);
  for (let i = 0; i < permutation.size; i++) {
    const image = permutation.at(i);
    if (!Number.isInteger(image) || image < 0 || image >= permutation.size || seen[image]) {
      return false;
    }
    seen[image] = 1;
  }
  return true;
}

Deno.test("PoolPermutation is a bijection of [0, size) for every small size and odd bit count", () => {
  for (let size = 1; size <= 100; size++) {
    assert.ok(isBijection(new PoolPermutation(size, key(size))), `size ${size}`);
  }
  for (const size of [1022, 4094, 8190, 16_382]) {
    assert.ok(isBijection(new PoolPermutation(size, key(size))), `size ${size}`);
  }
});

Deno.test("PoolPermutation covers the whole default pool's index space without overflow", () => {
  const size = 3_702_258_688;
  const permutation = new PoolPermutation(size, key(1));
  const images = new Set<number>();
  for (const index of [0, 1, 2, size - 2, size - 1]) {
    const image = permutation.at(index);
    assert.ok(Number.isInteger(image) && image >= 0 && image < size, `${index} -> ${image}`);
    images.add(image);
  }
  assert.equal(images.size, 5);
});

Deno.test("PoolPermutation orders differ by key and are not sequential", () => {
  const size = 4094;
  const a = new PoolPermutation(size, key(1));
  const b = new PoolPermutation(size, key(2));
  const first = Array.from({ length: 100 }, (_, i) => a.at(i));
  const other = Array.from({ length: 100 }, (_, i) => b.at(i));
  assert.notDeepEqual(first, other);
  assert.equal(new PoolPermutation(size, key(1)).at(42), a.at(42), "the same key, the same order");
  const steps = first.filter((image, i) => i > 0 && Math.abs(image - first[i - 1]) === 1);
  assert.ok(steps.length < 5, `${steps.length} of 99 steps were ±1`);
});

Deno.test("PoolPermutation rejects bad sizes, keys and indexes with RangeError", () => {
  assert.throws(() => new PoolPermutation(0, key(1)), RangeError);
  assert.throws(() => new PoolPermutation(2 ** 32 + 1, key(1)), RangeError);
  assert.throws(() => new PoolPermutation(10, new Uint8Array(16)), RangeError);
  const permutation = new PoolPermutation(10, key(1));
  for (const index of [-1, 10, 1.5, NaN]) {
    assert.throws(() => permutation.at(index), RangeError, String(index));
  }
});
