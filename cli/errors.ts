/**
 * How a command fails at run time (exit 1), and the words the commands use
 * for why. A bad command line is `flags/usage_error.ts`'s UsageError (exit 2).
 *
 * @module
 */

import { ConnectionReset, HostUnreachable } from "../errors.ts";
import { oneLine } from "../flags/one_line.ts";

/** A failure while running (relay unreachable, host offline, ...): one line, exit code 1. */
export class RuntimeError extends Error {
  /** Creates a runtime error with a one-line message; pass `{ cause }` to wrap another error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
  }
}

/**
 * Why `error` happened, in a few lowercase words that read on after a
 * command's own "cannot <action>: ": the state part of a std-style
 * "Cannot <action>: <state>" message, so that an action is never named
 * twice ("cannot join relay at H:P: no VirtualIP within 10000 ms", not
 * "... : Cannot join relay: no VirtualIP ...").
 */
export function stateOf(error: unknown): string {
  if (error instanceof HostUnreachable) return "host is offline";
  const line = oneLine(error);
  // Formatting only: the head names an action the caller names itself.
  const state = /^cannot [^:]*: (.+)$/i.exec(line)?.[1] ?? line;
  return /^[A-Z][a-z]/.test(state) ? state[0].toLowerCase() + state.slice(1) : state;
}

/**
 * The cause of a failed request in a few words, for the one-line reports of
 * `forward` and `ping`: "host is offline", "relay down (...)", or the state
 * part of anything else ("nothing listens there", "connection denied", ...).
 */
export function causeOf(error: unknown): string {
  if (error instanceof HostUnreachable) return "host is offline";
  // A request fails with ConnectionReset only when the link to the relay drops under it.
  if (error instanceof ConnectionReset) return `relay down (${stateOf(error)})`;
  return stateOf(error);
}
