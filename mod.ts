/**
 * AlphaNET: a virtual network for Deno. Every client connects to one relay
 * over TCP, gets a permanent virtual IPv4, and talks to other clients
 * through virtual sockets in the shapes of `Deno.Listener` and `Deno.Conn`.
 * The relay carries all traffic, so no client learns another's real IP.
 *
 * A client's permanent virtual IP is keyed on its identity: an Ed25519 key
 * pair ({@linkcode generateIdentity}; keep it with {@linkcode exportIdentity}
 * and {@linkcode importIdentity}) whose private key signs each join and never
 * leaves the process. A relay run with `--join token` registers a new
 * identity only with a join token from its operator (`joinToken`).
 *
 * @example Listen, connect, echo
 * ```ts
 * import { connect, generateIdentity } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using server = await connect({ identity: await generateIdentity() });
 * const listener = server.listen({ port: 7 });
 * const serving = (async () => {
 *   for await (const conn of listener) {
 *     await conn.readable.pipeTo(conn.writable).catch(() => conn.close());
 *   }
 * })();
 *
 * await using client = await connect({ identity: "client-secret-of-16+-bytes" });
 * using conn = await client.connect({ hostname: server.virtualIp, port: 7 });
 * await conn.write(new TextEncoder().encode("ping"));
 * await conn.closeWrite();
 * assert.equal(await new Response(conn.readable).text(), "ping");
 * listener.close();
 * await serving;
 * ```
 *
 * The wire protocol has its own export, `@alphanet/net/protocol` (pure
 * functions, no I/O), for tools and other implementations; the relay is
 * `@alphanet/net/server`.
 *
 * @module
 */

export type { AlphaNetClient } from "./client/alphanet_client.ts";
export type {
  AlphaNetClientEventMap,
  ClientState,
  StateChangeEvent,
} from "./client/client_state.ts";
export type { VirtualAddr } from "./client/addr.ts";
export type {
  VirtualHttpServer,
  VirtualServeHandler,
  VirtualServeHandlerInfo,
  VirtualServeOptions,
} from "./client/http_server.ts";
export { connect } from "./client/connect.ts";
export {
  type ClientOptions,
  DEFAULT_CLIENT_OPTIONS,
  type ReconnectOptions,
} from "./client/options.ts";
export {
  exportIdentity,
  generateIdentity,
  type Identity,
  type IdentityOptions,
  importIdentity,
} from "./client/identity.ts";
export type {
  SocketStatus,
  VirtualConnectOptions,
  VirtualListenOptions,
  VirtualPingOptions,
} from "./client/socket_options.ts";
export type { VirtualConn } from "./client/virtual_conn.ts";
export type { AcceptFilter, VirtualListener } from "./client/virtual_listener.ts";
export { Reason } from "./protocol/reason.ts";
export {
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
} from "./errors.ts";
