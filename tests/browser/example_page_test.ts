/**
 * The browser example (examples/browser/) as the README's tour runs it: the
 * relay with its WebSocket carrier, `alphanet listen PORT` (cli.ts) in a
 * "terminal", the example's own static server, and the page in headless
 * Chromium, driven only through its DOM: it joins and shows its virtual IP,
 * chats a line each way with the listener, and after a reload joins again
 * with the same identity (kept in IndexedDB, not extractable), so the same
 * virtual IP.
 */

import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { browserTest, launchChromium } from "../_helpers/chromium.ts";
import { Lines } from "../_helpers/line_reader.ts";
import { bundleClient } from "../_helpers/static_server.ts";
import { spawnCli, stopCli } from "../cli/_helpers.ts";
import { startWebSocketServer } from "../_helpers/server_process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** Bound of a step that waits on the browser or a subprocess. */
const PAGE_MS = 20_000;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** `examples/browser/serve.ts` run from the repository's root as the README says. */
async function startExampleServer(): Promise<{ origin: string } & AsyncDisposable> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read=.",
      "examples/browser/serve.ts",
      "--port",
      "0",
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = new Lines(child.stdout);
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await child.status;
    await lines.rest();
  };
  try {
    const line = await lines.expect("serving ", PAGE_MS);
    const match = /^serving (http:\/\/127\.0\.0\.1:\d+)\/examples\/browser\/ /.exec(line);
    assert.ok(match, `unexpected line: ${line}`);
    return { origin: match[1], [Symbol.asyncDispose]: stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Waits until the page's state reads `joined` (or fails with what it reads instead). */
async function joined(page: Page): Promise<void> {
  await page.waitForSelector('#state:is([data-state="joined"], [data-state="error"])', {
    timeout: PAGE_MS,
  });
  const [state, text] = await page.$eval("#state", (el) => [el.dataset.state, el.textContent]);
  assert.equal(state, "joined", `the page did not join: ${text}`);
}

/** The virtual IP the page shows. */
function shownVip(page: Page): Promise<string> {
  return page.$eval("#vip", (el) => el.textContent ?? "");
}

browserTest(
  "examples/browser/: joins over WebSocket, shows its virtual IP, chats with `alphanet listen`, keeps its identity",
  async () => {
    // The page loads ../../dist/alphanet.js: build it where `deno task bundle` does.
    await bundleClient(`${ROOT}dist/alphanet.js`);
    const dir = await Deno.makeTempDir({ prefix: "alphanet_example_" });
    const relay = await startWebSocketServer();
    try {
      const listen = spawnCli(
        ["listen", "7000", "--server", `127.0.0.1:${relay.port}`, "--identity-file", `${dir}/id`],
        "piped",
      );
      const stdin = listen.child.stdin.getWriter();
      try {
        const listening = await listen.err.expect("listening on ", PAGE_MS);
        const listenerAddr = listening.slice("listening on ".length);
        assert.match(listenerAddr, /^\d{1,3}(\.\d{1,3}){3}:7000$/);

        await using site = await startExampleServer();
        await using chromium = await launchChromium();
        const page = await chromium.browser.newPage();
        const pageErrors: string[] = [];
        page.on("pageerror", (error) => pageErrors.push(String(error)));
        // The server's root sends the browser to the example.
        await page.goto(`${site.origin}/`, { waitUntil: "load" });
        assert.equal(new URL(page.url()).pathname, "/examples/browser/");
        assert.equal(await page.$eval("#relay", (el) => el.value), "ws://127.0.0.1:8080/");

        await page.locator("#relay").fill(relay.url);
        await page.locator("#join").click();
        await joined(page);
        const vip = await shownVip(page);
        assert.match(vip, IPV4);
        assert.notEqual(`${vip}:7000`, listenerAddr);
        assert.match(
          await page.$eval("#identity", (el) => el.textContent ?? ""),
          /^Identity: new, kept in IndexedDB, private key extractable: false, public key [0-9a-f]{16}\.\.\.$/,
        );

        // Chat: a line from the page reaches listen's stdout, a line on its stdin reaches the page.
        await page.locator("#peer").fill(listenerAddr);
        await page.locator("#dial").click();
        await page.waitForSelector(`::-p-xpath(//li[.="connected to ${listenerAddr}"])`, {
          timeout: PAGE_MS,
        });
        await page.locator("#line").fill("hello from the browser");
        await page.locator("#send").click();
        assert.equal(
          await listen.out.expect("hello from the browser", PAGE_MS),
          "hello from the browser",
        );
        await page.waitForSelector('::-p-xpath(//li[.="> hello from the browser"])');
        await stdin.write(new TextEncoder().encode("hello from the terminal\n"));
        await page.waitForSelector('::-p-xpath(//li[.="< hello from the terminal"])', {
          timeout: PAGE_MS,
        });

        // The end of listen's input ends the page's reads; the page closes, and listen exits 0.
        await stdin.close();
        await page.waitForSelector('::-p-xpath(//li[.="the peer ended the connection"])', {
          timeout: PAGE_MS,
        });
        const status = await withTimeout(listen.child.status, PAGE_MS, "listen to exit");
        assert.equal(status.code, 0);

        const artifacts = await Deno.makeTempDir({ prefix: "alphanet_example_page_" });
        const screenshot = `${artifacts}/example_page.png`;
        await page.screenshot({ path: screenshot, fullPage: true });
        console.log(`example page screenshot: ${screenshot}`);

        // A reload is a new client with the identity from IndexedDB: the same virtual IP.
        await page.reload({ waitUntil: "load" });
        await page.locator("#relay").fill(relay.url);
        await page.locator("#join").click();
        await joined(page);
        assert.equal(await shownVip(page), vip);
        assert.match(
          await page.$eval("#identity", (el) => el.textContent ?? ""),
          /^Identity: kept in IndexedDB, private key extractable: false, /,
        );
        assert.deepEqual(pageErrors, [], "no uncaught error in the page");
      } finally {
        await stdin.close().catch(() => {});
        await withTimeout(stopCli(listen), STEP_MS, "listen to stop");
      }
    } finally {
      assert.equal(await relay.stop(), 0);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
