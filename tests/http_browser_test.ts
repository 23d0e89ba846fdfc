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
import { browserTest, launchChromium } from "./_helpers/chromium.ts";
import { startWebSocketServer } from "./_helpers/server_process.ts";
import { bundleClient, startStaticServer } from "./_helpers/static_server.ts";

/** Bound of a step that waits on the browser or a subprocess. */
const PAGE_MS = 30_000;

/** The page: it imports the bundle and exposes it. */
const HARNESS = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>AlphaNET HTTP in a browser</title></head>
<body><script type="module">
import * as alphanet from "/alphanet.js";
globalThis.alphanet = alphanet;
</script></body></html>
`;

browserTest(
  "in a browser, net.serve and net.fetch reject with a TypeError and sockets still work",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_bundle_" });
    try {
      await bundleClient(`${dir}/alphanet.js`);
      const relay = await startWebSocketServer();
      try {
        await using site = startStaticServer({
          "/": { body: HARNESS, type: "text/html; charset=utf-8" },
          "/alphanet.js": `${dir}/alphanet.js`,
        });
        await using chromium = await launchChromium();
        const page = await chromium.browser.newPage();
        const pageErrors: string[] = [];
        page.on("pageerror", (error) => pageErrors.push(String(error)));
        await page.goto(`${site.origin}/`, { waitUntil: "load" });
        await page.waitForFunction(() => "alphanet" in globalThis, { timeout: PAGE_MS });
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
        assert.deepEqual(pageErrors, [], "no uncaught error in the page");
      } finally {
        assert.equal(await relay.stop(), 0);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
