/**
 * One page in headless Chromium with the client bundle loaded, next to a real
 * relay that serves its WebSocket carrier: the setup the browser tests share.
 */

import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { launchChromium } from "./chromium.ts";
import { startWebSocketServer, type WebSocketRelay } from "./server_process.ts";
import { bundleClient, startStaticServer } from "./static_server.ts";

/**
 * A page that imports the bundle from `/alphanet.js` and exposes it as
 * `globalThis.alphanet`, and nothing else.
 *
 * @param title The page's title.
 * @returns The page's HTML.
 */
export function bundleHarness(title: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body><script type="module">
import * as alphanet from "/alphanet.js";
globalThis.alphanet = alphanet;
</script></body></html>
`;
}

/**
 * Builds the bundle into a temp dir, starts the relay (TCP and WebSocket), a
 * static server for `harnessHtml` at `/` and the bundle at `/alphanet.js`, and
 * Chromium with that page loaded and `globalThis.alphanet` set; runs `body`;
 * then closes everything, the browser first. An uncaught error in the page
 * fails the test, and so does a relay that does not exit 0.
 *
 * @param harnessHtml The page served at `/` (see {@linkcode bundleHarness}).
 * @param body The test, given the page and the relay.
 * @param options `timeoutMs` bounds the wait for the bundle to load in the page.
 */
export async function withBundlePage(
  harnessHtml: string,
  body: (page: Page, relay: WebSocketRelay) => Promise<void>,
  options: { timeoutMs: number },
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_bundle_" });
  try {
    await bundleClient(`${dir}/alphanet.js`);
    const relay = await startWebSocketServer();
    try {
      await using site = startStaticServer({
        "/": { body: harnessHtml, type: "text/html; charset=utf-8" },
        "/alphanet.js": `${dir}/alphanet.js`,
      });
      await using chromium = await launchChromium();
      const page = await chromium.browser.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (error) => pageErrors.push(String(error)));
      await page.goto(`${site.origin}/`, { waitUntil: "load" });
      await page.waitForFunction(() => "alphanet" in globalThis, { timeout: options.timeoutMs });
      await body(page, relay);
      assert.deepEqual(pageErrors, [], "no uncaught error in the page");
    } finally {
      assert.equal(await relay.stop(), 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
