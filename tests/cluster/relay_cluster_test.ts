/**
 * Two in-process relays (`Relay.start`) of one cluster: the embedding API
 * (`meshAddr`, one relay id) and what an operator scrapes from `/metrics`.
 */

import assert from "node:assert/strict";
import { type ClientOptions, connect } from "../../mod.ts";
import { Relay } from "../../server.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { randomIdentity } from "../_helpers/bytes.ts";
import { clusterTest, startNats, startPostgres } from "../_helpers/cluster_engines.ts";
import { CERT_FILE, KEY_FILE, testCa } from "../_helpers/tls.ts";

function metric(text: string, name: string): number {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} is scraped`);
  return Number(line.split(" ")[1]);
}

clusterTest(
  "cluster: embedded relays expose their link port, share one id, and report links, remote clients and NATS in /metrics",
  async () => {
    await using postgres = await startPostgres();
    const nats = await startNats();
    const meshKey = crypto.getRandomValues(new Uint8Array(32));
    const options = {
      hostname: "127.0.0.1",
      port: 0,
      adminPort: 0,
      registry: postgres.url,
      nats: nats.url,
      meshPort: 0,
      meshKey,
      logLevel: "silent",
    } as const;
    try {
      await using one = await Relay.start(options);
      await using two = await Relay.start(options);
      assert.notEqual(one.meshAddr?.port, undefined);
      assert.notEqual(one.meshAddr?.port, two.meshAddr?.port);
      assert.equal(one.relayId, two.relayId);
      await using a = await connect({ port: one.addr.port, identity: randomIdentity() });
      await using b = await connect({ port: two.addr.port, identity: randomIdentity() });
      const listener = a.listen({ port: 80 });
      const accepted = withTimeout(listener.accept(), STEP_MS, "accept");
      using dialed = await withTimeout(
        b.connect({ hostname: a.virtualIp, port: 80 }),
        STEP_MS,
        "dial",
      );
      using _accepted = await accepted;
      const scrape = await fetch(`http://127.0.0.1:${one.adminAddr!.port}/metrics`);
      const text = await scrape.text();
      assert.equal(metric(text, "alphanet_cluster_links"), 1);
      assert.equal(metric(text, "alphanet_cluster_remote_clients"), 1);
      assert.equal(metric(text, "alphanet_cluster_nats_connected"), 1);
      assert.equal(metric(text, "alphanet_clients_online"), 1, "only its own clients");
      assert.equal(metric(text, "alphanet_virtual_connections_open"), 1);
      assert.equal(dialed.remoteAddr.hostname, a.virtualIp);
    } finally {
      await nats.stop();
    }
  },
);

clusterTest(
  "cluster: relays serving TLS serve and dial their links over TLS, the dialer checking the certificate",
  async () => {
    await using postgres = await startPostgres();
    const nats = await startNats();
    const tls = { cert: Deno.readTextFileSync(CERT_FILE), key: Deno.readTextFileSync(KEY_FILE) };
    const base = {
      hostname: "127.0.0.1",
      port: 0,
      registry: postgres.url,
      nats: nats.url,
      meshPort: 0,
      meshKey: crypto.getRandomValues(new Uint8Array(32)),
      tls,
      logLevel: "silent",
    } as const;
    try {
      await using one = await Relay.start({ ...base, meshCaCerts: [testCa()] });
      await using two = await Relay.start({ ...base, meshCaCerts: [testCa()] });
      // The link port speaks TLS with the relay's certificate.
      const probe = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: one.meshAddr!.port,
        caCerts: [testCa()],
      });
      const handshake = await probe.handshake();
      assert.equal(typeof handshake.alpnProtocol, "object");
      probe.close();
      const client: ClientOptions = { tls: true, caCerts: [testCa()] };
      await using a = await connect({ ...client, port: one.addr.port, identity: randomIdentity() });
      await using b = await connect({ ...client, port: two.addr.port, identity: randomIdentity() });
      const listener = a.listen({ port: 80 });
      const accepted = withTimeout(listener.accept(), STEP_MS, "accept over a TLS link");
      using _dialed = await withTimeout(
        b.connect({ hostname: a.virtualIp, port: 80 }),
        STEP_MS,
        "dial",
      );
      using _accepted = await accepted;
    } finally {
      await nats.stop();
    }
  },
);
