/**
 * The client library in a real browser: headless Chromium loads the bundle
 * (`deno bundle --platform browser`, as `deno task bundle` makes
 * dist/alphanet.js), joins the real relay over its WebSocket carrier, and
 * talks to Deno clients that joined over TCP: 1 MiB each way byte-exact in
 * both directions of dialing, and a closed tab ends its peer's reads.
 */

import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import {
  type AlphaNetClient,
  connect,
  ConnectionReset,
  generateIdentity,
  type VirtualConn,
} from "../../mod.ts";
import { withTimeout } from "../_helpers/async.ts";
import { concatBytes, pseudoRandomBytes, sha256hex } from "../_helpers/bytes.ts";
import { bundleHarness, withBundlePage } from "../_helpers/browser_page.ts";
import { browserTest } from "../_helpers/chromium.ts";
import type { WebSocketRelay } from "../_helpers/server_process.ts";

/** Bytes moved each way. */
const SIZE = 1024 * 1024;
/** Seeds of the pseudo-random data each side sends, so a failure reproduces. */
const PAGE_SEED = 0x5eed_0001;
const DENO_SEED = 0x5eed_0002;
/** Bound of one transfer or page step. */
const STEP_MS = 30_000;

/** What the test pages hold on `globalThis`: the bundle's exports, and what a test keeps. */
interface PageGlobals {
  alphanet: typeof import("../../mod.ts");
  net?: AlphaNetClient;
  conn?: VirtualConn;
  served?: Promise<void>;
}

/** The page: it imports the bundle and exposes it, and nothing else. */
const HARNESS = bundleHarness("AlphaNET browser test");

/** Runs `body` with the page loaded next to a fresh relay (see withBundlePage). */
function withPage(body: (page: Page, relay: WebSocketRelay) => Promise<void>): Promise<void> {
  return withBundlePage(HARNESS, body, { timeoutMs: STEP_MS });
}

/** Reads a virtual connection to its end. */
async function readToEnd(conn: VirtualConn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  // Each pass reads a chunk; the peer's closeWrite ends it (callers bound it with withTimeout).
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) return concatBytes(chunks);
    chunks.push(buffer.slice(0, n));
  }
}

/** Writes all of `bytes`, then ends this side. */
async function writeAndEnd(conn: VirtualConn, bytes: Uint8Array): Promise<void> {
  await conn.write(bytes);
  await conn.closeWrite();
}

browserTest(
  "a page joins over WebSocket, dials a Deno client's listener and moves 1 MiB each way byte-exact",
  async () => {
    await withPage(async (page, relay) => {
      const deno = await connect({ port: relay.port, identity: await generateIdentity() });
      try {
        const listener = deno.listen({ port: 7000 });
        try {
          // In the page: join over the WebSocket, dial, send SIZE pseudo-random bytes (the same
          // xorshift32 as pseudoRandomBytes), read to the end, and return the SHA-256 of what came.
          const inPage = page.evaluate(
            async (url: string, hostname: string, port: number, size: number, seed: number) => {
              const { alphanet } = globalThis as unknown as PageGlobals;
              const net = await alphanet.connect({
                url,
                identity: await alphanet.generateIdentity({ extractable: false }),
              });
              try {
                const conn = await net.connect({ hostname, port });
                const data = new Uint8Array(size);
                let state = seed >>> 0 || 1;
                for (let i = 0; i < size; i++) {
                  state ^= state << 13;
                  state ^= state >>> 17;
                  state ^= state << 5;
                  data[i] = state & 0xff;
                }
                const writing = conn.write(data).then(() => conn.closeWrite());
                const received = new Uint8Array(size + 1);
                const buffer = new Uint8Array(64 * 1024);
                let total = 0;
                for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
                  if (total + n > received.length) throw new Error("more bytes than were sent");
                  received.set(buffer.subarray(0, n), total);
                  total += n;
                }
                await writing;
                conn.close();
                const digest = await crypto.subtle.digest("SHA-256", received.subarray(0, total));
                return {
                  virtualIp: net.virtualIp,
                  received: total,
                  sha256: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
                    .join(""),
                };
              } finally {
                await net.close();
              }
            },
            relay.url,
            deno.virtualIp,
            7000,
            SIZE,
            PAGE_SEED,
          );
          const inDeno = (async () => {
            const conn = await listener.accept();
            try {
              const [received] = await Promise.all([
                readToEnd(conn),
                writeAndEnd(conn, pseudoRandomBytes(SIZE, DENO_SEED)),
              ]);
              return { from: conn.remoteAddr.hostname, received };
            } finally {
              conn.close();
            }
          })();
          const [pageSide, denoSide] = await withTimeout(
            Promise.all([inPage, inDeno]),
            STEP_MS,
            "1 MiB each way between the page and Deno",
          );
          assert.equal(denoSide.from, pageSide.virtualIp, "the connection came from the page");
          assert.notEqual(pageSide.virtualIp, deno.virtualIp);
          assert.equal(denoSide.received.length, SIZE);
          assert.equal(
            await sha256hex(denoSide.received),
            await sha256hex(pseudoRandomBytes(SIZE, PAGE_SEED)),
          );
          assert.equal(pageSide.received, SIZE);
          assert.equal(pageSide.sha256, await sha256hex(pseudoRandomBytes(SIZE, DENO_SEED)));
        } finally {
          listener.close();
        }
      } finally {
        await deno.close();
      }
    });
  },
);

