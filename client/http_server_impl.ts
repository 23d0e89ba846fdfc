/**
 * `AlphaNetClient.serve`: node's HTTP/1.1 server (`node:http`, loaded on
 * first use) fed the connections of a virtual listener, each through a
 * {@linkcode VirtualConnDuplex}, and turned into `Deno.serve`'s shape:
 * `Request` in, `Response` out, graceful shutdown.
 *
 * @module
 */

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { ConnectionReset } from "../errors.ts";
import type { VirtualAddr } from "./addr.ts";
import { incomingBody, NULL_BODY_STATUSES, writeBody } from "./http_body.ts";
import { loadNodeHttp, type NodeHttpModules } from "./http_node.ts";
import type {
  VirtualHttpServer,
  VirtualServeHandler,
  VirtualServeHandlerInfo,
  VirtualServeOptions,
} from "./http_server.ts";
import type { VirtualConnDuplex } from "./virtual_conn_duplex.ts";
import type { VirtualListener } from "./virtual_listener.ts";
import type { VirtualListenOptions } from "./socket_options.ts";

/** What `serve` needs from the client. */
export interface ServeHost {
  readonly virtualIp: string;
  listen(options: VirtualListenOptions): VirtualListener;
  /**
   * Registers something `close()` must stop at once; returns the function
   * that unregisters it.
   */
  track(closeNow: () => void): () => void;
}

/**
 * Starts serving `handler` on a virtual port. See `AlphaNetClient.serve`.
 *
 * @param host The client.
 * @param options Port, hostname check, signal and callbacks.
 * @param handler Answers each request.
 * @returns The server, once it listens.
 */
export async function serveHttp(
  host: ServeHost,
  options: VirtualServeOptions,
  handler: VirtualServeHandler,
): Promise<VirtualHttpServer> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot serve: options must be an object with a port");
  }
  if (typeof handler !== "function") {
    throw new TypeError("Cannot serve: the handler must be a function");
  }
  const { hostname } = options;
  if (hostname !== undefined && hostname !== "0.0.0.0" && hostname !== host.virtualIp) {
    throw new TypeError(
      `Cannot serve on ${hostname}: a client serves only on its own virtual IP ${host.virtualIp}`,
    );
  }
  const node = await loadNodeHttp("net.serve");
  const listener = host.listen({ port: options.port });
  const server = new VirtualHttpServerImpl(node, listener, handler, options, host);
  try {
    options.onListen?.(listener.addr);
  } catch (error) {
    await server.shutdown();
    throw error;
  }
  return server;
}

/** The default `onError`: log, then 500, as `Deno.serve` does. */
function defaultOnError(error: unknown): Response {
  console.error(error);
  return internalError();
}

function internalError(): Response {
  return new Response("Internal Server Error", { status: 500 });
}

/**
 * The request's URL, as `Deno.serve` builds it: `http://` + the Host
 * header (else the server's address) + the request target. Throws on a
 * target or Host that makes no URL.
 */
