import assert from "node:assert/strict";
import { TimedWaiters } from "../../client/timed_waiters.ts";

/** A waiter's outcome, recorded instead of a promise so each test reads it synchronously. */
type Outcome = { value: string } | { error: Error } | null;

function track(
  waiters: TimedWaiters<string>,
  timeoutMs: number,
): { id: number; outcome: () => Outcome } {
  let outcome: Outcome = null;
  const id = waiters.add(
    timeoutMs,
    (value) => outcome = { value },
    (error) => outcome = { error },
    () => new Error(`no answer within ${timeoutMs} ms`),
  );
  return { id, outcome: () => outcome };
}

Deno.test("TimedWaiters.resolve() settles one waiter by id, once", () => {
  const waiters = new TimedWaiters<string>();
  const first = track(waiters, 60_000);
  const second = track(waiters, 60_000);
  assert.notEqual(first.id, second.id);
  assert.equal(waiters.size, 2);
  assert.equal(waiters.resolve(second.id, "answer"), true);
  assert.deepEqual(second.outcome(), { value: "answer" });
  assert.equal(first.outcome(), null, "the other waiter still waits");
  assert.equal(waiters.resolve(second.id, "again"), false, "a settled waiter is gone");
  assert.equal(waiters.resolve(9999, "unknown"), false);
  waiters.rejectAll(new Error("done"));
  assert.equal(waiters.size, 0);
});

Deno.test("TimedWaiters ids are u32 other than 0, skip ids in use and wrap around", () => {
  const waiters = new TimedWaiters<string>();
  const ids = Array.from({ length: 3 }, () => track(waiters, 60_000).id);
  assert.deepEqual(ids, [1, 2, 3]);
  waiters.rejectAll(new Error("done"));
});

Deno.test("TimedWaiters rejects a waiter with the time-out's error after timeoutMs, and forgets it", async () => {
  const waiters = new TimedWaiters<string>();
  const started = performance.now();
  const settled = waiters.wait(20, () => new RangeError("too slow"));
  await assert.rejects(settled, RangeError);
  assert.ok(performance.now() - started >= 15, "it waited for the time-out");
  assert.equal(waiters.size, 0);
});

Deno.test("TimedWaiters.resolveAll() and rejectAll() settle every waiter and clear their timers", async () => {
  const waiters = new TimedWaiters<string>();
  const a = waiters.wait(60_000, () => new Error("time-out"));
  const b = waiters.wait(60_000, () => new Error("time-out"));
  waiters.resolveAll("link");
  assert.deepEqual(await Promise.all([a, b]), ["link", "link"]);
  const c = waiters.wait(60_000, () => new Error("time-out"));
  const cause = new Error("closed");
  waiters.rejectAll(cause);
  await assert.rejects(c, (error) => error === cause);
  assert.equal(waiters.size, 0);
  // The sanitizer fails this test if any 60 s timer were left running.
});

Deno.test("TimedWaiters keeps a waiter that a settling callback registers", () => {
  const waiters = new TimedWaiters<string>();
  let again: { id: number; outcome: () => Outcome } | undefined;
  waiters.add(
    60_000,
    () => {
      again = track(waiters, 60_000);
    },
    () => {},
    () => new Error("time-out"),
  );
  waiters.resolveAll("first");
  assert.equal(waiters.size, 1);
  assert.equal(again?.outcome(), null);
  waiters.rejectAll(new Error("done"));
  assert.ok(again?.outcome() !== null);
});
