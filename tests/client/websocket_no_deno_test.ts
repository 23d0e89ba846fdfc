/**
 * The WebSocket path of the client touches no Deno API, at load or at run
 * time: a child process deletes the `Deno` global, imports mod.ts, joins the
 * real relay (`server.ts --websocket-port`) over ws:// with two clients and
 * echoes bytes between them, as a browser would.
 */

import assert from "node:assert/strict";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { startWebSocketServer } from "../_helpers/server_process.ts";

const CHILD = new URL("./_websocket_no_deno_child.ts", import.meta.url).pathname;

Deno.test("websocket without Deno: join, listen, connect and echo 2 MiB with the Deno global deleted", async () => {
  const relay = await startWebSocketServer(["--log-level", "warn"]);
  try {
    const output = await withTimeout(
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net=127.0.0.1", "--allow-read", CHILD, relay.url],
        stdout: "piped",
        stderr: "piped",
      }).output(),
      STEP_MS * 4,
      "the child to exit",
    );
    const decoder = new TextDecoder();
    assert.equal(output.code, 0, decoder.decode(output.stderr));
    assert.deepEqual(JSON.parse(decoder.decode(output.stdout)), {
      tcpRefused: true,
      denoAbsent: true,
      distinct: true,
      echoed: true,
    });
  } finally {
    assert.equal(await relay.stop(), 0);
  }
});
