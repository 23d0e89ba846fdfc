/**
 * Time in the tests: a bounded wait for a promise, and polling for state
 * that has no event to wait on.
 */

/** Default time-out of one awaited step in the tests. */
export const STEP_MS = 5_000;

/**
 * Resolves or rejects like `promise`, or rejects with a message naming
 * `what` after `ms`. The timer is always cleared.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`: for the few tests that must show something does not happen. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How often {@linkcode waitUntil} checks its condition. */
const POLL_MS = 10;

/**
 * Waits until `condition()` holds, checking every 10 ms, at most `ms` long
 * (so at most `ms / 10 + 1` checks). For state that has no event to wait on,
 * such as the relay's link count.
 */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  ms: number = STEP_MS,
): Promise<void> {
  const deadline = performance.now() + ms;
  for (let checks = 0; checks <= ms / POLL_MS + 1; checks++) {
    if (condition()) return;
    if (performance.now() >= deadline) break;
    await delay(POLL_MS);
  }
  if (!condition()) throw new Error(`Timed out after ${ms} ms: ${what}`);
}
