/**
 * `server.ts --websocket-port` as an operator runs it: its start line, the
 * status page and `/status.json` naming each client's own carrier (and
 * agreeing with `clients list`), wss:// with the relay's certificate, the
 * debug log lines of links that are not WebSocket clients, and the flag's
 * usage errors.
 */

import assert from "node:assert/strict";
import { connect, generateIdentity } from "../mod.ts";
import { Relay } from "../server.ts";
import { resolveRelayConfig } from "../server/config.ts";
import { parseRelayFlags, USAGE } from "../server/flags.ts";
import { UsageError } from "../flags/usage_error.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { runDeno } from "./_helpers/run_deno.ts";
import { SERVER } from "./_helpers/server_process.ts";
import { CERT_FILE, KEY_FILE, testCa } from "./_helpers/tls.ts";
import { httpExchange, RawWebSocket, upgradeHead, writeAll } from "./_helpers/websocket_raw.ts";
import { startWebSocketRelayProcess } from "./_helpers/websocket_server.ts";

/** Bound on polls for the registry and the router to settle after joins. */
const MAX_POLLS = 100;

interface StatusJson {
  clients: { virtualIp: string; carrier: string }[];
}

async function statusJson(admin: string): Promise<StatusJson> {
  const response = await fetch(`${admin}/status.json`);
  assert.equal(response.status, 200);
  return await response.json();
}

/** The virtual IPs `server.ts clients list --json` reports online, sorted. */
async function listedOnline(db: string): Promise<string[]> {
  const run = await runDeno(["run", "-A", SERVER, "clients", "list", "--db", db, "--json"]);
  assert.equal(run.code, 0, run.stderr);
  const clients = JSON.parse(run.stdout) as { virtualIp: string; online: boolean }[];
  return clients.filter((client) => client.online).map((client) => client.virtualIp).sort();
}

/** The carrier /status.json shows for each of `ips`, once all of them are listed. */
async function carriersOf(admin: string, ips: string[]): Promise<Record<string, string>> {
  for (let polls = 0; polls < MAX_POLLS; polls++) {
    const { clients } = await statusJson(admin);
    const shown = Object.fromEntries(clients.map((client) => [client.virtualIp, client.carrier]));
    if (ips.every((ip) => ip in shown)) return shown;
  }
  throw new Error(`never listed: ${ips}`);
}

