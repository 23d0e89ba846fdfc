/**
 * A client's lifecycle states and the event that reports each change.
 *
 * @module
 */

/**
 * Where a client is in its life:
 * - `"connected"`: it holds a link to the relay;
 * - `"reconnecting"`: it lost its link and is getting a new one (listeners
 *   stay bound; `connect()` and `status()` wait for the link);
 * - `"closed"`: for good, by `close()` or an error that rules out reconnecting.
 *
 * @example
 * ```ts
 * import type { ClientState } from "@alphanet/net";
 * const state: ClientState = "reconnecting";
 * console.log(state);
 * ```
 */
export type ClientState = "connected" | "reconnecting" | "closed";

/**
 * Dispatched as `"statechange"` by an `AlphaNetClient` each time its
 * {@linkcode ClientState} changes.
 *
 * @example Log every change
 * ```ts ignore
 * import { connect } from "@alphanet/net";
 * const net = await connect();
 * net.addEventListener("statechange", (event) => {
 *   console.log(event.state, event.error?.message);
 * });
 * ```
 */
export class StateChangeEvent extends Event {
  /** The new state. */
  readonly state: ClientState;
  /**
   * Why: the error that ended the link (for `"reconnecting"`) or the client
   * (for `"closed"`); null when the link came back or after `close()`.
   */
  readonly error: Error | null;

  /** Creates the event. */
  constructor(state: ClientState, error: Error | null) {
    super("statechange");
    this.state = state;
    this.error = error;
  }
}

/**
 * The events an `AlphaNetClient` dispatches, by type.
 *
 * @example
 * ```ts
 * import type { AlphaNetClientEventMap } from "@alphanet/net";
 * const type: keyof AlphaNetClientEventMap = "statechange";
 * console.log(type);
 * ```
 */
export interface AlphaNetClientEventMap {
  /** The client's state changed. */
  statechange: StateChangeEvent;
}
