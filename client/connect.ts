/**
 * The entry point of the client library: join a relay.
 *
 * @module
 */

import type { AlphaNetClient } from "./alphanet_client.ts";
import { AlphaNetClientImpl } from "./alphanet_client_impl.ts";
import type { ClientOptions } from "./options.ts";

/**
 * Connects to an AlphaNET relay and resolves once it has assigned this
 * client's permanent virtual IP. Fails at once if the relay cannot be
 * reached (no retry); once connected, the client reconnects by itself.
 *
 * @example Join a relay and learn the virtual IP
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using net = await connect({
 *   hostname: "127.0.0.1",
 *   port: 1337,
 *   identity: "a secret of at least 16 bytes",
 * });
 * assert.match(net.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
 * assert.equal(net.state, "connected");
 * ```
 *
 * @param options Where the relay is and how the client behaves; every field has a default.
 * @returns The connected client; rejects with the TCP error (such as
 * `Deno.errors.ConnectionRefused`), a `RelayError` the relay answered with,
 * or `TimedOut` if no virtual IP came within `handshakeTimeoutMs`.
 */
export function connect(options: ClientOptions = {}): Promise<AlphaNetClient> {
  return AlphaNetClientImpl.open(options);
}
