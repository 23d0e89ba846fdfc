/**
 * An identity made in a browser with `generateIdentity({ extractable: false })`
 * is kept in IndexedDB as it is (a structured clone of its Uint8Array public
 * key and its CryptoKey private key), read back in a new page as an identity
 * that still signs for the same public key, and its private key's bytes can
 * never be read, neither by exportIdentity nor by WebCrypto.
 */

import assert from "node:assert/strict";
import type { Identity } from "../../mod.ts";
import { bundleHarness } from "../_helpers/browser_page.ts";
import { browserTest, launchChromium } from "../_helpers/chromium.ts";
import { bundleClient, startStaticServer } from "../_helpers/static_server.ts";

/** What the test pages hold on `globalThis`: the bundle's exports. */
interface PageGlobals {
  alphanet: typeof import("../../mod.ts");
  indexedDB: IdbFactory;
}

/** The few IndexedDB shapes the page uses (Deno's types have no DOM). */
interface IdbRequest<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface IdbStore {
  put(value: unknown, key: string): IdbRequest<unknown>;
  get(key: string): IdbRequest<unknown>;
}
interface IdbDatabase {
  createObjectStore(name: string): IdbStore;
  transaction(
    name: string,
    mode: "readonly" | "readwrite",
  ): { objectStore(name: string): IdbStore };
  close(): void;
}
interface IdbFactory {
  open(name: string, version: number): IdbOpenRequest;
}

/** The page: it imports the bundle and exposes it, and nothing else. */
const HARNESS = bundleHarness("AlphaNET identity test");

/** What a page reports about the identity it stored or read back. */
interface Report {
  publicKey: string;
  extractable: boolean;
  algorithm: string;
  usages: string[];
  /** The message `challenge` signed with the private key, hex. */
  signature: string;
  /** Why exportIdentity refused it, or "exported" if it did not. */
  exportIdentity: string;
  /** Why crypto.subtle.exportKey refused it, or "exported" if it did not. */
  exportKey: string;
}

const CHALLENGE = "AlphaNET identity storage test";

browserTest(
  "an identity made with extractable:false is kept in IndexedDB as it is, signs after a reload, and never shows its private key",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_bundle_" });
    try {
      await bundleClient(`${dir}/alphanet.js`);
      await using site = startStaticServer({
        "/": { body: HARNESS, type: "text/html; charset=utf-8" },
        "/alphanet.js": `${dir}/alphanet.js`,
      });
      await using chromium = await launchChromium();
      const page = await chromium.browser.newPage();

      // Runs in the page: stores a new identity (when `create`) or reads the stored one, and
      // reports on what it holds.
      const inPage = async (create: boolean, challenge: string): Promise<Report> => {
        const { alphanet, indexedDB } = globalThis as unknown as PageGlobals;
        const done = <T>(request: IdbRequest<T>): Promise<T> =>
          new Promise((resolve, reject) => {
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
          });
        const open = indexedDB.open("alphanet-test", 1);
        open.onupgradeneeded = () => open.result.createObjectStore("identities");
        const db = await done(open);
        let identity: Identity;
        if (create) {
          identity = await alphanet.generateIdentity({ extractable: false });
          const store = db.transaction("identities", "readwrite").objectStore("identities");
          await done(store.put(identity, "default"));
        } else {
          const store = db.transaction("identities", "readonly").objectStore("identities");
          identity = await done(store.get("default")) as Identity;
        }
        db.close();
        const hex = (bytes: ArrayBuffer | Uint8Array): string =>
          Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
        const refusal = (promise: Promise<unknown>): Promise<string> =>
          promise.then(() => "exported", (error) => `${error.name}: ${error.message}`);
        const signature = await crypto.subtle.sign(
          "Ed25519",
          identity.privateKey,
          new TextEncoder().encode(challenge),
        );
        return {
          publicKey: hex(identity.publicKey),
          extractable: identity.privateKey.extractable,
          algorithm: identity.privateKey.algorithm.name,
          usages: [...identity.privateKey.usages],
          signature: hex(signature),
          exportIdentity: await refusal(alphanet.exportIdentity(identity)),
          exportKey: await refusal(crypto.subtle.exportKey("pkcs8", identity.privateKey)),
        };
      };

      await page.goto(`${site.origin}/`, { waitUntil: "load" });
      await page.waitForFunction(() => "alphanet" in globalThis);
      const stored = await page.evaluate(inPage, true, CHALLENGE);
      // A reload is a new page: only IndexedDB carries the identity over.
      await page.reload({ waitUntil: "load" });
      await page.waitForFunction(() => "alphanet" in globalThis);
      const loaded = await page.evaluate(inPage, false, CHALLENGE);

      assert.equal(loaded.publicKey, stored.publicKey);
      assert.match(loaded.publicKey, /^[0-9a-f]{64}$/);
      for (const report of [stored, loaded]) {
        assert.equal(report.extractable, false);
        assert.equal(report.algorithm, "Ed25519");
        assert.deepEqual(report.usages, ["sign"]);
        assert.equal(
          report.exportIdentity,
          "TypeError: Cannot export identity: its private key is not extractable",
        );
        assert.match(report.exportKey, /^InvalidAccessError: /);
        // The signature checks out against the public key the relay would store.
        const publicKey = await crypto.subtle.importKey(
          "raw",
          Uint8Array.from(report.publicKey.match(/../g)!, (byte) => parseInt(byte, 16)),
          "Ed25519",
          false,
          ["verify"],
        );
        const signature = Uint8Array.from(report.signature.match(/../g)!, (b) => parseInt(b, 16));
        assert.ok(
          await crypto.subtle.verify(
            "Ed25519",
            publicKey,
            signature,
            new TextEncoder().encode(CHALLENGE),
          ),
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
