/**
 * The public shape of an AlphaNET client, as {@linkcode connect} returns it.
 *
 * @module
 */

import type { AlphaNetClientEventMap, ClientState } from "./client_state.ts";
import type { VirtualHttpServer, VirtualServeHandler, VirtualServeOptions } from "./http_server.ts";
import type {
  SocketStatus,
  VirtualConnectOptions,
  VirtualListenOptions,
  VirtualPingOptions,
} from "./socket_options.ts";
import type { VirtualConn } from "./virtual_conn.ts";
import type { VirtualListener } from "./virtual_listener.ts";

/**
 * A client connected to an AlphaNET relay, holding its permanent virtual IP.
 * Its `listen` and `connect` mirror `Deno.listen` and `Deno.connect`. Get one
 * from {@linkcode connect}.
 *
 * If the link to the relay drops, the client reconnects by itself (see the
 * `reconnect` option): open connections and requests in flight fail with
 * `ConnectionReset`, listeners stay bound and accept again once the link is
 * back, under the same virtual IP. With several relays (the `relays`
 * option) it comes back on the next one that admits it; `relay` says which.
 * `state` and the `statechange` event report where it is; `closed`
 * resolves when it ends for good.
 *
 * @example Serve and connect on one client
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * using listener = net.listen({ port: 7 });
 * assert.equal(listener.addr.hostname, net.virtualIp);
 * assert.deepEqual(await net.status({ hostname: net.virtualIp, port: 7 }), {
 *   online: true,
 *   listening: true,
 * });
 * ```
 */
export interface AlphaNetClient extends EventTarget, AsyncDisposable, Disposable {
  /**
   * This client's permanent virtual IPv4, dotted quad: the address other
   * clients connect to. It stays the same across reconnects to relays of one
   * registry, a cluster's included (the client closes with `AddressChanged`
   * rather than carry on under another one). Only a client given `relays` of
   * different registries (each relay its own id) gets each one's address,
   * and this changes when it moves between them.
   *
   * @example Tell a peer where to connect
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * assert.match(net.virtualIp, /^\d{1,3}(\.\d{1,3}){3}$/);
   * ```
   */
  readonly virtualIp: string;
  /**
   * The id of the relay this client joined: 64 lowercase hex digits (32
   * bytes), from the relay's Challenge. A relay keeps its id in its registry,
   * so it stays the same across reconnects and relay restarts (a relay run
   * with `--db :memory:` makes a new one at each start). The client pins it:
   * the first join fixes it (or the `relayId` option does, checked on the
   * first link too), and a later link whose Challenge shows another id ends
   * the client with `RelayIdMismatch` before anything is signed. The relays
   * of one cluster share one id, so it never changes while the client is
   * open, except for a client given `relays` of different registries without
   * `relayId`: each of those is pinned to its own id, and this is the id of
   * the relay the client is on. Pass it as `relayId` to a later client to
   * pin its first link as well.
   *
   * @example Remember the relay, and pin it for the next client
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * assert.match(net.relayId, /^[0-9a-f]{64}$/);
   * await using again = await connect({ hostname: "127.0.0.1", port: 1337, relayId: net.relayId });
   * assert.equal(again.relayId, net.relayId);
   * ```
   */
  readonly relayId: string;
  /**
   * The relay this client's link goes to (or went to, while it reconnects):
   * `HOST:PORT` as the `relays` option lists it (an IPv6 host in brackets),
   * else `hostname` and `port`, or the host and port of a WebSocket `url`.
   * With several relays it changes when the client moves to another.
   *
   * @example See which relay of a list took the client
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ relays: ["127.0.0.1:1337", "[::1]:1337"] });
   * assert.ok(["127.0.0.1:1337", "[::1]:1337"].includes(net.relay));
   * net.addEventListener("statechange", (event) => {
   *   if (event.state === "connected") console.log(`back on ${net.relay}`);
   * });
   * ```
   */
  readonly relay: string;
  /**
   * Where the client is in its life: `"connected"`, `"reconnecting"` (the
   * link dropped and the client is getting it back) or `"closed"` (for good).
   * Each change is dispatched as a `statechange` event.
   *
   * @example Connected until closed
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * assert.equal(net.state, "connected");
   * await net.close();
   * assert.equal(net.state, "closed");
   * ```
   */
  readonly state: ClientState;
  /**
   * Resolves when the client ends for good: null after close(), else the
   * error that ended it (`Replaced`, another fatal `RelayError`,
   * `AddressChanged`, `RelayIdMismatch`, the link error when reconnect is off, or a
   * `ConnectionReset` once reconnect attempts ran out). Never rejects.
   *
   * @example Wait for the end and tell why
   * ```ts
   * import { connect, Replaced } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const ended = net.closed.then((error) => error instanceof Replaced ? "taken over" : "closed");
   * await net.close();
   * assert.equal(await ended, "closed");
   * ```
   */
  readonly closed: Promise<Error | null>;

