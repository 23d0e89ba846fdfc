import assert from "node:assert/strict";
import { Logger } from "../../server/log.ts";
import { RateLimitedLog } from "../../server/log_limiter.ts";

/** Runs `body` with console.error captured. */
function captured(body: () => void): string[] {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    body();
  } finally {
    console.error = original;
  }
  return lines;
}

Deno.test("RateLimitedLog writes a burst per event, then one line saying how many it suppressed", () => {
  const T0 = 1_000;
  const log = new RateLimitedLog(new Logger("info"));
  const lines = captured(() => {
    for (let i = 0; i < 1000; i++) log.log("warn", "link-refused", { i }, T0);
    log.log("warn", "sweep", {}, T0); // another event has its own budget
    log.report(T0);
    log.report(T0); // nothing more to say
  });
  const written = lines.filter((line) => !line.includes("log-suppressed"));
  assert.equal(written.filter((line) => line.includes(" link-refused ")).length, 20);
  assert.equal(written.filter((line) => line.includes(" sweep")).length, 1);
  const report = lines.filter((line) => line.includes("log-suppressed"));
  assert.equal(report.length, 1);
  assert.match(report[0], /980 more link-refused lines suppressed/);
});

Deno.test("RateLimitedLog writes nothing, and counts nothing, below its logger's level", () => {
  const log = new RateLimitedLog(new Logger("warn"));
  const lines = captured(() => {
    for (let i = 0; i < 100; i++) log.log("debug", "request-refused", {}, 0);
    log.report(0);
  });
  assert.deepEqual(lines, []);
});
