/**
 * Loads `node:http` and `node:stream` on first use, with a dynamic import,
 * so that the client module loads where there are no node builtins (a
 * browser): there `net.serve` and `net.fetch` reject with a TypeError that
 * says so, and everything else works.
 *
 * @module
 */

import type * as NodeHttp from "node:http";
import {
  type NodeStreamModule,
  type VirtualConnDuplexClass,
  virtualConnDuplexClass,
} from "./virtual_conn_duplex.ts";

/** The node modules HTTP runs on, and the Duplex class made from them. */
export interface NodeHttpModules {
  readonly http: typeof NodeHttp;
  readonly Duplex: VirtualConnDuplexClass;
}

let loading: Promise<NodeHttpModules> | null = null;

/**
 * Loads the node modules once (later calls share the first load).
 *
 * @param what The API asking, for the error message: `"net.serve"` or `"net.fetch"`.
 * @returns The modules; rejects with a TypeError where they do not exist.
 */
export function loadNodeHttp(what: string): Promise<NodeHttpModules> {
  loading ??= importNodeHttp().catch((error) => {
    loading = null;
    throw error;
  });
  return loading.catch((error: unknown) => {
    throw new TypeError(
      `${what} needs node:http (Deno); not available in browsers (a browser can still ` +
        `connect, listen and use virtual connections)`,
      { cause: error },
    );
  });
}

async function importNodeHttp(): Promise<NodeHttpModules> {
  // Literal specifiers, so that Deno resolves them; a bundle for browsers leaves them as they are.
  const [http, stream] = await Promise.all([
    import("node:http") as Promise<typeof NodeHttp>,
    import("node:stream") as Promise<NodeStreamModule>,
  ]);
  return { http, Duplex: virtualConnDuplexClass(stream) };
}