browserTest(
  "a page listens over WebSocket and a Deno client dials it: 1 MiB echoed byte-exact",
  async () => {
    await withPage(async (page, relay) => {
      // In the page: join, listen on 9000, echo one connection, then stop listening.
      const pageIp = await page.evaluate(
        async (url: string, port: number) => {
          const globals = globalThis as unknown as PageGlobals;
          const net = await globals.alphanet.connect({
            url,
            identity: await globals.alphanet.generateIdentity(),
          });
          globals.net = net;
          const listener = net.listen({ port });
          globals.served = (async () => {
            const conn = await listener.accept();
            listener.close();
            await conn.readable.pipeTo(conn.writable);
          })();
          return net.virtualIp;
        },
        relay.url,
        9000,
      );
      const deno = await connect({ port: relay.port, identity: await generateIdentity() });
      try {
        const conn = await deno.connect({ hostname: pageIp, port: 9000 });
        try {
          const sent = pseudoRandomBytes(SIZE, DENO_SEED);
          const [echoed] = await withTimeout(
            Promise.all([readToEnd(conn), writeAndEnd(conn, sent)]),
            STEP_MS,
            "1 MiB echoed by the page",
          );
          assert.equal(echoed.length, SIZE);
          assert.equal(await sha256hex(echoed), await sha256hex(sent));
        } finally {
          conn.close();
        }
        await page.evaluate(async () => {
          const globals = globalThis as unknown as PageGlobals;
          await globals.served;
          await globals.net?.close();
        });
      } finally {
        await deno.close();
      }
    });
  },
);

browserTest(
  "closing the tab ends the Deno peer's reads with null, and its writes fail with ConnectionReset",
  async () => {
    await withPage(async (page, relay) => {
      const deno = await connect({ port: relay.port, identity: await generateIdentity() });
      try {
        const listener = deno.listen({ port: 7001 });
        try {
          const accepted = listener.accept();
          // In the page: join, dial, say hello, and keep the connection open.
          await page.evaluate(
            async (url: string, hostname: string, port: number) => {
              const globals = globalThis as unknown as PageGlobals;
              globals.net = await globals.alphanet.connect({
                url,
                identity: await globals.alphanet.generateIdentity(),
              });
              globals.conn = await globals.net.connect({ hostname, port });
              await globals.conn.write(new TextEncoder().encode("hello"));
            },
            relay.url,
            deno.virtualIp,
            7001,
          );
          const conn = await withTimeout(accepted, STEP_MS, "the page's connection");
          try {
            const buffer = new Uint8Array(64);
            const n = await withTimeout(conn.read(buffer), STEP_MS, "the page's hello");
            assert.equal(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), "hello");

            await page.close();

            // The relay tells the peer its connection is gone (SocketClosed, PeerDisconnected):
            // reads end as at end of stream, writes fail.
            assert.equal(await withTimeout(conn.read(buffer), STEP_MS, "end of reads"), null);
            await assert.rejects(conn.write(new Uint8Array(1)), ConnectionReset);
          } finally {
            conn.close();
          }
        } finally {
          listener.close();
        }
      } finally {
        await deno.close();
      }
    });
  },
);
