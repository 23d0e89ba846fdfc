/**
 * The operations endpoint (`--admin-port`) of the real relay, `server.ts`,
 * as a subprocess: health answers, the Prometheus text of `/metrics`, and
 * its numbers moving as clients join, connect, send and are refused.
 */

import assert from "node:assert/strict";
import { connect, generateIdentity, Reason, RelayError } from "../mod.ts";
import { type AdminRelay, SERVER, startAdminRelay } from "./_helpers/server_process.ts";
import { handleOpsRequest } from "../server/ops_endpoint.ts";
import { Relay } from "../server.ts";
import { readExactly } from "./_helpers/streams.ts";

/** Bound on polls of /metrics for a count the relay updates just after the client sees its answer. */
const MAX_POLLS = 200;

/** One sample of a scrape: name with its labels, and value. */
type Samples = Map<string, number>;

/** Parses the Prometheus text format strictly enough to catch a malformed line. */
function parseMetrics(text: string): { types: Map<string, string>; samples: Samples } {
  const types = new Map<string, string>();
  const samples: Samples = new Map();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE ([a-z_]+) (counter|gauge)$/.exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (/^# HELP [a-z_]+ .+$/.test(line)) continue;
    const sample = /^([a-z_]+(?:\{[a-z_]+="[^"]*"\})?) (-?[0-9.e+]+)$/.exec(line);
    assert.ok(sample, `malformed metrics line: ${JSON.stringify(line)}`);
    const name = sample[1].replace(/\{.*$/, "");
    assert.ok(types.has(name), `sample before its TYPE: ${line}`);
    if (types.get(name) === "counter") assert.match(name, /_total$/);
    samples.set(sample[1], Number(sample[2]));
  }
  return { types, samples };
}

async function scrape(relay: AdminRelay): Promise<Samples> {
  const response = await fetch(`${relay.admin}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text()).samples;
}

/** Scrapes until `check` holds for the samples, within a bounded number of scrapes. */
async function scrapeUntil(
  relay: AdminRelay,
  check: (samples: Samples) => boolean,
): Promise<Samples> {
  let samples = await scrape(relay);
  for (let polls = 0; !check(samples); polls++) {
    assert.ok(polls < MAX_POLLS, `metrics never matched: ${JSON.stringify([...samples])}`);
    samples = await scrape(relay);
  }
  return samples;
}

async function get(url: string, init?: RequestInit): Promise<[number, string]> {
  const response = await fetch(url, init);
  return [response.status, await response.text()];
}

Deno.test("server.ts --admin-port: /livez, /readyz, 404, 405", async () => {
  const relay = await startAdminRelay();
  try {
    assert.deepEqual(await get(`${relay.admin}/livez`), [200, "ok\n"]);
    assert.deepEqual(await get(`${relay.admin}/readyz`), [200, "ready\n"]);
    assert.equal((await get(`${relay.admin}/nope`))[0], 404);
    assert.equal((await get(`${relay.admin}/metrics`, { method: "POST", body: "x" }))[0], 405);
  } finally {
    assert.equal(await relay.stop(), 0);
  }
});

Deno.test("server.ts --admin-port: /metrics lists every metric and moves with joins, connections, bytes and refusals", async () => {
  const relay = await startAdminRelay(["--ip-identities", "off"]);
  try {
    const response = await fetch(`${relay.admin}/metrics`);
    const { types, samples: before } = parseMetrics(await response.text());
    const expected: Record<string, string> = {
      alphanet_clients_online: "gauge",
      alphanet_virtual_connections_open: "gauge",
      alphanet_relayed_bytes_total: "counter",
      alphanet_joins_total: "counter",
      alphanet_refusals_total: "counter",
      alphanet_buffered_bytes: "gauge",
      alphanet_buffered_bytes_limit: "gauge",
      alphanet_requests_total: "counter",
    };
    for (const [name, type] of Object.entries(expected)) assert.equal(types.get(name), type, name);
    assert.equal(before.get("alphanet_clients_online"), 0);
    assert.equal(before.get("alphanet_joins_total"), 0);
    assert.ok((before.get("alphanet_buffered_bytes_limit") ?? 0) > 0);

    const alice = await connect({ port: relay.port, identity: await generateIdentity() });
    const bob = await connect({ port: relay.port, identity: await generateIdentity() });
    try {
      const joined = await scrape(relay);
      assert.equal(joined.get("alphanet_clients_online"), 2);
      assert.ok((joined.get("alphanet_joins_total") ?? 0) >= 2);

      const listener = bob.listen({ port: 8080 });
      const size = 64 * 1024;
      const accepted = listener.accept();
      const conn = await alice.connect({ hostname: bob.virtualIp, port: 8080 });
      const far = await accepted;
      const connected = await scrape(relay);
      assert.ok((connected.get("alphanet_virtual_connections_open") ?? 0) >= 1);
      assert.ok((connected.get("alphanet_requests_total") ?? 0) >= 1);

      await conn.write(new Uint8Array(size).fill(7));
      await readExactly(far, size);
      const sent = await scrape(relay);
      assert.ok(
        (sent.get("alphanet_relayed_bytes_total") ?? 0) >= size,
        `relayed ${sent.get("alphanet_relayed_bytes_total")}`,
      );
      conn.close();
      far.close();
      listener.close();
    } finally {
      await alice.close();
      await bob.close();
    }

    // With --ip-identities off, a client without an identity is refused with InvalidIdentity.
    await assert.rejects(
      connect({ port: relay.port, reconnect: false }),
      (error: unknown) => error instanceof RelayError && error.reason === Reason.InvalidIdentity,
    );
    const after = await scrapeUntil(
      relay,
      (samples) =>
        samples.get('alphanet_refusals_total{reason="InvalidIdentity"}') === 1 &&
        samples.get("alphanet_clients_online") === 0,
    );
    assert.ok((after.get("alphanet_joins_total") ?? 0) >= 2);
  } finally {
    assert.equal(await relay.stop(), 0);
  }
});

Deno.test("server.ts --help lists --admin-port and --admin-hostname with their defaults", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, "--help"],
    stderr: "null",
  }).output();
  const help = new TextDecoder().decode(output.stdout);
  assert.match(help, /--admin-port PORT .*\(default: off\)/);
  assert.match(help, /--admin-hostname HOST .*\(default 127\.0\.0\.1\)/);
});

Deno.test("/readyz answers 503 while the relay is not ready; HEAD is allowed, other methods 405", async () => {
  let ready = false;
  const source = {
    ready: () => ready,
    metricsText: () => "",
    status: () => ({
      now: "",
      clients: [],
      connectionsOpen: 0,
      sampleIntervalSeconds: 5,
      traffic: [],
      refusals: {},
    }),
  };
  const ask = (method: string, path: string): Promise<Response> =>
    handleOpsRequest(source, new Request(`http://127.0.0.1${path}`, { method }));
  const notReady = await ask("GET", "/readyz");
  assert.deepEqual([notReady.status, await notReady.text()], [503, "not ready\n"]);
  ready = true;
  assert.equal((await ask("GET", "/readyz")).status, 200);
  assert.equal((await ask("HEAD", "/livez")).status, 200);
  const put = await ask("PUT", "/livez");
  assert.equal(put.status, 405);
  assert.equal(put.headers.get("allow"), "GET, HEAD");
  await put.body?.cancel();
});

Deno.test("Relay.start({ adminPort: 0 }) serves the endpoint until relay.close()", async () => {
  const relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:", adminPort: 0 });
  const addr = relay.adminAddr;
  assert.ok(addr !== null);
  assert.equal(addr.hostname, "127.0.0.1");
  const url = `http://127.0.0.1:${addr.port}/readyz`;
  assert.deepEqual(await get(url), [200, "ready\n"]);
  await relay.close();
  await assert.rejects(fetch(url));
});
