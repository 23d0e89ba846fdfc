import assert from "node:assert/strict";
import { randomIndex } from "../../server/random_index.ts";

Deno.test("randomIndex() stays in [0, size) from one index to the whole 32-bit range", () => {
  assert.equal(randomIndex(1), 0);
  for (const size of [2, 3, 10, 2 ** 31 + 1, 3_702_258_688, 2 ** 32]) {
    for (let draw = 0; draw < 100; draw++) {
      const index = randomIndex(size);
      assert.ok(Number.isInteger(index) && index >= 0 && index < size, `${size}: ${index}`);
    }
  }
});

Deno.test("randomIndex() reaches every index of a small range", () => {
  // 300 draws miss one of three indexes with probability below 1e-52.
  const seen = new Set(Array.from({ length: 300 }, () => randomIndex(3)));
  assert.deepEqual([...seen].sort(), [0, 1, 2]);
});
