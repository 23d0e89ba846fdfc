/**
 * mod.ts loads where there is no Deno (a browser): importing it calls no
 * Deno API, and reads nothing of `Deno` but `Deno.errors` (whose classes
 * the socket errors extend where they exist). Checked in child processes,
 * so the module graph is loaded fresh.
 */

import assert from "node:assert/strict";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";

const CHILD = new URL("./_no_deno_child.ts", import.meta.url).pathname;

async function runChild(mode: "watch" | "absent"): Promise<unknown> {
  const output = await withTimeout(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", CHILD, mode],
      stdout: "piped",
      stderr: "piped",
    }).output(),
    STEP_MS * 4,
    `the ${mode} child to exit`,
  );
  const decoder = new TextDecoder();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  return JSON.parse(decoder.decode(output.stdout));
}

Deno.test("mod.ts: loading it reads only Deno.errors", async () => {
  assert.deepEqual(await runChild("watch"), { read: ["errors"] });
});

Deno.test("mod.ts: it loads without a Deno global, and identities work there", async () => {
  assert.deepEqual(await runChild("absent"), { roundTrip: true, errorsExtendError: true });
});
