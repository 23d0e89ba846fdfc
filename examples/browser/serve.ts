/**
 * A tiny static file server for the browser example: serves the current
 * directory (run it from the repository's root) on 127.0.0.1, so the page at
 * `/examples/browser/` can load `../../dist/alphanet.js`. Browsers give pages
 * WebCrypto (which the identity needs) only on https or on 127.0.0.1 and
 * localhost, and this server is meant for this machine only.
 *
 * ```sh
 * deno task bundle
 * deno run --allow-net=127.0.0.1 --allow-read=. examples/browser/serve.ts [--port 8000]
 * ```
 *
 * @module
 */

/** The port served when `--port` is not given. */
export const DEFAULT_PORT = 8000;

/** Content types by file extension; anything else is served as bytes. */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
};

/**
 * The file a URL path names under the current directory, or null when the
 * path is not one this server serves (`..` segments, backslashes, NUL).
 * A path ending in `/` names its `index.html`.
 *
 * @param pathname The URL's path, percent-encoded as it came.
 * @returns The relative file path, or null.
 */
export function fileFor(pathname: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (!path.startsWith("/") || /[\\\0]/.test(path)) return null;
  const segments = path.slice(1).split("/");
  if (segments.some((segment) => segment === ".." || segment === ".")) return null;
  const file = segments.join("/");
  return file === "" || file.endsWith("/") ? `./${file}index.html` : `./${file}`;
}

/** Answers one request: a file under the current directory, or 404/405. */
async function handle(request: Request): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("only GET and HEAD\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const url = new URL(request.url);
  // The root has no page of its own: the example is the reason this server exists.
  if (url.pathname === "/") return Response.redirect(new URL("/examples/browser/", url), 302);
  const file = fileFor(url.pathname);
  let body: Uint8Array<ArrayBuffer>;
  try {
    if (file === null) throw new Deno.errors.NotFound();
    const info = await Deno.stat(file);
    // A folder named without its slash: relative links in its page need the slash.
    if (info.isDirectory) return Response.redirect(new URL(`${url.pathname}/`, url), 301);
    if (!info.isFile) throw new Deno.errors.NotFound();
    body = await Deno.readFile(file);
  } catch {
    return new Response(`not found: ${url.pathname}\n`, { status: 404 });
  }
  const type = TYPES[file.slice(file.lastIndexOf(".") + 1).toLowerCase()];
  return new Response(request.method === "HEAD" ? null : body, {
    headers: {
      "content-type": type ?? "application/octet-stream",
      // A rebuilt bundle shows up on the next reload.
      "cache-control": "no-store",
    },
  });
}

/** The port from `--port N` or `--port=N`; the default without one. */
function portFrom(args: string[]): number {
  const at = args.findIndex((arg) => arg === "--port" || arg.startsWith("--port="));
  if (at < 0) return DEFAULT_PORT;
  const text = args[at] === "--port" ? args[at + 1] : args[at].slice("--port=".length);
  const port = Number(text);
  if (!/^\d+$/.test(text ?? "") || port > 65535) {
    throw new RangeError(`--port takes a port number 0..65535, not ${JSON.stringify(text)}`);
  }
  return port;
}

if (import.meta.main) {
  let port: number;
  try {
    port = portFrom(Deno.args);
  } catch (error) {
    console.error(`serve.ts: ${(error as Error).message}`);
    Deno.exit(2);
  }
  try {
    await Deno.stat("./dist/alphanet.js");
  } catch {
    console.error("dist/alphanet.js is missing: run `deno task bundle` first (from the repo root)");
  }
  Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: ({ port }) =>
      console.log(`serving http://127.0.0.1:${port}/examples/browser/ (Ctrl-C stops)`),
  }, handle);
}