function requestUrl(message: IncomingMessage, addr: VirtualAddr): string {
  const target = message.url ?? "/";
  if (/^https?:\/\//i.test(target)) return new URL(target).href; // absolute-form
  const hostHeader = message.headers.host ?? `${addr.hostname}:${addr.port}`;
  // A Host is a host and port: no path, query, fragment or credentials smuggled into the URL.
  if (!/^[^\s/?#@\\]+$/.test(hostHeader)) {
    throw new TypeError(`Cannot serve: the Host header "${hostHeader}" is not a host`);
  }
  return new URL(`http://${hostHeader}${target.startsWith("/") ? "" : "/"}${target}`).href;
}

/**
 * Answers a request node could not parse (or that timed out) as node does,
 * with 400 (431 for headers too large, 408 for too slow), unless a response
 * was already on its way; then closes the connection once the answer is out
 * (node's own handler closes at once, which suits a TCP socket whose write
 * is already in the kernel, not a virtual connection whose write is queued).
 */
function clientError(error: Error & { code?: string }, socket: VirtualConnDuplex): void {
  if (!socket.writable || socket.bytesWritten > 0) {
    socket.destroy();
    return;
  }
  const status = error.code === "HPE_HEADER_OVERFLOW"
    ? "431 Request Header Fields Too Large"
    : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
    ? "408 Request Timeout"
    : "400 Bad Request";
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
}

/** Whether the message announced a body (a length above zero, or a transfer coding). */
function hasBody(message: IncomingMessage): boolean {
  if (message.headers["transfer-encoding"] !== undefined) return true;
  const length = message.headers["content-length"];
  return length !== undefined && length !== "0";
}

/** The implementation of {@linkcode VirtualHttpServer}. */
class VirtualHttpServerImpl implements VirtualHttpServer {
  readonly #node: NodeHttpModules;
  readonly #listener: VirtualListener;
  readonly #handler: VirtualServeHandler;
  readonly #onError: (error: unknown) => Response | Promise<Response>;
  readonly #server: Server;
  /** Open connections, with how many of their requests are still being answered. */
  readonly #connections = new Map<VirtualConnDuplex, number>();
  readonly #finished = Promise.withResolvers<void>();
  readonly #untrack: () => void;
  #accepting = true;
  #shuttingDown = false;
  #refd = true;

  constructor(
    node: NodeHttpModules,
    listener: VirtualListener,
    handler: VirtualServeHandler,
    options: VirtualServeOptions,
    host: ServeHost,
  ) {
    this.#node = node;
    this.#listener = listener;
    this.#handler = handler;
    this.#onError = options.onError ?? defaultOnError;
    this.#server = node.http.createServer();
    // node keeps a connection alive after a response only while its server listens, and it
    // never listens here: it is fed connections. It listens until shutdown() starts.
    Object.defineProperty(this.#server, "listening", {
      configurable: true,
      get: () => !this.#shuttingDown,
    });
    this.#server.on("request", (message: IncomingMessage, res: ServerResponse) => {
      this.#respond(message, res).catch(() => {
        // Something no handler controls failed (a header node refused): end only this exchange.
        if (res.headersSent) res.destroy();
        else {
          res.statusCode = 500;
          res.setHeader("connection", "close");
          res.end();
        }
      });
    });
    this.#server.on("clientError", (error: Error & { code?: string }, socket: Duplex) => {
      clientError(error, socket as unknown as VirtualConnDuplex);
    });
    // Starts node's check of headersTimeout (60 s) and requestTimeout (300 s) on every
    // connection, against clients that send a request slowly or never finish it; the
    // interval is unref'd and cleared by server.close().
    this.#server.emit("listening");
    this.#untrack = host.track(() => this.#closeNow());
    void this.#acceptAll();
    const signal = options.signal;
    if (signal?.aborted) void this.shutdown();
    else if (signal) {
      const abort = (): void => void this.shutdown();
      signal.addEventListener("abort", abort, { once: true });
      // A long-lived signal must not keep a finished server (and what it holds) alive.
      void this.#finished.promise.then(() => signal.removeEventListener("abort", abort));
    }
  }

  get addr(): VirtualAddr {
    return this.#listener.addr;
  }

  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  shutdown(): Promise<void> {
    if (!this.#shuttingDown) {
      this.#shuttingDown = true;
      this.#listener.close();
      this.#server.close();
      for (const [socket, busy] of this.#connections) if (busy === 0) socket.destroy();
      this.#checkFinished();
    }
    return this.#finished.promise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  ref(): void {
    this.#refd = true;
    this.#listener.ref();
    for (const socket of this.#connections.keys()) socket.ref();
  }

  unref(): void {
    this.#refd = false;
    this.#listener.unref();
    for (const socket of this.#connections.keys()) socket.unref();
  }

  /** The client closed: its connections are gone already; stop everything now. */
  #closeNow(): void {
    this.#shuttingDown = true;
    this.#listener.close();
    this.#server.close();
    for (const socket of this.#connections.keys()) socket.destroy();
    this.#checkFinished();
  }

  async #acceptAll(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#shuttingDown) {
          conn.close();
          continue;
        }
        const socket = new this.#node.Duplex(conn, { allowHalfOpen: true });
        if (!this.#refd) socket.unref();
        this.#connections.set(socket, 0);
        socket.once("close", () => {
          this.#connections.delete(socket);
          this.#checkFinished();
        });
        this.#server.emit("connection", socket);
      }
    } finally {
      // The listener closed: by shutdown(), or by the client's close().
      this.#accepting = false;
      if (!this.#shuttingDown) this.#closeNow();
      this.#checkFinished();
    }
  }

  #checkFinished(): void {
    if (!this.#shuttingDown || this.#accepting || this.#connections.size > 0) return;
    this.#untrack();
    this.#finished.resolve();
  }

  async #respond(message: IncomingMessage, res: ServerResponse): Promise<void> {
    // Every socket this server sees is one of ours (fed by #acceptAll).
    const socket = message.socket as unknown as VirtualConnDuplex;
    const open = this.#connections.get(socket);
    if (open !== undefined) this.#connections.set(socket, open + 1);
    const completed = Promise.withResolvers<void>();
    const aborted = new AbortController();
    res.once("close", () => {
      const busy = (this.#connections.get(socket) ?? 1) - 1;
      if (this.#connections.has(socket)) this.#connections.set(socket, busy);
      if (!res.writableFinished) {
        aborted.abort(
          new ConnectionReset("Cannot answer the request: the client went away before the end"),
        );
      }
      completed.resolve();
      if (this.#shuttingDown && busy === 0) socket.destroy();
    });
    if (this.#shuttingDown) res.setHeader("connection", "close");

    let request: Request;
    try {
      const method = message.method ?? "GET";
      const headers = new Headers();
      const raw = message.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
      const withBody = method !== "GET" && method !== "HEAD" && hasBody(message);
      request = new Request(requestUrl(message, this.addr), {
        method,
        headers,
        body: withBody ? incomingBody(message, "the request body", (m) => m.resume()) : null,
        signal: aborted.signal,
      });
    } catch {
      // A request node parsed but that makes no Request (a forbidden method, a bad Host).
      res.statusCode = 400;
      res.setHeader("connection", "close");
      res.end();
      return;
    }

    const info: VirtualServeHandlerInfo = {
      remoteAddr: socket.conn.remoteAddr,
      completed: completed.promise,
    };
    let response = await this.#answer(request, info);
    if (response.bodyUsed || response.body?.locked) {
      response = await this.#fail(new TypeError("Cannot send the response: its body is used"));
    }
    if (res.destroyed) {
      await response.body?.cancel().catch(() => {});
      return;
    }
    res.statusCode = response.status;
    if (response.statusText !== "") res.statusMessage = response.statusText;
    for (const [name, value] of response.headers) {
      if (name !== "set-cookie") res.setHeader(name, value);
    }
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) res.setHeader("set-cookie", cookies);
    const body = response.body;
    if (body === null || request.method === "HEAD" || NULL_BODY_STATUSES.has(response.status)) {
      await body?.cancel().catch(() => {});
      res.end();
      return;
    }
    const measure = !res.hasHeader("content-length") && !res.hasHeader("transfer-encoding");
    await writeBody(body, res, measure);
  }

  /** The handler's response; else (it threw or returned no Response) onError's. */
  async #answer(request: Request, info: VirtualServeHandlerInfo): Promise<Response> {
    try {
      const response: unknown = await this.#handler(request, info);
      if (response instanceof Response) return response;
      throw new TypeError(`Cannot answer the request: the handler returned ${typeof response}`);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  /** onError's response for `error`; the plain 500 if onError fails too. */
  async #fail(error: unknown): Promise<Response> {
    try {
      const response: unknown = await this.#onError(error);
      if (response instanceof Response && !response.bodyUsed) return response;
    } catch { /* onError itself failed: the plain 500 below */ }
    return internalError();
  }
}
