/**
 * Waiting for SIGINT or SIGTERM, the way long-running commands stop.
 *
 * @module
 */

/** A wait for a termination signal; dispose it to remove the listeners. */
export interface SignalWait extends Disposable {
  /** Resolves with the signal's name when SIGINT or SIGTERM arrives. */
  readonly signal: Promise<Deno.Signal>;
  /** Aborted when SIGINT or SIGTERM arrives, for waits that take an AbortSignal. */
  readonly aborted: AbortSignal;
}

/** Starts listening for SIGINT and SIGTERM. */
export function waitForSignal(): SignalWait {
  const { promise, resolve } = Promise.withResolvers<Deno.Signal>();
  const abort = new AbortController();
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const handler = (): void => {
      resolve(name);
      abort.abort(new Error(`stopped by ${name}`));
    };
    Deno.addSignalListener(name, handler);
    return [name, handler] as const;
  });
  return {
    signal: promise,
    aborted: abort.signal,
    [Symbol.dispose](): void {
      for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
    },
  };
}
