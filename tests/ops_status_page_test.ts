/**
 * The operations endpoint's status page (`/`) and `/status.json` on the real
 * relay, `server.ts`, as a subprocess: self-contained HTML listing the online
 * clients, and a snapshot that agrees with `server.ts clients list`.
 */

import assert from "node:assert/strict";
import { connect, generateIdentity } from "../mod.ts";
import { runDeno } from "./_helpers/run_deno.ts";
import { type AdminRelay, SERVER, startAdminRelay } from "./_helpers/server_process.ts";
import { escapeHtml, renderStatusPage, TrafficRing } from "../server/status_page.ts";
import { readExactly } from "./_helpers/streams.ts";

/** Bound on polls for the registry and the router to settle after joins and leaves. */
const MAX_POLLS = 100;

interface StatusJson {
  clients: { virtualIp: string; carrier: string; since: string; bytesRelayed: number }[];
  connectionsOpen: number;
  traffic: number[];
  refusals: Record<string, number>;
}

async function statusJson(relay: AdminRelay): Promise<StatusJson> {
  const response = await fetch(`${relay.admin}/status.json`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  return await response.json();
}

/** The virtual IPs `server.ts clients list --json` reports online, sorted. */
async function listedOnline(db: string): Promise<string[]> {
  const run = await runDeno(["run", "-A", SERVER, "clients", "list", "--db", db, "--json"]);
  assert.equal(run.code, 0, run.stderr);
  const clients = JSON.parse(run.stdout) as { virtualIp: string; online: boolean }[];
  return clients.filter((client) => client.online).map((client) => client.virtualIp).sort();
}

Deno.test("server.ts --admin-port: / is a self-contained status page and /status.json agrees with clients list", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_status_" });
  const db = `${dir}/alphanet.db`;
  const relay = await startAdminRelay(["--db", db]);
  try {
    const alice = await connect({ port: relay.port, identity: await generateIdentity() });
    const bob = await connect({ port: relay.port, identity: await generateIdentity() });
    // A client that joined and left: in the registry, offline, so on neither list.
    const gone = await connect({
      port: relay.port,
      identity: await generateIdentity(),
      reconnect: false,
    });
    const goneIp = gone.virtualIp;
    await gone.close();
    try {
      const online = [alice.virtualIp, bob.virtualIp].sort();

      // The relay marks the leaver offline as it handles the disconnect: poll, bounded.
      let listed = await listedOnline(db);
      let status = await statusJson(relay);
      let shown = status.clients.map((client) => client.virtualIp).sort();
      for (
        let polls = 0;
        JSON.stringify(listed) !== JSON.stringify(online) ||
        JSON.stringify(shown) !== JSON.stringify(online);
        polls++
      ) {
        assert.ok(polls < MAX_POLLS, `never settled: listed ${listed}, shown ${shown}`);
        listed = await listedOnline(db);
        status = await statusJson(relay);
        shown = status.clients.map((client) => client.virtualIp).sort();
      }
      assert.deepEqual(shown, listed);
      assert.ok(!shown.includes(goneIp));
      for (const client of status.clients) {
        assert.equal(client.carrier, "tcp");
        assert.ok(Number.isFinite(Date.parse(client.since)));
        assert.equal(client.bytesRelayed, 0);
      }
      assert.equal(status.connectionsOpen, 0);
      assert.ok(Array.isArray(status.traffic) && status.traffic.length <= 60);

      const response = await fetch(`${relay.admin}/`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
      const html = await response.text();
      assert.ok(html.includes(alice.virtualIp), "alice's virtual IP is on the page");
      assert.ok(html.includes(bob.virtualIp), "bob's virtual IP is on the page");
      assert.ok(!html.includes(goneIp), "the client that left is not on the page");
      assert.match(html, /<meta http-equiv="refresh" content="5">/);
      assert.match(html, /<svg /);
      assert.doesNotMatch(html, /<script/i);
      assert.doesNotMatch(html, /https?:\/\//i);
      assert.doesNotMatch(html, /<link /i);
    } finally {
      await alice.close();
      await bob.close();
    }
  } finally {
    assert.equal(await relay.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renderStatusPage escapes every value it shows", () => {
  const html = renderStatusPage({
    now: "<now>",
    clients: [{ virtualIp: "<b>1.2.3.4</b>", carrier: "tcp", since: "&", bytesRelayed: 3 }],
    connectionsOpen: 1,
    sampleIntervalSeconds: 5,
    traffic: [0, 10, 5],
    refusals: { '<img src=x onerror="y">': 2 },
  });
  assert.ok(!html.includes("<b>1.2.3.4</b>"));
  assert.ok(html.includes(escapeHtml("<b>1.2.3.4</b>")));
  assert.ok(!html.includes("<img"));
  assert.ok(html.includes("&lt;now&gt;"));
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
});

Deno.test("TrafficRing keeps the last increments of a counter, bounded", () => {
  const ring = new TrafficRing(3);
  for (const total of [10, 10, 25, 40, 100]) ring.sample(total);
  assert.deepEqual(ring.values(), [15, 15, 60]);
});

Deno.test("server.ts --admin-port: /status.json counts each client's relayed bytes and the open connections", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_status_" });
  const relay = await startAdminRelay(["--db", `${dir}/alphanet.db`]);
  try {
    const alice = await connect({ port: relay.port, identity: await generateIdentity() });
    const bob = await connect({ port: relay.port, identity: await generateIdentity() });
    try {
      const listener = bob.listen({ port: 8080 });
      const accepted = listener.accept();
      const conn = await alice.connect({ hostname: bob.virtualIp, port: 8080 });
      const far = await accepted;
      const size = 32 * 1024;
      await conn.write(new Uint8Array(size).fill(1));
      await readExactly(far, size);
      // Bob has every byte, so the relay has counted them: no poll needed.
      const status = await statusJson(relay);
      const byIp = new Map(status.clients.map((client) => [client.virtualIp, client]));
      assert.equal(byIp.get(alice.virtualIp)?.bytesRelayed, size);
      assert.equal(byIp.get(bob.virtualIp)?.bytesRelayed, 0);
      assert.equal(status.connectionsOpen, 1);
      conn.close();
      far.close();
      listener.close();
    } finally {
      await alice.close();
      await bob.close();
    }
  } finally {
    assert.equal(await relay.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});
