/**
 * The command line over the WebSocket carrier, against the real relay
 * (`server.ts --websocket-port`) as a subprocess: `whoami --server ws://...`
 * prints the same permanent address as over TCP for the same identity file,
 * and `--json` names the relay by its URL.
 */

import assert from "node:assert/strict";
import { runCli } from "./_helpers.ts";
import { startWebSocketServer } from "../_helpers/server_process.ts";

Deno.test("cli: whoami --server ws://127.0.0.1:PORT/ joins over WebSocket, with the address TCP gives", async () => {
  const relay = await startWebSocketServer(["--log-level", "warn"]);
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_ws_" });
  try {
    const identity = ["--identity-file", `${dir}/identity`];
    const overWs = await runCli(["--server", relay.url, "whoami", ...identity]);
    assert.equal(overWs.code, 0, overWs.stderr);
    const address = overWs.stdout.trim();
    assert.match(address, /^\d+\.\d+\.\d+\.\d+$/);

    const overTcp = await runCli(["whoami", "--server", `127.0.0.1:${relay.port}`, ...identity]);
    assert.equal(overTcp.code, 0, overTcp.stderr);
    assert.equal(overTcp.stdout.trim(), address);

    const json = await runCli(["whoami", "--json", ...identity], { ALPHANET_SERVER: relay.url });
    assert.equal(json.code, 0, json.stderr);
    const printed = JSON.parse(json.stdout);
    assert.equal(printed.virtualIp, address);
    assert.equal(printed.relay, relay.url);
    assert.match(printed.relayId, /^[0-9a-f]{64}$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    assert.equal(await relay.stop(), 0);
  }
});
