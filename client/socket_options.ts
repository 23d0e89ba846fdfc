/**
 * The options of a client's `listen`, `connect`, `status` and `ping`, the
 * answer of `status`, and the checks that turn a target into an address.
 *
 * @module
 */

import { parseIpv4 } from "../protocol/address.ts";
import { MAX_PORT } from "../protocol/constants.ts";
import type { AcceptFilter } from "./virtual_listener.ts";

/**
 * Options of `AlphaNetClient.listen`, like `Deno.ListenOptions` for a
 * virtual port.
 *
 * @example Listen on a port, accepting only one peer
 * ```ts
 * import type { VirtualListenOptions } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const options: VirtualListenOptions = {
 *   port: 80,
 *   accept: (remote) => remote.hostname === "83.12.4.200",
 *   backlog: 16,
 * };
 * assert.equal(options.accept?.({ transport: "tcp", hostname: "45.33.2.10", port: 50000 }), false);
 * ```
 */
export interface VirtualListenOptions {
  /** Virtual port to listen on, 1..65535; 0 picks a free one. */
  port: number;
  /**
   * Called for each connection request; return (or resolve) false to deny
   * it. @default {undefined} (accept all)
   */
  accept?: AcceptFilter;
  /** Accepted connections waiting for `accept()` beyond which requests are denied. @default {128} */
  backlog?: number;
}

/**
 * Where `AlphaNetClient.connect` and `AlphaNetClient.status` go, like
 * `Deno.ConnectOptions` for a virtual host.
 *
 * @example A virtual destination
 * ```ts
 * import type { VirtualConnectOptions } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const target: VirtualConnectOptions = { hostname: "83.12.4.200", port: 80 };
 * assert.equal(`${target.hostname}:${target.port}`, "83.12.4.200:80");
 * ```
 */
export interface VirtualConnectOptions {
  /** Virtual IPv4 of the destination, dotted quad. */
  hostname: string;
  /** Virtual port of the destination, 1..65535. */
  port: number;
}

/**
 * Who `AlphaNetClient.ping` asks.
 *
 * @example A client to ping
 * ```ts
 * import type { VirtualPingOptions } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const target: VirtualPingOptions = { hostname: "83.12.4.200" };
 * assert.equal(target.hostname, "83.12.4.200");
 * ```
 */
export interface VirtualPingOptions {
  /** Virtual IPv4 of the client to ping, dotted quad. */
  hostname: string;
}

/**
 * The answer of `AlphaNetClient.status`: whether a virtual host is online,
 * and whether it listens on the port asked about.
 *
 * @example Decide whether connecting can work
 * ```ts
 * import type { SocketStatus } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const status: SocketStatus = { online: true, listening: false };
 * assert.equal(status.online && status.listening, false);
 * ```
 */
export interface SocketStatus {
  /** Whether a client owns that virtual IP and is connected. */
  readonly online: boolean;
  /** Whether that client listens on the port. */
  readonly listening: boolean;
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
export function parseTarget(action: string, target: VirtualConnectOptions): number {
  const address = parseHost(action, target.hostname);
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > MAX_PORT) {
    throw new RangeError(
      `Cannot ${action} ${target.hostname}: port ${target.port} is outside 1..${MAX_PORT}`,
    );
  }
  return address;
}
