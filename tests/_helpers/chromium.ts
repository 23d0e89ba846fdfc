/**
 * Headless Chromium for the browser tests, driven by puppeteer-core over the
 * DevTools protocol on 127.0.0.1. puppeteer-core downloads no browser: it runs
 * the one installed (Debian's `chromium`, or `$CHROMIUM`). Without one the
 * browser tests say so in one line and are ignored, except under CI, where
 * .ci/run installs it, so a missing browser fails them instead of hiding them.
 */

import puppeteer, { type Browser } from "puppeteer-core";

/** Where Debian's `chromium` package puts the browser binary. */
const DEBIAN_CHROMIUM = "/usr/lib/chromium/chromium";

/**
 * Only 127.0.0.1 resolves: every other host name fails at once, so the
 * browser makes no DNS lookups (no telemetry, no component updates) and a
 * page that tried to reach anything off this machine fails visibly.
 */
const HOST_RESOLVER_RULES = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1";

/** The browser binary to run, or null if none is installed. */
function findChromium(): string | null {
  const candidates = [Deno.env.get("CHROMIUM"), DEBIAN_CHROMIUM].filter((path) => !!path);
  for (const path of candidates as string[]) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there: try the next one.
    }
  }
  return null;
}

/** The Chromium binary the browser tests run, or null if none was found. */
export const CHROMIUM_PATH: string | null = findChromium();

/**
 * Whether the browser tests are skipped: Chromium is missing and this is not
 * CI. Under CI (`CI=true`) they run and fail, so CI can never pass without them.
 */
export const SKIP_BROWSER_TESTS: boolean = CHROMIUM_PATH === null && Deno.env.get("CI") !== "true";

if (CHROMIUM_PATH === null) {
  console.log(
    `Chromium is missing (${DEBIAN_CHROMIUM}, or set $CHROMIUM): the browser tests are ${
      SKIP_BROWSER_TESTS ? "ignored" : "failing (CI=true)"
    }; install it with \`apt-get install -y chromium\``,
  );
}

/**
 * Registers a browser test: ignored (with the one-line notice above) when
 * Chromium is missing outside CI. Sanitizers stay on.
 */
export function browserTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: SKIP_BROWSER_TESTS, fn });
}

/** Whether this process runs as root, where Chromium's sandbox cannot start. */
async function runningAsRoot(): Promise<boolean> {
  // `id -u` rather than Deno.uid(), which needs --allow-sys that the test task does not grant.
  const output = await new Deno.Command("id", { args: ["-u"], stderr: "null" }).output();
  return new TextDecoder().decode(output.stdout).trim() === "0";
}

/** A running headless Chromium with its own temporary profile. */
export interface Chromium extends AsyncDisposable {
  /** The puppeteer-core handle. */
  readonly browser: Browser;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/**
 * Launches headless Chromium with a fresh temporary user-data-dir, no DNS
 * (only 127.0.0.1 resolves), and `--no-sandbox` only when running as root.
 *
 * @returns The browser; close it in a `finally` (or `await using`).
 */
export async function launchChromium(): Promise<Chromium> {
  if (CHROMIUM_PATH === null) {
    throw new Error(
      `Chromium is missing (${DEBIAN_CHROMIUM}, or set $CHROMIUM): apt-get install -y chromium`,
    );
  }
  const userDataDir = await Deno.makeTempDir({ prefix: "alphanet_chromium_" });
  const args = [HOST_RESOLVER_RULES];
  if (await runningAsRoot()) args.push("--no-sandbox");
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      userDataDir,
      args,
    });
  } catch (error) {
    await Deno.remove(userDataDir, { recursive: true });
    throw error;
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      await browser.close();
    } finally {
      await Deno.remove(userDataDir, { recursive: true });
    }
  };
  return { browser, close, [Symbol.asyncDispose]: close };
}
