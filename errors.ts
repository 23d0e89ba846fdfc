/**
 * Every error AlphaNET throws, as typed classes. Branch on them with
 * `instanceof`, never on message text.
 *
 * @module
 */

import { Reason, reasonName } from "./protocol/constants.ts";

/**
 * Base class of every AlphaNET error.
 *
 * @example Catch any AlphaNET failure
 * ```ts
 * import { AlphaNetError } from "@alphanet/net";
 * try {
 *   throw new AlphaNetError("Cannot do that: demo");
 * } catch (error) {
 *   if (error instanceof AlphaNetError) console.log(error.message);
 * }
 * ```
 */
export class AlphaNetError extends Error {
  /** Creates an error; pass `{ cause }` to wrap another error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AlphaNetError";
  }
}

/**
 * Bytes on the wire that break the protocol: a bad length, an unknown type,
 * a truncated body, or a field outside its range.
 *
 * @example
 * ```ts
 * import { decode, ProtocolError } from "@alphanet/net";
 * try {
 *   decode(new Uint8Array([0, 0, 0, 0, 0xff]));
 * } catch (error) {
 *   console.log(error instanceof ProtocolError); // true
 * }
 * ```
 */
export class ProtocolError extends AlphaNetError {
  /** The reason code sent to the peer in the Error frame. */
  readonly reason: Reason;
  /** Creates a protocol error with the reason code to report. */
  constructor(message: string, reason: Reason, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.reason = reason;
  }
}

/**
 * The relay closed this client with an Error frame (version mismatch,
 * takeover, pool exhausted, shutdown, a protocol violation, ...).
 *
 * @example
 * ```ts
 * import { connect, RelayError } from "@alphanet/net";
 * try {
 *   await connect({ port: 1 });
 * } catch (error) {
 *   if (error instanceof RelayError) console.log(error.reasonName);
 * }
 * ```
 */
export class RelayError extends AlphaNetError {
  /** The reason code from the Error frame. */
  readonly reason: number;
  /** Creates the error from an Error frame's reason and message. */
  constructor(reason: number, message: string, options?: ErrorOptions) {
    super(`Relay closed the link: ${reasonName(reason)}: ${message}`, options);
    this.name = "RelayError";
    this.reason = reason;
  }
  /** The reason's name, such as `"Replaced"`. */
  get reasonName(): string {
    return reasonName(this.reason);
  }
}

/**
 * The relay closed this client because a newer link with the same identity
 * (or, without one, the same real IP) took over its virtual IP. A replaced
 * client never reconnects: two copies of one identity must not take the
 * address from each other in turn. A {@linkcode RelayError} with reason
 * `Replaced`, so code that checks `RelayError` keeps working.
 *
 * @example Tell a takeover from other ends
 * ```ts ignore
 * import { connect, Replaced } from "@alphanet/net";
 * const net = await connect();
 * const ended = await net.closed;
 * if (ended instanceof Replaced) console.log("another client took over this address");
 * ```
 */
export class Replaced extends RelayError {
  /** Creates the error from the Error frame's message. */
  constructor(message: string, options?: ErrorOptions) {
    super(Reason.Replaced, message, options);
    this.name = "Replaced";
  }
}

/**
 * After reconnecting, the relay assigned this client a different virtual IP
 * than before (for example, the relay lost its registry). Fatal: the client
 * closes rather than carry on under another address.
 *
 * @example
 * ```ts
 * import { AddressChanged } from "@alphanet/net";
 * const error = new AddressChanged("83.12.4.200", "45.33.2.10");
 * console.log(error.expected, error.actual);
 * ```
 */
export class AddressChanged extends AlphaNetError {
  /** The virtual IP this client had. */
  readonly expected: string;
  /** The virtual IP the relay assigned on reconnect. */
  readonly actual: string;
  /** Creates the error from the old and the new virtual IP. */
  constructor(expected: string, actual: string, options?: ErrorOptions) {
    super(
      `Cannot reconnect: the relay assigned virtual IP ${actual} instead of ${expected}`,
      options,
    );
    this.name = "AddressChanged";
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The destination virtual IP has no client online (the seed's RequestFailed).
 *
 * @example
 * ```ts
 * import { HostUnreachable } from "@alphanet/net";
 * const error = new HostUnreachable("Cannot connect to 1.2.3.4:80: host is offline");
 * console.log(error.name); // "HostUnreachable"
 * ```
 */
export class HostUnreachable extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HostUnreachable";
  }
}

/**
 * Nothing listens on the destination port, or its owner denied the request.
 *
 * @example
 * ```ts
 * import { ConnectionRefused } from "@alphanet/net";
 * console.log(new ConnectionRefused("Cannot connect: refused").name);
 * ```
 */
export class ConnectionRefused extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionRefused";
  }
}

/**
 * The virtual port is already bound by a listener or connection of this client.
 *
 * @example
 * ```ts
 * import { AddrInUse } from "@alphanet/net";
 * console.log(new AddrInUse("Cannot listen on port 80: in use").name);
 * ```
 */
export class AddrInUse extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AddrInUse";
  }
}

/**
 * A virtual connection ended abnormally: the link to the relay dropped, or
 * the peer vanished.
 *
 * @example
 * ```ts
 * import { ConnectionReset } from "@alphanet/net";
 * console.log(new ConnectionReset("Cannot write: link lost").name);
 * ```
 */
export class ConnectionReset extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionReset";
  }
}

/**
 * A write on a virtual connection whose peer has closed it, or whose write
 * side this end has shut down.
 *
 * @example
 * ```ts
 * import { BrokenPipe } from "@alphanet/net";
 * console.log(new BrokenPipe("Cannot write: peer closed").name);
 * ```
 */
export class BrokenPipe extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokenPipe";
  }
}

/**
 * A request to the relay or a peer did not finish in time.
 *
 * @example
 * ```ts
 * import { TimedOut } from "@alphanet/net";
 * console.log(new TimedOut("Cannot connect: no answer in 10000 ms").name);
 * ```
 */
export class TimedOut extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TimedOut";
  }
}

/**
 * The client, listener or connection was closed locally before the operation finished.
 *
 * @example
 * ```ts
 * import { Closed } from "@alphanet/net";
 * console.log(new Closed("Cannot accept: listener is closed").name);
 * ```
 */
export class Closed extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Closed";
  }
}

/**
 * The relay sent nothing (not even a Pong to this client's Pings) for
 * `peerTimeoutMs`: the link is treated as dead, like a TCP connection that
 * dropped. A {@linkcode TimedOut}.
 *
 * @example
 * ```ts
 * import { PeerTimeout, TimedOut } from "@alphanet/net";
 * const error = new PeerTimeout("Link to the relay is dead: nothing received for 45000 ms");
 * console.log(error instanceof TimedOut); // true
 * ```
 */
export class PeerTimeout extends TimedOut {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerTimeout";
  }
}
