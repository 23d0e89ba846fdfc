/**
 * Whether a timer keeps the process alive: Deno's `refTimer`/`unrefTimer`,
 * and nothing where there is no Deno (a browser, where timers never keep
 * anything alive).
 *
 * @module
 */

/** The two functions of Deno's namespace this module uses. */
interface TimerRefs {
  refTimer(id: number): void;
  unrefTimer(id: number): void;
}

/**
 * Lets `timer` keep the process alive, or not. Reads `Deno` only when
 * called, and does nothing without it, so the WebSocket client runs in a
 * browser.
 *
 * @param timer What `setTimeout` returned.
 * @param keep Whether the timer keeps the process alive.
 */
export function refTimer(timer: ReturnType<typeof setTimeout>, keep: boolean): void {
  const deno = (globalThis as { Deno?: Partial<TimerRefs> }).Deno;
  if (typeof deno?.refTimer !== "function" || typeof deno.unrefTimer !== "function") return;
  // Deno's global setTimeout returns a number; the type says otherwise once node types load.
  const id = timer as unknown as number;
  if (keep) deno.refTimer(id);
  else deno.unrefTimer(id);
}
