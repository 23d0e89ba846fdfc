/**
 * A small HTTP server on 127.0.0.1 that serves the browser tests exactly the
 * files they list (pages, scripts, the bundled client) and nothing else, and
 * the bundle build those tests load.
 */

/** What one URL path serves: a file on disk, or text with its content type. */
export type StaticEntry = string | { readonly body: string; readonly type: string };

/** A running static server. */
export interface StaticServer extends AsyncDisposable {
  /** The base URL, `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** Stops the server and waits until it has finished. */
  close(): Promise<void>;
}

/** Content types by file extension, for the files the tests serve. */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  png: "image/png",
};

/** The content type of a file, by its extension. */
export function contentType(path: string): string {
  return TYPES[path.slice(path.lastIndexOf(".") + 1).toLowerCase()] ?? "application/octet-stream";
}

/**
 * Serves `files` (URL path → file path or text) on 127.0.0.1 at a free port;
 * any other path is a 404. Files are read per request, so a test can write
 * them after the server starts.
 */
export function startStaticServer(files: Record<string, StaticEntry>): StaticServer {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, async (request) => {
    const entry = files[new URL(request.url).pathname];
    if (entry === undefined || request.method !== "GET") {
      return new Response("not found\n", { status: 404 });
    }
    const headers = { "cache-control": "no-store" };
    if (typeof entry !== "string") {
      return new Response(entry.body, { headers: { ...headers, "content-type": entry.type } });
    }
    return new Response(await Deno.readFile(entry), {
      headers: { ...headers, "content-type": contentType(entry) },
    });
  });
  const close = async (): Promise<void> => {
    await server.shutdown();
  };
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The client library's entry module, which `deno task bundle` turns into dist/alphanet.js. */
const MOD = new URL("../../mod.ts", import.meta.url).pathname;

/**
 * Bundles the client for browsers, as `deno task bundle` does, into
 * `outputFile`: the tests build it themselves, so they run on a fresh clone.
 */
export async function bundleClient(outputFile: string): Promise<void> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "browser", "--output", outputFile, MOD],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`deno bundle failed: ${new TextDecoder().decode(output.stderr)}`);
  }
}
