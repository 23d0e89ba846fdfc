/**
 * A client's lifecycle: its states, every transition in one table, and the
 * event that reports each change.
 *
 * @module
 */

/**
 * Where a client is in its life:
 * - `"connected"`: it holds a link to the relay;
 * - `"reconnecting"`: it lost its link and is getting a new one (listeners
 *   stay bound; `connect()`, `status()` and `ping()` wait for the link);
 * - `"closed"`: for good, by `close()` or an error that rules out reconnecting.
 *
 * @example React to each state
 * ```ts
 * import type { ClientState } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * function describe(state: ClientState): string {
 *   switch (state) {
 *     case "connected":
 *       return "online";
 *     case "reconnecting":
 *       return "offline for now";
 *     case "closed":
 *       return "gone";
 *   }
 * }
 * assert.equal(describe("reconnecting"), "offline for now");
 * ```
 */
export type ClientState = "connected" | "reconnecting" | "closed";

/**
 * The client's own state: {@linkcode ClientState} plus `"closing"`, between
 * `close()` and the end of its teardown. A closing client refuses every call
 * as a closed one does, so it reads as `"closed"` from outside; the
 * `statechange` to `"closed"` comes once the teardown is done.
 */
export type ClientLifecycle = ClientState | "closing";

/**
 * Every transition the client may make. `connected` → `closed` and
 * `reconnecting` → `closed` are the fatal errors (a takeover, a changed
 * address, reconnect off or out of attempts); a state never moves to itself.
 */
const TRANSITIONS: Readonly<Record<ClientLifecycle, readonly ClientLifecycle[]>> = {
  connected: ["reconnecting", "closing", "closed"],
  reconnecting: ["connected", "closing", "closed"],
  closing: ["closed"],
  closed: [],
};

/** Whether a client may move from `from` to `to`. */
export function canMove(from: ClientLifecycle, to: ClientLifecycle): boolean {
  return TRANSITIONS[from].includes(to);
}

/** How a state reads from outside: a closing client is closed for its callers. */
export function visibleState(state: ClientLifecycle): ClientState {
  return state === "closing" ? "closed" : state;
}

/**
 * Dispatched as `"statechange"` by an `AlphaNetClient` each time its
 * {@linkcode ClientState} changes.
 *
 * @example Log every change
 * ```ts
 * import { connect, type StateChangeEvent } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const seen: StateChangeEvent[] = [];
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * net.addEventListener("statechange", (event) => {
 *   seen.push(event);
 *   console.log(event.state, event.error?.message ?? "");
 * });
 * await net.close();
 * assert.equal(seen.at(-1)?.state, "closed");
 * assert.equal(seen.at(-1)?.error, null);
 * ```
 */
export interface StateChangeEvent extends Event {
  /** Always `"statechange"`. */
  readonly type: "statechange";
  /** The new state. */
  readonly state: ClientState;
  /**
   * Why: the error that ended the link (for `"reconnecting"`) or the client
   * (for `"closed"`); null when the link came back or after `close()`.
   */
  readonly error: Error | null;
}

/** The implementation of {@linkcode StateChangeEvent}. */
export class StateChangeEventImpl extends Event implements StateChangeEvent {
  declare readonly type: "statechange";
  readonly state: ClientState;
  readonly error: Error | null;

  constructor(state: ClientState, error: Error | null) {
    super("statechange");
    this.state = state;
    this.error = error;
  }
}

/**
 * The events an `AlphaNetClient` dispatches, by type: what
 * `addEventListener` hands each listener.
 *
 * @example Type a listener by event name
 * ```ts
 * import type { AlphaNetClientEventMap } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const states: string[] = [];
 * const onChange = (event: AlphaNetClientEventMap["statechange"]): void => {
 *   states.push(event.state);
 * };
 * const type: keyof AlphaNetClientEventMap = "statechange";
 * assert.equal(type, "statechange");
 * assert.equal(typeof onChange, "function");
 * ```
 */
export interface AlphaNetClientEventMap {
  /** The client's state changed. */
  statechange: StateChangeEvent;
}
