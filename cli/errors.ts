/**
 * How a command fails at run time (exit 1), and the words its lines use for
 * why. A bad command line is `flags/usage_error.ts`'s UsageError (exit 2).
 *
 * Every failure line names one action, once: "cannot <action>: <state>".
 * Which layer names the action depends on who knows it:
 * - a request the command hands to the library as it is (connect, status,
 *   listen on a virtual port): AlphaNET's errors say "Cannot <action>
 *   <target>: <state>" themselves, so {@linkcode requestFailure} prints that
 *   sentence and adds nothing;
 * - a step of the command's own (join the relay at HOST:PORT, dial a local
 *   service, send to a peer): the command names the action, and
 *   {@linkcode stateOf} gives the state from the error's class, never from
 *   its message text.
 *
 * @module
 */

import {
  AddressChanged,
  AddrInUse,
  AlphaNetError,
  BrokenPipe,
  Closed,
  ConnectionRefused,
  ConnectionReset,
  HostUnreachable,
  JoinTokenError,
  PeerTimeout,
  ProtocolError,
  RelayError,
  RelayIdMismatch,
  Replaced,
  TimedOut,
} from "../errors.ts";
import { oneLine } from "../flags/one_line.ts";
import { Reason, reasonName } from "../protocol/reason.ts";

/** A failure while running (relay unreachable, host offline, ...): one line, exit code 1. */
export class RuntimeError extends Error {
  /** Creates a runtime error with a one-line message; pass `{ cause }` to wrap another error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
  }
}

/** What a command says, and what to do, for each join token refusal: the command line's words. */
const JOIN_TOKEN_STATES: Readonly<Record<number, string>> = {
  [Reason.JoinTokenRequired]:
    "the relay registers a new identity only with a join token (JoinTokenRequired): " +
    "get one from its operator and give it with --join-token TOKEN or $ALPHANET_JOIN_TOKEN",
  [Reason.JoinTokenInvalid]:
    "the relay refused the join token (JoinTokenInvalid: unknown, revoked or mistyped): " +
    "check it, or get a new one from the relay's operator",
  [Reason.JoinTokenUsedUp]:
    "the join token is used up (JoinTokenUsedUp): get a new one from the relay's operator",
  [Reason.JoinTokenExpired]:
    "the join token has expired (JoinTokenExpired): get a new one from the relay's operator",
};

/**
 * Why `error` happened, in a few lowercase words that read on after the
 * command's own "cannot <action>: ". AlphaNET's errors are told apart by
 * class (and `reason`); any other error (Deno's, the OS's) states only what
 * happened ("connection refused (os error 111)"), so its message is used.
 */
export function stateOf(error: unknown): string {
  if (error instanceof HostUnreachable) return "host is offline";
  if (error instanceof Replaced) return "a newer client with the same identity took over";
  if (error instanceof JoinTokenError) return JOIN_TOKEN_STATES[error.reason];
  if (error instanceof RelayError && error.reason === Reason.InvalidIdentity) {
    return "the relay refused the identity (InvalidIdentity): its proof did not verify, " +
      "or the relay admits no client without one (drop --no-identity)";
  }
  if (error instanceof RelayError) return `the relay said ${reasonName(error.reason)}`;
  if (error instanceof AddressChanged) {
    return `the relay assigned ${error.actual} instead of ${error.expected}`;
  }
  if (error instanceof RelayIdMismatch) {
    return `its relay id is ${error.actual}, not the pinned ${error.expected}: ` +
      "another relay may be relaying its challenge; check --server / --relay-id";
  }
  // A cause says what broke in words (a WebSocket endpoint that is not a relay's); else the reason.
  if (error instanceof ProtocolError) {
    return error.cause instanceof Error
      ? oneLine(error.cause)
      : `protocol error (${reasonName(error.reason)})`;
  }
  if (error instanceof PeerTimeout) return "the relay went silent";
  if (error instanceof TimedOut) return "no answer in time";
  if (error instanceof BrokenPipe) return "the peer closed the connection";
  // A reset with a cause is a TCP failure under the link: the cause says which.
  if (error instanceof ConnectionReset) {
    return error.cause === undefined ? "the relay closed the connection" : stateOf(error.cause);
  }
  // A refusal with a cause is a relay's WebSocket that did not open: the cause says why.
  if (error instanceof ConnectionRefused) {
    return error.cause === undefined ? "connection refused" : stateOf(error.cause);
  }
  if (error instanceof AddrInUse) return "in use";
  if (error instanceof Closed) return "closed";
  if (error instanceof AlphaNetError) return error.name; // A class added after this table.
  // Every relay of a list failed: each one's state, in the order tried.
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(stateOf).join("; ");
  }
  return oneLine(error);
}

/**
 * The line of a failed request the command made through the library
 * (`connect to VIP:PORT`, `query status of VIP:PORT`, `listen on port P`),
 * without the `alphanet: ` prefix:
 * - the link to the relay is down (`linkUp` false, or the request was cut
 *   off by a reset): "cannot <action>: relay down (<why>)";
 * - else an AlphaNET error: its own message, which names this request and
 *   its target ("cannot connect to 1.2.3.4:81: nothing listens there");
 * - else (a Deno error): "cannot <action>: <its message>".
 *
 * @param action The request as the library names it, such as `connect to 1.2.3.4:81`.
 * @param error What the request rejected with.
 * @param linkUp Whether the client is connected to the relay now.
 */
export function requestFailure(action: string, error: unknown, linkUp: boolean): string {
  if (!linkUp || error instanceof ConnectionReset) {
    return `cannot ${action}: relay down (${stateOf(error)})`;
  }
  if (error instanceof AlphaNetError) return oneLine(error);
  return `cannot ${action}: ${stateOf(error)}`;
}

/**
 * Why a request got no answer, in a few words for `ping`'s "no reply from
 * VIP: seq=N: <why>": "host is offline", "relay down (...)", "the relay
 * refused the request: RateLimited" (as the library words it), or {@linkcode stateOf}'s words.
 *
 * @param error What the request rejected with.
 * @param linkUp Whether the client is connected to the relay now.
 */
export function causeOf(error: unknown, linkUp: boolean): string {
  if (!linkUp || error instanceof ConnectionReset) return `relay down (${stateOf(error)})`;
  if (error instanceof RelayError) {
    return `the relay refused the request: ${reasonName(error.reason)}`;
  }
  return stateOf(error);
}