  /**
   * Adds an event listener; a `statechange` listener gets a typed
   * `StateChangeEvent`.
   *
   * @example Follow state changes
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const states: string[] = [];
   * net.addEventListener("statechange", (event) => states.push(event.state));
   * await net.close();
   * assert.deepEqual(states, ["closed"]);
   * ```
   *
   * @param type The event type.
   * @param listener Called with each event of that type.
   * @param options Standard listener options.
   */
  addEventListener<K extends keyof AlphaNetClientEventMap>(
    type: K,
    listener: (this: AlphaNetClient, event: AlphaNetClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Adds a listener for any event type, as `EventTarget` does.
   *
   * @param type The event type.
   * @param listener Called with each event of that type.
   * @param options Standard listener options.
   */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Removes a listener added with `addEventListener`.
   *
   * @example Stop following state changes
   * ```ts
   * import { connect, type StateChangeEvent } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const seen: StateChangeEvent[] = [];
   * const onChange = (event: StateChangeEvent): void => void seen.push(event);
   * net.addEventListener("statechange", onChange);
   * net.removeEventListener("statechange", onChange);
   * await net.close();
   * assert.equal(seen.length, 0);
   * ```
   *
   * @param type The event type.
   * @param listener The listener to remove.
   * @param options Standard listener options.
   */
  removeEventListener<K extends keyof AlphaNetClientEventMap>(
    type: K,
    listener: (this: AlphaNetClient, event: AlphaNetClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Removes a listener for any event type, as `EventTarget` does.
   *
   * @param type The event type.
   * @param listener The listener to remove.
   * @param options Standard listener options.
   */
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;

  /**
   * Listens on a virtual port, like `Deno.listen`. Nothing is sent: the
   * relay asks this client when someone connects. Works while reconnecting
   * too (the listener accepts once the link is back).
   *
   * @example Listen on a port, and on a free one
   * ```ts
   * import { AddrInUse, connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * using web = net.listen({ port: 80 });
   * assert.deepEqual(web.addr, { transport: "tcp", hostname: net.virtualIp, port: 80 });
   * assert.throws(() => net.listen({ port: 80 }), AddrInUse);
   * using any = net.listen({ port: 0 });
   * assert.ok(any.addr.port > 0);
   * ```
   *
   * @param options The port (0 picks a free one), and optionally an accept filter and a backlog.
   * @returns The listener. Throws `AddrInUse` if the port is taken, `RangeError`
   * on a bad port or backlog, `Closed` once the client is closed.
   */
  listen(options: VirtualListenOptions): VirtualListener;
  /**
   * Opens a virtual connection, like `Deno.connect`, in two steps: a status
   * request, then a connection request. Rejects with `HostUnreachable` if no
   * client owns that address, `ConnectionRefused` if nothing listens or the
   * owner denies, `TimedOut` if the owner does not answer, `RelayError` if
   * the relay refuses the request (rate limit, too many requests or
   * connections), `ConnectionReset` if the link drops meanwhile, `Closed`
   * once the client is closed. While reconnecting, it first waits up to
   * `requestTimeoutMs` for the link (then `TimedOut`).
   *
   * @example Connect, and handle a refusal as with Deno.connect
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * using _listener = net.listen({ port: 7 });
   * using conn = await net.connect({ hostname: net.virtualIp, port: 7 });
   * assert.deepEqual(conn.remoteAddr, { transport: "tcp", hostname: net.virtualIp, port: 7 });
   * await assert.rejects(
   *   net.connect({ hostname: net.virtualIp, port: 8 }),
   *   Deno.errors.ConnectionRefused,
   * );
   * ```
   *
   * @param options The virtual IP and port to connect to.
   * @returns The open connection.
   */
  connect(options: VirtualConnectOptions): Promise<VirtualConn>;
  /**
   * Asks whether a virtual IP is online and listens on a port, without
   * connecting. While reconnecting, it first waits for the link like
   * `connect()`. Rejects like `connect()`'s first step, except that an
   * offline host is an answer (`online: false`), not an error.
   *
   * @example Ask before connecting
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * using _listener = net.listen({ port: 80 });
   * assert.deepEqual(await net.status({ hostname: net.virtualIp, port: 80 }), {
   *   online: true,
   *   listening: true,
   * });
   * assert.deepEqual(await net.status({ hostname: net.virtualIp, port: 81 }), {
   *   online: true,
   *   listening: false,
   * });
   * ```
   *
   * @param options The virtual IP and port to ask about.
   * @returns Whether the host is online and whether it listens on the port.
   */
  status(options: VirtualConnectOptions): Promise<SocketStatus>;
  /**
   * Measures the round-trip time to another client through the relay: the
   * relay forwards an EchoRequest, which every client answers on its own.
   * Rejects with `HostUnreachable` if no client owns that address,
   * `TimedOut` if it does not answer, `RelayError` if the relay refuses.
   *
   * @example Ping this client itself
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const ms = await net.ping({ hostname: net.virtualIp });
   * assert.ok(ms >= 0);
   * ```
   *
   * @param options The virtual IP to ping.
   * @returns The round-trip time in milliseconds.
   */
  ping(options: VirtualPingOptions): Promise<number>;
  /**
   * Serves HTTP/1.1 on a virtual port, like `Deno.serve`: `handler` gets
   * each request as a `Request` and answers with a `Response`; bodies stream
   * both ways with backpressure; connections are kept alive between
   * requests. A handler that throws gets the client `onError`'s response
   * (500 by default) and the server serves on; a client that goes away
   * mid-request aborts `request.signal` and errors the request body, and
   * breaks nothing else. Runs on `node:http`, so it needs Deno: in a browser
   * it rejects with a TypeError.
   *
   * @example A page on this client's virtual IP
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * await using server = await net.serve({ port: 80 }, (request, info) => {
   *   const { pathname } = new URL(request.url);
   *   return new Response(`hello ${info.remoteAddr.hostname}, this is ${pathname}`);
   * });
   * assert.equal(server.addr.hostname, net.virtualIp);
   * const response = await net.fetch(`http://${net.virtualIp}/index.html`);
   * assert.equal(await response.text(), `hello ${net.virtualIp}, this is /index.html`);
   * ```
   *
   * @example Stream the request body back, and stop gracefully
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const server = await net.serve({ port: 0 }, (request) => new Response(request.body));
   * const url = `http://${net.virtualIp}:${server.addr.port}/echo`;
   * const response = await net.fetch(url, { method: "POST", body: "streamed" });
   * assert.equal(await response.text(), "streamed");
   * await server.shutdown(); // waits for requests in flight, then closes
   * ```
   *
   * @param options The virtual port (0 picks a free one), and optionally a
   * `hostname` to check, a `signal` that shuts the server down, `onListen`
   * and `onError`.
   * @param handler Answers each request.
   * @returns The server, once it listens; rejects with `AddrInUse` if the
   * port is taken, `RangeError` on a bad port, `TypeError` on a bad
   * hostname or handler or where there is no `node:http`, `Closed` once the
   * client is closed.
   */
  serve(options: VirtualServeOptions, handler: VirtualServeHandler): Promise<VirtualHttpServer>;
  /**
   * Fetches over the virtual network, like `fetch`, for
   * `http://VIRTUAL-IP:PORT/...` URLs: `input` is a URL or a `Request`,
   * `init` takes `method`, `headers`, `body` (a stream is sent as it comes,
   * chunked), `signal` and `redirect`. The response body streams, with
   * backpressure to the server. Redirects are followed (`"follow"`, up to
   * 20) only within the virtual network; `"manual"` returns the redirect
   * itself, `"error"` rejects. Idle connections are kept per origin (up to
   * 8, for 4 s) and reused; a request that finds its reused connection
   * closed by the server goes again on a new one. A streamed body always
   * takes a new connection (a stream cannot be sent twice). `close()`
   * closes them all. Runs on `node:http`, so it needs Deno: in a browser it
   * rejects with a TypeError.
   *
   * @example Fetch a page from another client
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * // A web server listens at 83.12.4.200:80.
   * const response = await net.fetch("http://83.12.4.200/", {
   *   headers: { accept: "text/html" },
   *   signal: AbortSignal.timeout(5_000),
   * });
   * assert.equal(response.status, 200);
   * console.log(await response.text());
   * ```
   *
   * @example Only virtual IPs over plain http
   * ```ts
   * import { connect, HostUnreachable } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * await assert.rejects(net.fetch("https://83.12.4.200/"), TypeError);
   * await assert.rejects(net.fetch("http://example.com/"), TypeError);
   * await assert.rejects(net.fetch("http://192.0.2.1/"), HostUnreachable); // nobody there
   * ```
   *
   * @param input The URL, or a `Request`.
   * @param init Request options, as for `fetch`.
   * @returns The response, once its head arrived; rejects with a TypeError
   * for a URL that is not `http://` to a virtual IP (or a redirect to one),
   * the abort reason once `signal` aborts, the library's error when no
   * connection opens (`HostUnreachable`, `ConnectionRefused`, `TimedOut`,
   * ...), `ConnectionReset` when the server closes without an answer,
   * `Closed` once the client is closed.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /**
   * Lets the client keep the process alive again (the default); see
   * {@linkcode AlphaNetClient.unref}.
   *
   * @example Hold the process while serving
   * ```ts
   * import { connect } from "@alphanet/net";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * net.unref();
   * // Serving now: the process must stay up until close().
   * net.ref();
   * ```
   */
  ref(): void;
  /**
   * Stops the client itself from keeping the process alive. Its TCP link to
   * the relay (the pending read, the keepalive and reconnect timers) is what
   * keeps a process alive; the client lets go of it once the client, every
   * listener and every open connection are unref'd. A call in progress
   * (`connect`, `status`, `ping`, a reconnect attempt) still holds the
   * process until it settles.
   *
   * @example A background client that lets the process exit
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * net.unref();
   * // The process exits once its other work is done, even without net.close().
   * assert.equal(net.state, "connected");
   * ```
   */
  unref(): void;
  /**
   * Closes every connection and listener (HTTP servers and idle fetch
   * connections with them), then the link; stops reconnecting. Idempotent.
   * Later calls reject (or throw) with `Closed`.
   *
   * @example Close, then calls fail with Closed
   * ```ts
   * import { Closed, connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * await net.close();
   * assert.equal(await net.closed, null);
   * assert.throws(() => net.listen({ port: 80 }), Closed);
   * await assert.rejects(net.ping({ hostname: net.virtualIp }), Closed);
   * ```
   *
   * @returns A promise that resolves once everything is closed.
   */
  close(): Promise<void>;
  /**
   * Same as {@linkcode AlphaNetClient.close}, for `await using`.
   *
   * @returns A promise that resolves once everything is closed.
   */
  [Symbol.asyncDispose](): Promise<void>;
  /** Starts {@linkcode AlphaNetClient.close} without waiting for it, for `using`. */
  [Symbol.dispose](): void;
}
