/**
 * `--server A,B,...`: a comma-separated list of HOST:PORT relays becomes the
 * client's `relays` (parsed strictly, TCP only), the real command line joins
 * the first that admits it, says which when none does, and a long-running
 * command that loses its relay moves to the next one.
 */

import assert from "node:assert/strict";
import { commonOptions, parseServerList } from "../../cli/args.ts";
import { UsageError } from "../../flags/usage_error.ts";
import { assertOneLineError, freePort, relay, runCli, spawnCli, stopCli } from "./_helpers.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";

Deno.test("cli args: a comma-separated --server is a list of relays in order, the first as server", () => {
  const list = commonOptions({ server: "127.0.0.1:1,[::1]:2,relay.example:3", tls: true });
  assert.deepEqual(list.relays, [
    { hostname: "127.0.0.1", port: 1 },
    { hostname: "::1", port: 2 },
    { hostname: "relay.example", port: 3 },
  ]);
  assert.deepEqual(list.server, { hostname: "127.0.0.1", port: 1 });
  assert.equal(list.websocket, null);
  assert.equal(list.tls, true);
  // One relay keeps today's shape: a list of one.
  assert.deepEqual(commonOptions({ server: "127.0.0.1:9" }).relays, [
    { hostname: "127.0.0.1", port: 9 },
  ]);
  assert.deepEqual(commonOptions({ server: "ws://127.0.0.1:8/" }).relays, [
    { hostname: "127.0.0.1", port: 8 },
  ]);
});

Deno.test("cli args: an empty entry, a URL, a missing port, a relay twice or too many are usage errors", () => {
  const refusals: [string, string][] = [
    ["127.0.0.1:1,", 'bad --server "127.0.0.1:1,": an empty entry; expected HOST:PORT,HOST:PORT'],
    ["a:1,,b:2", 'bad --server "a:1,,b:2": an empty entry; expected HOST:PORT,HOST:PORT'],
    [
      "a:1,ws://b:2/",
      'bad --server "a:1,ws://b:2/": a list takes HOST:PORT entries only; a ws:// or wss:// ' +
      "relay is given alone",
    ],
    ["a:1,b", 'bad --server entry "b": expected HOST:PORT'],
    ["a:1,b:0", 'bad --server entry port "0": expected a port number in 1..65535'],
    ["a:1,A:1", 'bad --server "a:1,A:1": A:1 is listed twice'],
  ];
  for (const [server, message] of refusals) {
    assert.throws(() => commonOptions({ server }), new UsageError(message), server);
  }
  const many = Array.from({ length: 33 }, (_, i) => `127.0.0.1:${i + 1}`).join(",");
  assert.throws(() => parseServerList(many, "--server"), /33 relays, at most 32/);
  assert.throws(
    () => commonOptions({ server: "a:1,b:2", "ca-cert": "ca.pem" }),
    /--ca-cert needs --tls/,
  );
});

Deno.test("cli: --help describes a --server list", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /HOST:PORT,HOST:PORT,\.\.\./);
});

Deno.test("cli: whoami --server DEAD,LIVE joins the live relay and names it", async () => {
  const live = await relay();
  try {
    const dead = freePort();
    const result = await runCli([
      "whoami",
      "--json",
      "--no-identity",
      "--server",
      `127.0.0.1:${dead},127.0.0.1:${live.port}`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout);
    assert.equal(printed.relay, `127.0.0.1:${live.port}`);
    assert.match(printed.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
  } finally {
    await live.stop();
  }
});

Deno.test("cli: a --server list none of which answers is one line naming each relay's failure", async () => {
  const [a, b] = [freePort(), freePort()];
  const result = await runCli([
    "whoami",
    "--no-identity",
    "--server",
    `127.0.0.1:${a},127.0.0.1:${b}`,
  ]);
  assertOneLineError(
    result,
    1,
    `alphanet: cannot join any relay of 127.0.0.1:${a},127.0.0.1:${b}: ` +
      `127.0.0.1:${a}: connection refused (os error 111); ` +
      `127.0.0.1:${b}: connection refused (os error 111)`,
  );
});

Deno.test("cli: expose with --server A,B moves to B when A stops, and says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_list_" });
  const relays: (ServerProcess | null)[] = [await relay(), await relay()];
  const [a, b] = relays.map((r) => `127.0.0.1:${r!.port}`);
  const service = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const exposer = spawnCli([
    "--server",
    `${a},${b}`,
    "--identity-file",
    `${dir}/exposer.id`,
    "expose",
    "7",
    `127.0.0.1:${service.addr.port}`,
  ]);
  try {
    await exposer.out.expect("exposing ", 15_000);
    await relays[0]!.stop();
    relays[0] = null;
    assert.match(
      await exposer.err.expect("expose: lost the relay", 15_000),
      new RegExp(`^expose: lost the relay at ${a} \\(.*\\), reconnecting$`),
    );
    assert.equal(
      await exposer.err.expect("expose: reconnected to the relay", 15_000),
      `expose: reconnected to the relay at ${b}`,
    );
  } finally {
    assert.equal(await stopCli(exposer), 0, exposer.err.seen);
    for (const r of relays) await r?.stop();
    service.close();
    await Deno.remove(dir, { recursive: true });
  }
});
