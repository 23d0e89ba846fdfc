/**
 * HTTP on the virtual network needs node:http, which a browser does not
 * have: in headless Chromium, the bundle (as `deno task bundle` makes it)
 * loads, joins the real relay over WebSocket, and `net.serve` and
 * `net.fetch` reject with a TypeError that says so, while the client's
 * sockets keep working.
 */

import assert from "node:assert/strict";
import type { AlphaNetClient } from "../mod.ts";
import { withTimeout } from "./_helpers/async.ts";
import { bundleHarness, withBundlePage } from "./_helpers/browser_page.ts";
import { browserTest } from "./_helpers/chromium.ts";

/** Bound of a step that waits on the browser or a subprocess. */
const PAGE_MS = 30_000;

/** The page: it imports the bundle and exposes it. */
const HARNESS = bundleHarness("AlphaNET HTTP in a browser");

browserTest(
  "in a browser, net.serve and net.fetch reject with a TypeError and sockets still work",
  async () => {
    await withBundlePage(HARNESS, async (page, relay) => {
      const result = await withTimeout(
        page.evaluate(async (url: string) => {
          const { alphanet } = globalThis as unknown as {
            alphanet: { connect(options: { url: string }): Promise<AlphaNetClient> };
          };
          const net = await alphanet.connect({ url });
          const outcome = (promise: Promise<unknown>): Promise<string> =>
            promise.then(
              () => "resolved",
              (error: Error) => `${error.constructor.name}: ${error.message}`,
            );
          try {
            const serve = await outcome(net.serve({ port: 80 }, () => new Response("no")));
            const fetch = await outcome(net.fetch(`http://${net.virtualIp}/`));
            using listener = net.listen({ port: 80 });
            const status = await net.status({ hostname: net.virtualIp, port: 80 });
            return { serve, fetch, port: listener.addr.port, status };
          } finally {
            await net.close();
          }
        }, relay.url),
        PAGE_MS,
        "the page's calls",
      );
      assert.match(
        result.serve,
        /^TypeError: net\.serve needs node:http \(Deno\); not available/,
      );
      assert.match(
        result.fetch,
        /^TypeError: net\.fetch needs node:http \(Deno\); not available/,
      );
      assert.equal(result.port, 80, "the port serve did not take is free");
      assert.deepEqual(result.status, { online: true, listening: true });
    }, { timeoutMs: PAGE_MS });
  },
);