Deno.test("server.ts --websocket-port: the start line, and the status page and /status.json show each client's own carrier, as clients list does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_ws_status_" });
  const db = `${dir}/alphanet.db`;
  const server = await startWebSocketRelayProcess(["--db", db, "--admin-port", "0"]);
  try {
    assert.match(server.websocketLine, /^websocket on 127\.0\.0\.1:\d+$/);
    const overWs = await connect({
      url: `ws://127.0.0.1:${server.websocketPort}/`,
      identity: await generateIdentity(),
    });
    const overTcp = await connect({ port: server.port, identity: await generateIdentity() });
    try {
      const carriers = await carriersOf(server.admin!, [overWs.virtualIp, overTcp.virtualIp]);
      assert.equal(carriers[overWs.virtualIp], "ws");
      assert.equal(carriers[overTcp.virtualIp], "tcp");
      let listed = await listedOnline(db);
      for (let polls = 0; listed.length < 2 && polls < MAX_POLLS; polls++) {
        listed = await listedOnline(db);
      }
      assert.deepEqual(listed, Object.keys(carriers).sort());
      const html = await (await fetch(`${server.admin}/`)).text();
      assert.ok(html.includes(`<td>${overWs.virtualIp}</td><td>ws</td>`), "ws on the page");
      assert.ok(html.includes(`<td>${overTcp.virtualIp}</td><td>tcp</td>`), "tcp on the page");
    } finally {
      await overWs.close();
      await overTcp.close();
    }
  } finally {
    assert.equal((await server.stop()).code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts --websocket-port with --tls-cert serves wss:// with the same certificate; a plain link there fails quietly", async () => {
  const server = await startWebSocketRelayProcess([
    "--tls-cert",
    CERT_FILE,
    "--tls-key",
    KEY_FILE,
    "--admin-port",
    "0",
    "--log-level",
    "silent",
  ]);
  try {
    assert.match(server.websocketLine, /^websocket \(tls\) on 127\.0\.0\.1:\d+$/);
    const ws = await RawWebSocket.open(server.websocketPort, { caCerts: [testCa()] });
    const tls = await connect({ port: server.port, tls: true, caCerts: [testCa()] });
    try {
      const address = await ws.handshake();
      const wsIp = [24, 16, 8, 0].map((shift) => (address >>> shift) & 0xff).join(".");
      const carriers = await carriersOf(server.admin!, [wsIp, tls.virtualIp]);
      assert.equal(carriers[wsIp], "wss");
      assert.equal(carriers[tls.virtualIp], "tls");
      // Refusals are answered inside TLS too.
      const refused = await httpExchange(
        server.websocketPort,
        upgradeHead(server.websocketPort, { path: "/nope" }),
        [testCa()],
      );
      assert.equal(refused.status, 404);
      // A plain upgrade at the wss:// port gets no HTTP answer: its bytes are not TLS.
      const plain = await Deno.connect({ hostname: "127.0.0.1", port: server.websocketPort });
      try {
        await writeAll(plain, new TextEncoder().encode(upgradeHead(server.websocketPort)));
        const buffer = new Uint8Array(1024);
        let text = "";
        for (let reads = 0; reads < 16; reads++) {
          const count = await withTimeout(plain.read(buffer), STEP_MS, "the close").catch(
            (error) => error instanceof Deno.errors.ConnectionReset ? null : Promise.reject(error),
          );
          if (count === null) break;
          text += new TextDecoder("latin1").decode(buffer.subarray(0, count));
        }
        assert.doesNotMatch(text, /HTTP\/1\.1/);
      } finally {
        plain.close();
      }
    } finally {
      ws.close();
      await tls.close();
    }
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("server.ts --websocket-port: debug log lines say what came to the WebSocket port and went away", async () => {
  const server = await startWebSocketRelayProcess(["--log-level", "debug", "--log-format", "json"]);
  try {
    const send = async (bytes: Uint8Array): Promise<void> => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.websocketPort });
      try {
        await writeAll(conn, bytes);
        for (let reads = 0; reads < 16; reads++) {
          const count = await withTimeout(conn.read(new Uint8Array(1024)), STEP_MS, "the close");
          if (count === null) break;
        }
      } finally {
        conn.close();
      }
    };
    await send(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]));
    await send(new Uint8Array([0, 0, 0, 2, 1, 0, 2]));
    await send(new TextEncoder().encode(upgradeHead(server.websocketPort, { method: "PUT" })));
    const ws = await RawWebSocket.open(server.websocketPort, { protocol: null });
    await ws.expectClose(1002);
    ws.close();
  } finally {
    const { code, log } = await server.stop();
    assert.equal(code, 0, log);
    const events = log.trim().split("\n").map((line) => JSON.parse(line));
    const named = (event: string) => events.filter((e) => e.event === event);
    assert.ok(named("link").some((e) => e.carrier === "ws"), log);
    assert.equal(named("tls-on-plain-relay").length, 1, log);
    assert.equal(named("websocket-not-http").length, 1, log);
    const refused = named("websocket-refused");
    assert.deepEqual(refused.map((e) => e.status).sort(), [101, 405]);
    assert.ok(refused.every((e) => e.client === "127.0.0.1" && typeof e.message === "string"));
  }
});

Deno.test("--websocket-port: a bad value is a usage error; a port in use stops the start and frees the relay port", async () => {
  assert.match(USAGE, /--websocket-port PORT +also serve clients over WebSocket/);
  assert.match(USAGE, /websocket on HOST:PORT/);
  assert.deepEqual(parseRelayFlags(["--websocket-port", "0"]), {
    help: false,
    options: { websocketPort: 0 },
    tlsFiles: null,
  });
  for (const bad of ["x", "-1", "65536"]) {
    assert.throws(() => parseRelayFlags(["--websocket-port", bad]), UsageError);
  }
  assert.throws(() => resolveRelayConfig({ websocketPort: 70_000 }), RangeError);
  const run = await runDeno(["run", "-A", SERVER, "--websocket-port", "nope"]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--websocket-port/);
  // The WebSocket port is taken: the relay does not start, and lets go of what it opened.
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      async () =>
        await Relay.start({
          hostname: "127.0.0.1",
          port: 0,
          websocketPort: taken.addr.port,
          db: ":memory:",
        }),
      Deno.errors.AddrInUse,
    );
  } finally {
    taken.close();
  }
});
