import assert from "node:assert/strict";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { startRelay } from "../_helpers/relay_fixture.ts";

const CHILD = new URL("./_unref_child.ts", import.meta.url).pathname;

/** Runs the child in `mode` against a fresh relay; resolves with what it printed. */
async function runChild(mode: string): Promise<string[]> {
  const relay = await startRelay({ db: ":memory:" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net=127.0.0.1", CHILD, String(relay.port), mode],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const { code, stdout } = await withTimeout(child, STEP_MS * 2, `the ${mode} child to exit`);
    assert.equal(code, 0);
    return new TextDecoder().decode(stdout).trim().split("\n");
  } finally {
    await relay.close();
  }
}

Deno.test("a client whose sockets and self are all unref'd lets the process exit", async () => {
  assert.deepEqual(await runChild("all"), ["ready"]);
});

Deno.test("one ref'd listener keeps an unref'd client's process alive", async () => {
  assert.deepEqual(await runChild("listener"), ["ready", "alive"]);
});

Deno.test("one ref'd connection keeps an unref'd client's process alive", async () => {
  assert.deepEqual(await runChild("conn"), ["ready", "alive"]);
});
