/**
 * The operations endpoint (`--admin-port`): plain HTTP for supervisors and
 * scrapers. `/livez` says the process serves, `/readyz` that the relay
 * listens and its registry answers, `/metrics` is the Prometheus text format,
 * `/` a status page for people and `/status.json` the same snapshot as JSON.
 *
 * @module
 */

import { renderStatusPage, type StatusSnapshot } from "./status_page.ts";

/** What the endpoint asks of the running relay. */
export interface OpsSource {
  /**
   * Whether the relay accepts links and its registry answers a cheap read
   * (a PostgreSQL registry is a round trip away, bounded by its time-outs).
   */
  ready(): boolean | Promise<boolean>;
  /** The Prometheus text exposition of the relay's metrics now. */
  metricsText(): string;
  /** What the status page shows now. */
  status(): StatusSnapshot;
}

/** The content type of the Prometheus text format, version 0.0.4. */
const METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_TYPE = "text/plain; charset=utf-8";
const PATHS = new Set(["/", "/status.json", "/livez", "/readyz", "/metrics"]);

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": TEXT_TYPE, ...headers } });
}

/** Answers one request to the endpoint; exported for tests of the routing alone. */
export async function handleOpsRequest(source: OpsSource, request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (!PATHS.has(path)) {
    return text(404, "not found\n");
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return text(405, "method not allowed\n", { allow: "GET, HEAD" });
  }
  switch (path) {
    case "/livez":
      return text(200, "ok\n");
    case "/readyz":
      return (await source.ready()) ? text(200, "ready\n") : text(503, "not ready\n");
    case "/":
      return new Response(renderStatusPage(source.status()), {
        status: 200,
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
      });
    case "/status.json":
      return Response.json(source.status(), { headers: { "cache-control": "no-store" } });
    default:
      return new Response(source.metricsText(), {
        status: 200,
        headers: { "content-type": METRICS_TYPE },
      });
  }
}

/** A running operations endpoint: its address, and how to stop it. */
export class OpsEndpoint {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>) {
    this.#server = server;
  }

  /**
   * Serves `source` on `hostname:port` (0 picks a free port). Throws
   * `Deno.serve`'s error if the address cannot be bound.
   */
  static start(source: OpsSource, hostname: string, port: number): OpsEndpoint {
    const server = Deno.serve(
      { hostname, port, onListen: () => {} },
      (request) => handleOpsRequest(source, request),
    );
    return new OpsEndpoint(server);
  }

  /** The address served, with the real port. */
  get addr(): Deno.NetAddr {
    return this.#server.addr;
  }

  /** Stops serving; resolves once every open request is done. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}
