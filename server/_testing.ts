/**
 * Internal hooks for the relay's own tests; not part of the package's API
 * and not reachable from the command line. Each is read where the state it
 * seeds is created, never on a per-frame path.
 *
 * @module
 */

/** Settings that only tests change; production leaves them at their defaults. */
export interface RelayTestHooks {
  /**
   * The last id a new peer book counts as issued, so its first connection and
   * request ids are this plus one: lets a test reach the 2^32 − 1 ceiling
   * without issuing four billion ids.
   */
  firstIssuedId: number;
}

/** The hooks' values; a test sets one and restores it in a `finally`. */
export const relayTestHooks: RelayTestHooks = { firstIssuedId: 0 };
