/**
 * The relay's status page as a person sees it: the real relay (`server.ts
 * --admin-port`) with two Deno clients online, `/` loaded in headless
 * Chromium, the DOM checked, and a screenshot kept as a test artifact.
 */

import assert from "node:assert/strict";
import { connect, generateIdentity } from "../../mod.ts";
import { browserTest, launchChromium } from "../_helpers/chromium.ts";
import { startAdminRelay } from "../_helpers/server_process.ts";

browserTest(
  "status page in Chromium: both online clients' virtual IPs, the traffic chart and the refusals table",
  async () => {
    const relay = await startAdminRelay();
    try {
      const alice = await connect({ port: relay.port, identity: await generateIdentity() });
      const bob = await connect({ port: relay.port, identity: await generateIdentity() });
      try {
        await using chromium = await launchChromium();
        const page = await chromium.browser.newPage();
        await page.setViewport({ width: 900, height: 800 });
        const response = await page.goto(`${relay.admin}/`, { waitUntil: "load" });
        assert.equal(response?.status(), 200);
        // Read right after load: the page reloads itself every 5 s.
        const title = await page.title();
        const clientIps = await page.$$eval(
          '::-p-xpath(//table[.//th[1]="Virtual IP"]//tr[td]/td[1])',
          (cells) => cells.map((cell) => cell.textContent),
        );
        const chart = await page.$('svg[aria-label="bytes relayed per sample"]');
        const refusalHeaders = await page.$$eval(
          '::-p-xpath(//h2[.="Refusals since start"]/following-sibling::table[1]//th)',
          (cells) => cells.map((cell) => cell.textContent),
        );
        assert.equal(title, "AlphaNET relay status");
        assert.deepEqual(clientIps.sort(), [alice.virtualIp, bob.virtualIp].sort());
        assert.ok(chart !== null, "the traffic chart is an inline SVG");
        assert.deepEqual(refusalHeaders, ["Reason", "Count"]);

        const artifacts = await Deno.makeTempDir({ prefix: "alphanet_status_page_" });
        const screenshot = `${artifacts}/status_page.png`;
        await page.screenshot({ path: screenshot, fullPage: true });
        assert.ok((await Deno.stat(screenshot)).size > 0);
        console.log(`status page screenshot: ${screenshot}`);
      } finally {
        await alice.close();
        await bob.close();
      }
    } finally {
      assert.equal(await relay.stop(), 0);
    }
  },
);
