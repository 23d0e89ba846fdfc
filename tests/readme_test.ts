/**
 * The README's client example runs as written against the real relay: the
 * only change is the relay's port, which the test picks. A second run adds
 * peers that leave in the middle of an echo, which must end only their own
 * connections, never the example's process.
 */

import assert from "node:assert/strict";
import { type DenoRun, runDeno } from "./_helpers/run_deno.ts";
import { startServer } from "./_helpers/server_process.ts";

const ROOT = new URL("../", import.meta.url);
const README = new URL("README.md", ROOT);
const CONFIG = new URL("deno.json", ROOT).pathname;
const RUN_TIMEOUT_MS = 30_000;

/** The first TypeScript block after the README heading `heading` (e.g. "## Client"). */
async function readmeExample(heading: string): Promise<string> {
  const text = await Deno.readTextFile(README);
  const section = text.slice(text.indexOf(`\n${heading}\n`));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(match, `README has a ts block under ${heading}`);
  return match[1];
}

/** Runs `source` as a module of this package (so `@alphanet/net` resolves) and returns its output. */
async function runExample(source: string): Promise<DenoRun> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_readme_" });
  try {
    const file = `${dir}/example.ts`;
    await Deno.writeTextFile(file, source);
    return await runDeno(["run", "--config", CONFIG, "--allow-net=127.0.0.1", file], {
      signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The example with the relay's port put in place of the default one. */
function withPort(example: string, port: number): string {
  const occurrences = example.split("port: 1337").length - 1;
  assert.equal(occurrences, 1, "the example names the relay port once");
  return example.replace("port: 1337", `port: ${port}`);
}

/**
 * Peers that write and leave before reading their echo: the echo server's
 * pipe then fails, which must close only that connection. A last echo
 * proves the server still serves.
 */
const EARLY_LEAVERS = `
for (let i = 0; i < 5; i++) {
  const leaver = await net.connect({ hostname: net.virtualIp, port: 7 });
  await leaver.write(new Uint8Array(256 * 1024));
  leaver.close();
}
{
  using last = await net.connect({ hostname: net.virtualIp, port: 7 });
  await last.write(new TextEncoder().encode("still"));
  const echoed = new Uint8Array(5);
  let got = 0;
  while (got < 5) got += (await last.read(echoed.subarray(got))) ?? 5;
  console.log(new TextDecoder().decode(echoed));
}
`;

Deno.test("the README's client example runs as written against server.ts", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_readme_db_" });
  const server = await startServer(["--port", "0", "--db", `${dir}/alphanet.db`]);
  try {
    const example = withPort(await readmeExample("## Client"), server.port);

    await t.step("as written", async () => {
      const { code, stdout, stderr } = await runExample(example);
      assert.equal(code, 0, stderr);
      const lines = stdout.trim().split("\n");
      assert.match(lines[0], /^\d+\.\d+\.\d+\.\d+$/);
      assert.equal(lines[1], "hello");
      assert.equal(lines[2], "{ online: true, listening: true }");
    });

    await t.step("with peers that leave mid-echo", async () => {
      const closeAt = example.lastIndexOf("listener.close();");
      assert.ok(closeAt > 0, "the example closes its listener at the end");
      const source = example.slice(0, closeAt) + EARLY_LEAVERS + example.slice(closeAt);
      const { code, stdout, stderr } = await runExample(source);
      assert.equal(code, 0, stderr);
      assert.equal(stdout.trim().split("\n").at(-1), "still");
      assert.doesNotMatch(stderr, /Uncaught/);
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the README's HTTP example serves and fetches as written against server.ts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_readme_db_" });
  const server = await startServer(["--port", "0", "--db", `${dir}/alphanet.db`]);
  try {
    const example = await readmeExample("### HTTP on the virtual network");
    assert.equal(example.split("port: 1337").length - 1, 2, "both clients name the relay port");
    const { code, stdout, stderr } = await runExample(
      example.replaceAll("port: 1337", `port: ${server.port}`),
    );
    assert.equal(code, 0, stderr);
    assert.match(stdout.trim(), /^hello \d+\.\d+\.\d+\.\d+, you asked for \/page$/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
