/**
 * AlphaNET: a virtual network for Deno. Every client connects to one relay
 * over TCP, gets a permanent virtual IPv4, and talks to other clients
 * through virtual sockets that mirror `Deno.listen` and `Deno.connect`. The
 * relay proxies all traffic, so no client learns another's real IP.
 *
 * @example Listen, connect, echo
 * ```ts ignore
 * import { connect } from "@alphanet/net";
 *
 * await using server = await connect({ identity: "server-secret-of-16+-bytes" });
 * const listener = server.listen({ port: 7 });
 * (async () => {
 *   for await (const conn of listener) conn.readable.pipeTo(conn.writable);
 * })();
 *
 * await using client = await connect({ identity: "client-secret-of-16+-bytes" });
 * const conn = await client.connect({ hostname: server.virtualIp, port: 7 });
 * await conn.write(new TextEncoder().encode("ping"));
 * ```
 *
 * The wire protocol is exported too (pure functions, no I/O), for tools and
 * other implementations; `docs/PROTOCOL.md` specifies it byte by byte.
 *
 * @module
 */

export { AlphaNetClient, connect } from "./client/client.ts";
export type { ListenOptions, PingTarget, SocketStatus, VirtualTarget } from "./client/targets.ts";
export type { VirtualAddr } from "./client/addr.ts";
export {
  type ClientConfig,
  type ConnectOptions,
  DEFAULT_CONNECT_OPTIONS,
  type ReconnectOptions,
} from "./client/options.ts";
export { type AlphaNetClientEventMap, type ClientState, StateChangeEvent } from "./client/state.ts";
export { VirtualConn } from "./client/virtual_conn.ts";
export { type AcceptFilter, VirtualListener } from "./client/virtual_listener.ts";
export {
  AddressChanged,
  AddrInUse,
  AlphaNetError,
  BrokenPipe,
  Closed,
  ConnectionRefused,
  ConnectionReset,
  HostUnreachable,
  PeerTimeout,
  ProtocolError,
  RelayError,
  Replaced,
  TimedOut,
} from "./errors.ts";
export * from "./protocol/mod.ts";
