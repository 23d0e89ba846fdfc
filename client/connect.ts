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
 * client's permanent virtual IP: the client says Hello, proves its identity
 * (and join token) by signing the relay's challenge, and gets its address.
 * Fails at once if the relay cannot be reached (no retry); once connected,
 * the client reconnects by itself, proving the same identity each time.
 * The link is TCP (`hostname`, `port`, `tls`), or a WebSocket when `url` is
 * a `ws://` or `wss://` URL, which works in browsers too. Given `relays`
 * (several relays of a cluster), it tries each once in order and joins the
 * first that admits it; a lost link then moves the client to the next.
 *
 * @example Join a relay and learn the virtual IP
 * ```ts
 * import { connect, generateIdentity } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using net = await connect({
 *   hostname: "127.0.0.1",
 *   port: 1337,
 *   identity: await generateIdentity(),
 * });
 * assert.match(net.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
 * assert.equal(net.state, "connected");
 * ```
 *
 * @example Join the first relay of a cluster that admits this client
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using net = await connect({ relays: ["relay-a.example:1337", "relay-b.example:1337"] });
 * assert.match(net.relay, /^relay-[ab]\.example:1337$/);
 * ```
 *
 * @example Join a relay over WebSocket (in Deno or in a browser)
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using net = await connect({ url: "wss://relay.example/" });
 * assert.equal(net.state, "connected");
 * ```
 *
 * @example Join a relay that registers new identities only with a join token
 * ```ts
 * import { connect, importIdentity, JoinTokenError } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const identity = await importIdentity(await Deno.readTextFile("./my.identity"));
 * try {
 *   await using net = await connect({ identity, joinToken: Deno.env.get("ALPHANET_JOIN_TOKEN") });
 *   assert.equal(net.state, "connected");
 * } catch (error) {
 *   if (!(error instanceof JoinTokenError)) throw error;
 *   console.error(error.message); // Ends with what to do: ask the relay's operator for a token.
 * }
 * ```
 *
 * @param options Where the relay is and how the client behaves; every field has a default.
 * @returns The connected client; rejects, before any connection, with
 * `RangeError` (a bad size: an identity secret outside 16..256 bytes, a
 * port, a window), `SyntaxError` (a join token that is not one) or
 * `TypeError` (an identity that is not one; a `url` that is not a `ws://`
 * or `wss://` URL at path `/`, or one given with `hostname`, `port` or
 * `tls`; a bad `relays` entry, or `relays` with `hostname`, `port` or
 * `url`); then with the TCP error (such as `Deno.errors.ConnectionRefused`),
 * over WebSocket a `ConnectionRefused` when no WebSocket opens (the relay is
 * unreachable, or the URL is not its WebSocket endpoint) or a
 * `ProtocolError` when it does not agree on the subprotocol `alphanet`, a
 * `RelayError` the relay answered with (`JoinTokenError` when it wants a
 * join token or refuses the one given; over WebSocket also a close code
 * 4000 + reason), a `ProtocolError` (a frame out of turn), a
 * `ConnectionReset` when the link closed otherwise, or `TimedOut` if no
 * virtual IP came within `handshakeTimeoutMs` (the TCP connect too). With
 * several `relays`: the first fatal error of these (a refusal, a protocol
 * error, `RelayIdMismatch`) at once, else an `AggregateError` of every
 * relay's error in the listed order.
 */
export function connect(options: ClientOptions = {}): Promise<AlphaNetClient> {
  return AlphaNetClientImpl.open(options);
}
