/** A recording of a client's state changes that tests can wait on. */

import type { AlphaNetClient, ClientState, StateChangeEvent } from "../../mod.ts";
import { STEP_MS, withTimeout } from "./async.ts";

/** Every `statechange` of a client, in order, with a way to wait for the next of a kind. */
export interface StateLog {
  /** Every event so far. */
  readonly events: readonly StateChangeEvent[];
  /** The states so far. */
  states(): ClientState[];
  /** Waits for the next event (after the last one returned) with `state`. */
  next(state: ClientState, what?: string, ms?: number): Promise<StateChangeEvent>;
}

/** Starts recording `client`'s state changes. */
export function recordStates(client: AlphaNetClient): StateLog {
  const events: StateChangeEvent[] = [];
  let cursor = 0;
  let wake: (() => void) | null = null;
  client.addEventListener("statechange", (event) => {
    events.push(event);
    wake?.();
  });
  return {
    events,
    states: () => events.map((event) => event.state),
    async next(state, what = `state ${state}`, ms = STEP_MS): Promise<StateChangeEvent> {
      const deadline = performance.now() + ms;
      // Each pass consumes at least one event or waits for one: bounded by the events that arrive.
      while (true) {
        const found = events.findIndex((event, i) => i >= cursor && event.state === state);
        if (found >= 0) {
          cursor = found + 1;
          return events[found];
        }
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`Timed out after ${ms} ms: ${what} (saw ${this.states()})`);
        await withTimeout(new Promise<void>((resolve) => wake = resolve), left, what);
      }
    },
  };
}
