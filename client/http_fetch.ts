/**
 * `AlphaNetClient.fetch`: the `fetch` shape for `http://VIRTUAL-IP:PORT/`
 * URLs, on node's HTTP/1.1 client (`node:http`, loaded on first use) over
 * virtual connections, with idle connections kept per origin for reuse.
 *
 * @module
 */

import type { Agent, ClientRequestArgs, IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { AlphaNetError, Closed, ConnectionReset } from "../errors.ts";
import { parseIpv4 } from "../protocol/address.ts";
import { incomingBody, NULL_BODY_STATUSES, writeBody } from "./http_body.ts";
import { loadNodeHttp, type NodeHttpModules } from "./http_node.ts";
import type { VirtualConnectOptions } from "./socket_options.ts";
import type { VirtualConn } from "./virtual_conn.ts";

/** Idle keep-alive connections kept per origin (virtual IP and port); more are closed. */
export const FETCH_MAX_IDLE_PER_ORIGIN = 8;
/**
 * How long a connection may stay idle before it is closed. Under the 5 s
 * after which `net.serve` (and node) close an idle connection, so the
 * client, not the server, closes it: a request never goes out on a
 * connection the server is closing. A server that announces a shorter
 * `Keep-Alive: timeout` is followed.
 */
export const FETCH_IDLE_TIMEOUT_MS = 4_000;
/** Redirects followed per fetch, as in browsers. */
const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
/** Headers that describe a request body, dropped when a redirect turns the request into a GET. */
const BODY_HEADERS = [
  "content-encoding",
  "content-language",
  "content-length",
  "content-location",
  "content-type",
  "transfer-encoding",
];

/** What `fetch` needs from the client. */
export interface FetchHost {
  connect(options: VirtualConnectOptions): Promise<VirtualConn>;
}

/** A body as it goes out: bytes (sent with a length, and again after a redirect) or a stream. */
type OutgoingBody = Uint8Array | ReadableStream<Uint8Array> | null;

/** One request on the wire. */
interface Exchange {
  readonly url: URL;
  readonly method: string;
  readonly headers: Headers;
  readonly body: OutgoingBody;
  readonly signal: AbortSignal;
}

/**
 * The URL `net.fetch` can reach, parsed; else a TypeError that says why.
 *
 * @param text The URL.
 * @param action What was being done, for the message.
 * @returns The URL.
 */
function virtualUrl(text: string, action: string): URL {
  const url = new URL(text);
  if (url.protocol !== "http:") {
    throw new TypeError(
      `${action}: net.fetch speaks http: only (${url.protocol} is not supported: virtual ` +
        `hosts have no TLS certificates)`,
    );
  }
  if (parseIpv4(url.hostname) === null) {
    throw new TypeError(
      `${action}: ${url.hostname} is not a virtual IP (net.fetch reaches only virtual IPs, ` +
        `http://VIRTUAL-IP:PORT/; use the global fetch for anything else)`,
    );
  }
  return url;
}

/** `url` and `redirected` of a Response made here, as `fetch` sets them. */
function describe(response: Response, url: URL, redirected: boolean): Response {
  Object.defineProperty(response, "url", { value: url.href, enumerable: true });
  Object.defineProperty(response, "redirected", { value: redirected, enumerable: true });
  return response;
}

/** Fetches over virtual connections, keeping idle ones per origin; one per client. */
export class VirtualFetcher {
  readonly #host: FetchHost;
  #agent: Agent | null = null;
  #closed = false;

  /** Created by the client on its first `fetch`. */
  constructor(host: FetchHost) {
    this.#host = host;
  }

  /**
   * Fetches `input` as `fetch` does, for `http://VIRTUAL-IP:PORT/` URLs.
   * See `AlphaNetClient.fetch`.
   */
  async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    const action = `Cannot fetch ${request.url}`;
    let url = virtualUrl(request.url, action);
    const signal = request.signal;
    signal.throwIfAborted();
    const node = await loadNodeHttp("net.fetch");
    if (this.#closed) throw new Closed(`${action}: the client is closed`);
    const agent = this.#agentFor(node);
    // A body given as bytes, text, a Blob or a form is whole already: keep it as bytes, to send
    // it with a Content-Length and again after a 307 or 308. A stream is sent as it comes.
    const streamed = init?.body instanceof ReadableStream ||
      (init?.body === undefined && input instanceof Request);
    let body: OutgoingBody = request.body === null
      ? null
      : streamed
      ? request.body
      : new Uint8Array(await request.arrayBuffer());
    let method = request.method;
    const headers = new Headers(request.headers);
    for (let redirects = 0;; redirects++) {
      const exchange = { url, method, headers, body, signal };
      const response = await this.#send(node, agent, exchange, FETCH_MAX_IDLE_PER_ORIGIN);
      const location = response.headers.get("location");
      if (
        !REDIRECT_STATUSES.has(response.status) || location === null ||
        request.redirect === "manual"
      ) {
        return describe(response, url, redirects > 0);
      }
      await response.body?.cancel();
      if (request.redirect === "error") {
        throw new TypeError(`${action}: redirected to ${location}, and redirect is "error"`);
      }
      if (redirects === MAX_REDIRECTS) {
        throw new TypeError(`${action}: more than ${MAX_REDIRECTS} redirects`);
      }
      const next = virtualUrl(
        new URL(location, url).href,
        `${action}: cannot follow the redirect to ${location}`,
      );
      if (
        (response.status === 303 && method !== "GET" && method !== "HEAD") ||
        ((response.status === 301 || response.status === 302) && method === "POST")
      ) {
        method = "GET";
        body = null;
        for (const name of BODY_HEADERS) headers.delete(name);
      } else if (body instanceof ReadableStream) {
        throw new TypeError(
          `${action}: cannot follow the ${response.status} redirect to ${location}: the body ` +
            `was a stream, which cannot be sent twice`,
        );
      }
      if (next.origin !== url.origin) headers.delete("authorization");
      url = next;
    }
  }

  /** Closes every connection, idle or busy; later fetches reject with `Closed`. */
  close(): void {
    this.#closed = true;
    this.#agent?.destroy();
    this.#agent = null;
  }

  /**
   * Opens a virtual connection to `options.host`:`options.port` and hands it
   * to `callback` as a Duplex once open: node:http takes a connection that
   * way when `createConnection` returns nothing (its types only know the
   * synchronous form).
   */
  #connector(
    node: NodeHttpModules,
  ): (
    options: ClientRequestArgs,
    callback?: (error: Error | null, socket: Duplex) => void,
  ) => Duplex {
    const host = this.#host;
    return (options, callback) => {
      const target = { hostname: options.host ?? "", port: Number(options.port) };
      host.connect(target).then(
        (conn) => callback?.(null, new node.Duplex(conn, { allowHalfOpen: false })),
        (error: Error) => callback?.(error, undefined as unknown as Duplex),
      );
      return undefined as unknown as Duplex;
    };
  }

  #agentFor(node: NodeHttpModules): Agent {
    if (this.#agent !== null) return this.#agent;
    const connector = this.#connector(node);
    class VirtualAgent extends node.http.Agent {
      override createConnection(
        options: ClientRequestArgs,
        callback?: (error: Error | null, socket: Duplex) => void,
      ): Duplex {
        return connector(options, callback);
      }
    }
    const agent = new VirtualAgent({
      keepAlive: true,
      maxFreeSockets: FETCH_MAX_IDLE_PER_ORIGIN,
      timeout: FETCH_IDLE_TIMEOUT_MS,
      scheduling: "lifo",
    });
    this.#agent = agent;
    return agent;
  }

  /**
   * Sends one request and resolves with its response once the head arrived.
   * A request that failed on a reused idle connection before any answer
   * (the server closed it meanwhile) goes again on another, when its body
   * can be sent again: at most `retries` times.
   */
  #send(
    node: NodeHttpModules,
    agent: Agent,
    exchange: Exchange,
    retries: number,
  ): Promise<Response> {
    const { url, method, headers, body, signal } = exchange;
    const action = `Cannot fetch ${url.href}`;
    return new Promise<Response>((resolve, reject) => {
      const fields: Record<string, string> = {};
      for (const [name, value] of headers) fields[name] = value;
      if (body instanceof Uint8Array) fields["content-length"] = String(body.length);
      // A streamed body goes on a new connection of its own, closed after the answer: on an idle
      // one the server may be closing, it could fail after some of it went out, and a stream
      // cannot be sent twice. (node:http in Deno would send it again by itself, replaying only
      // its first few KiB.) Whole bodies take an idle connection, and go again if it was closed.
      const streamed = body instanceof ReadableStream;
      const req = node.http.request({
        host: url.hostname,
        port: Number(url.port || 80),
        method,
        path: url.pathname + url.search,
        headers: fields,
        ...(streamed ? { createConnection: this.#connector(node) } : { agent }),
      });
      let answered = false;
      const onAbort = (): void => {
        req.destroy(signal.reason);
        if (!answered) {
          answered = true;
          reject(signal.reason);
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      req.on("error", (error: Error) => {
        if (answered) return;
        answered = true;
        signal.removeEventListener("abort", onAbort);
        if (req.reusedSocket && retries > 0 && !(body instanceof ReadableStream)) {
          resolve(this.#send(node, agent, exchange, retries - 1));
        } else {
          reject(this.#failure(error, action));
        }
      });
      req.on("response", (message: IncomingMessage) => {
        if (answered) return;
        answered = true;
        message.once("close", () => signal.removeEventListener("abort", onAbort));
        try {
          resolve(toResponse(message, method, signal));
        } catch (error) {
          message.destroy();
          reject(new TypeError(`${action}: ${(error as Error).message}`, { cause: error }));
        }
      });
      if (body === null) req.end();
      else if (body instanceof Uint8Array) req.end(body);
      else void writeBody(body, req, false);
    });
  }

  /** The error a failed request rejects with: the library's own where there is one. */
  #failure(error: Error, action: string): Error {
    if (this.#closed) return new Closed(`${action}: the client is closed`, { cause: error });
    if (error instanceof AlphaNetError) return error;
    if ((error as { code?: unknown }).code === "ECONNRESET") {
      return new ConnectionReset(`${action}: the server closed the connection without an answer`, {
        cause: error,
      });
    }
    return new TypeError(`${action}: ${error.message}`, { cause: error });
  }
}

/** The `Response` for a response head; its body streams from `message`. */
function toResponse(message: IncomingMessage, method: string, signal: AbortSignal): Response {
  const status = message.statusCode ?? 0;
  if (status < 200 || status > 599) {
    throw new TypeError(`the server answered with status ${status}, which fetch cannot represent`);
  }
  const headers = new Headers();
  const raw = message.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  let body: ReadableStream<Uint8Array<ArrayBuffer>> | null = null;
  if (method === "HEAD" || NULL_BODY_STATUSES.has(status)) message.resume();
  else {
    // Cancelling the body drops the connection: what is left of the body cannot be skipped
    // cheaply, and the next request must not read it as its answer.
    body = incomingBody(message, "the response body", (m) => m.destroy(), signal);
  }
  const init = { status, statusText: message.statusMessage ?? "", headers };
  try {
    return new Response(body, init);
  } catch {
    // A reason phrase the Response constructor refuses: keep the status without it.
    return new Response(body, { ...init, statusText: "" });
  }
}
