/**
 * The public shapes of HTTP on the virtual network: the options and handler
 * of `AlphaNetClient.serve`, and the server it returns. They mirror
 * `Deno.serve`'s, so a handler written for `Deno.serve` serves a virtual
 * port unchanged.
 *
 * @module
 */

import type { VirtualAddr } from "./addr.ts";

/**
 * Options of `AlphaNetClient.serve`, like `Deno.ServeTcpOptions` for a
 * virtual port.
 *
 * @example Serve on port 80 until a signal
 * ```ts
 * import type { VirtualServeOptions } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const stop = new AbortController();
 * const options: VirtualServeOptions = {
 *   port: 80,
 *   signal: stop.signal,
 *   onListen: (addr) => console.log(`http://${addr.hostname}:${addr.port}/`),
 *   onError: () => new Response("Sorry", { status: 500 }),
 * };
 * assert.equal(options.port, 80);
 * ```
 */
export interface VirtualServeOptions {
  /** Virtual port to serve on, 1..65535; 0 picks a free one (see `server.addr`). */
  port: number;
  /**
   * This client's virtual IP, or `"0.0.0.0"`: a client has one address, so
   * this only checks it. Another address is a TypeError.
   * @default {undefined} (this client's virtual IP)
   */
  hostname?: string;
  /** Aborting it shuts the server down gracefully, as `server.shutdown()`. */
  signal?: AbortSignal;
  /**
   * Called once the server listens, with its address. Unlike `Deno.serve`,
   * nothing is printed without it.
   */
  onListen?: (localAddr: VirtualAddr) => void;
  /**
   * Makes the response for a request whose handler threw (or returned
   * something that is not a `Response`). The default logs the error with
   * `console.error` and answers 500 Internal Server Error, as `Deno.serve`
   * does; if `onError` throws too, the answer is that same 500.
   */
  onError?: (error: unknown) => Response | Promise<Response>;
}

/**
 * What the handler learns besides the request, like `Deno.ServeHandlerInfo`.
 *
 * @example Greet the caller by virtual IP
 * ```ts
 * import type { VirtualServeHandlerInfo } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const info: VirtualServeHandlerInfo = {
 *   remoteAddr: { transport: "tcp", hostname: "45.33.2.10", port: 49152 },
 *   completed: Promise.resolve(),
 * };
 * assert.equal(`hello ${info.remoteAddr.hostname}`, "hello 45.33.2.10");
 * await info.completed;
 * ```
 */
export interface VirtualServeHandlerInfo {
  /**
   * The virtual address of the client that sent the request: its virtual IP
   * (stamped by the relay, so it cannot be forged) and port.
   */
  readonly remoteAddr: VirtualAddr;
  /**
   * Resolves once the exchange is over: the response was sent in full, or
   * the client went away first (then `request.signal` is aborted too).
   * Never rejects, as in `Deno.serve`.
   */
  readonly completed: Promise<void>;
}

/**
 * Answers one request, like `Deno.ServeHandler`. It may throw (or reject):
 * the client gets the response of `onError` (500 by default) and the server
 * serves on. `request.signal` aborts if the client goes away before the
 * response is complete; the request body then errors with
 * `ConnectionReset`.
 *
 * @example A handler that echoes the body back
 * ```ts
 * import type { VirtualServeHandler } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const echo: VirtualServeHandler = (request) => new Response(request.body);
 * const response = await echo(new Request("http://83.12.4.200/", { method: "POST", body: "hi" }), {
 *   remoteAddr: { transport: "tcp", hostname: "45.33.2.10", port: 49152 },
 *   completed: Promise.resolve(),
 * });
 * assert.equal(await response.text(), "hi");
 * ```
 *
 * @param request The request; its URL is `http://` + the Host header + the path.
 * @param info Who sent it, and when the exchange is over.
 * @returns The response, or a promise of it.
 */
export type VirtualServeHandler = (
  request: Request,
  info: VirtualServeHandlerInfo,
) => Response | Promise<Response>;

/**
 * An HTTP/1.1 server on a virtual port, as `AlphaNetClient.serve` returns
 * it, in the shape of a `Deno.HttpServer<Deno.NetAddr>`.
 *
 * @example Serve, fetch, shut down
 * ```ts
 * import { connect } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
 * const server = await net.serve({ port: 80 }, () => new Response("hello"));
 * const response = await net.fetch(`http://${net.virtualIp}/`);
 * assert.equal(await response.text(), "hello");
 * await server.shutdown();
 * await server.finished;
 * ```
 */
export interface VirtualHttpServer extends AsyncDisposable {
  /**
   * The virtual address served: this client's virtual IP and the port (the
   * one picked if `port` was 0).
   *
   * @example Find the port picked for you
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * await using server = await net.serve({ port: 0 }, () => new Response("ok"));
   * assert.equal(server.addr.hostname, net.virtualIp);
   * assert.ok(server.addr.port > 0);
   * ```
   */
  readonly addr: VirtualAddr;
  /**
   * Resolves once the server has stopped: after `shutdown()` (or the
   * signal) finished, or once the client closed. Never rejects.
   *
   * @example Wait until the signal stopped it
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const stop = new AbortController();
   * const server = await net.serve({ port: 80, signal: stop.signal }, () => new Response("ok"));
   * stop.abort();
   * await server.finished;
   * assert.deepEqual(await net.status({ hostname: net.virtualIp, port: 80 }), {
   *   online: true,
   *   listening: false,
   * });
   * ```
   */
  readonly finished: Promise<void>;
  /**
   * Shuts down gracefully: stops accepting connections at once, closes idle
   * keep-alive connections, lets the requests in flight finish (their
   * responses say `Connection: close` when not yet started) and closes each
   * connection after its response. Idempotent.
   *
   * @example Stop serving, and the port is free again
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const server = await net.serve({ port: 80 }, () => new Response("ok"));
   * await server.shutdown();
   * using listener = net.listen({ port: 80 });
   * assert.equal(listener.addr.port, 80);
   * ```
   *
   * @returns A promise that resolves once every connection is closed (as `finished`).
   */
  shutdown(): Promise<void>;
  /**
   * Lets the server keep the process alive again (the default); see
   * {@linkcode VirtualHttpServer.unref}.
   *
   * @example Hold the process while serving
   * ```ts
   * import { connect } from "@alphanet/net";
   * import assert from "node:assert/strict";
   *
   * await using net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * await using server = await net.serve({ port: 80 }, () => new Response("ok"));
   * server.unref();
   * server.ref();
   * assert.equal(server.addr.port, 80);
   * ```
   */
  ref(): void;
  /**
   * Stops the server (its listener and connections) from keeping the
   * process alive, as `Deno.HttpServer.unref` does; see
   * `AlphaNetClient.unref` for what holds a process.
   *
   * @example A side server that does not hold the process
   * ```ts
   * import { connect } from "@alphanet/net";
   *
   * const net = await connect({ hostname: "127.0.0.1", port: 1337 });
   * const server = await net.serve({ port: 8080 }, () => new Response("ok"));
   * net.unref();
   * server.unref();
   * // The process exits when its main work is done, server and all.
   * ```
   */
  unref(): void;
  /**
   * Same as {@linkcode VirtualHttpServer.shutdown}, for `await using`.
   *
   * @returns A promise that resolves once the server has stopped.
   */
  [Symbol.asyncDispose](): Promise<void>;
}
