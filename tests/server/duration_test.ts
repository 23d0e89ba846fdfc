import assert from "node:assert/strict";
import { parseDuration } from "../../server/duration.ts";
import { parseRelayFlags } from "../../server/flags.ts";
import { UsageError } from "../../flags/usage_error.ts";

Deno.test("parseDuration reads seconds, minutes, hours and days", async (t) => {
  const cases: [string, number | null][] = [
    ["0", 0],
    ["45", 45_000],
    ["45s", 45_000],
    ["30m", 1_800_000],
    ["1.5h", 5_400_000],
    ["90d", 90 * 86_400_000],
    ["", null],
    ["d", null],
    ["-1d", null],
    ["1w", null],
    [" 1d", null],
    ["1e3", null],
    ["1d ", null],
  ];
  for (const [text, ms] of cases) {
    await t.step(JSON.stringify(text), () => assert.equal(parseDuration(text), ms));
  }
});

Deno.test("--address-ttl takes a duration into addressTtlMs, and refuses anything else", () => {
  assert.deepEqual(parseRelayFlags(["--address-ttl", "90d"]), {
    help: false,
    options: { addressTtlMs: 90 * 86_400_000 },
    tlsFiles: null,
  });
  assert.throws(() => parseRelayFlags(["--address-ttl", "soon"]), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.match(error.message, /^bad --address-ttl "soon": expected a duration/);
    return true;
  });
});
