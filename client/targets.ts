/**
 * Where virtual sockets go and what requests answer: the option and result
 * types of the client's `listen`, `connect` and `status`, and their checks.
 *
 * @module
 */

import { ConnectionRefused, HostUnreachable, TimedOut } from "../errors.ts";
import { parseIpv4 } from "../protocol/address.ts";
import { MAX_PORT, Reason, reasonName } from "../protocol/constants.ts";
import type { AcceptFilter } from "./virtual_listener.ts";

/** Options of `AlphaNetClient.listen`. */
export interface ListenOptions {
  /** Virtual port to listen on; 0 picks a free one. */
  port: number;
  /** Called for each connection request; return false to deny it. @default {undefined} (accept all) */
  accept?: AcceptFilter;
  /** Accepted connections waiting for `accept()` beyond which requests are denied. @default {128} */
  backlog?: number;
}

/** Where `AlphaNetClient.connect` and `AlphaNetClient.status` go. */
export interface VirtualTarget {
  /** Virtual IPv4 of the destination, dotted quad. */
  hostname: string;
  /** Virtual port of the destination, 1..65535. */
  port: number;
}

/** The answer to `AlphaNetClient.status`: the seed's SocketStatusResponse. */
export interface SocketStatus {
  /** Whether a client owns that virtual IP and is connected. */
  readonly online: boolean;
  /** Whether that client listens on the port. */
  readonly listening: boolean;
}

/** Who `AlphaNetClient.ping` asks. */
export interface PingTarget {
  /** Virtual IPv4 of the client to ping, dotted quad. */
  hostname: string;
}

/** The u32 address of a virtual host; throws TypeError on anything but a dotted quad. */
export function parseHost(action: string, hostname: string): number {
  const address = parseIpv4(hostname);
  if (address === null) {
    throw new TypeError(`Cannot ${action} "${hostname}": not a dotted-quad IPv4 address`);
  }
  return address;
}

/** The u32 address of `target`; throws TypeError or RangeError on a bad target. */
export function parseTarget(action: string, target: VirtualTarget): number {
  const address = parseHost(action, target.hostname);
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > MAX_PORT) {
    throw new RangeError(
      `Cannot ${action} ${target.hostname}: port ${target.port} is outside 1..${MAX_PORT}`,
    );
  }
  return address;
}

/** The error a RequestFailed reason stands for. */
export function failureError(where: string, reason: number): Error {
  if (reason === Reason.Offline) {
    return new HostUnreachable(`Cannot connect to ${where}: host is offline`);
  }
  if (reason === Reason.Timeout) {
    return new TimedOut(`Cannot connect to ${where}: the host did not answer`);
  }
  return new ConnectionRefused(`Cannot connect to ${where}: ${reasonName(reason)}`);
}
