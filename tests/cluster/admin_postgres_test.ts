/**
 * The registry commands (`clients`, `tokens`) against a cluster's
 * PostgreSQL registry (`--registry`), beside a relay that uses it: the same
 * output as on a SQLite file, audit lines that name the registry without its
 * password, and one-line errors for a database with no registry or none at all.
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import { Relay } from "../../server.ts";
import { AddressPool } from "../../server/address_pool.ts";
import { parseIpv4 } from "../../protocol/address.ts";
import { PostgresRegistry } from "../../server/registry_postgres.ts";
import { delay } from "../_helpers/async.ts";
import { randomIdentity } from "../_helpers/bytes.ts";
import { clusterTest, startPostgres } from "../_helpers/cluster_engines.ts";
import { type DenoRun, runDeno } from "../_helpers/run_deno.ts";
import { SERVER } from "../_helpers/server_process.ts";
import { freshDatabase } from "./_postgres_db.ts";

function command(...args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", SERVER, ...args]);
}

clusterTest(
  "clients and tokens work against a PostgreSQL registry beside a relay that uses it",
  async () => {
    await using pg = await startPostgres();
    // A password in the URL (trust authentication ignores it) must never be printed.
    const url = pg.url.replace("alphanet@", "alphanet:hunter2@");
    await using relay = await Relay.start({
      hostname: "127.0.0.1",
      port: 0,
      registry: url,
      join: "token",
      logLevel: "silent",
    });
    const created = await command("tokens", "create", "--registry", url, "--json");
    assert.equal(created.code, 0, created.stderr);
    const token = JSON.parse(created.stdout) as { id: string; token: string; uses: number };
    assert.equal(token.uses, 0);
    assert.match(created.stderr, /admin-token-create .*registry=postgres:\/\/alphanet:\*\*\*@/);
    assert.ok(!created.stderr.includes("hunter2"));

    const client = await connect({
      port: relay.addr.port,
      identity: randomIdentity(),
      joinToken: token.token,
      reconnect: false,
    });
    const vip = client.virtualIp;
    try {
      const listed = await command("clients", "list", "--registry", url, "--json");
      assert.equal(listed.code, 0, listed.stderr);
      const clients = JSON.parse(listed.stdout) as { virtualIp: string; online: boolean }[];
      assert.deepEqual(clients.map((c) => [c.virtualIp, c.online]), [[vip, true]]);
      const shown = await command("clients", "show", vip, "--registry", url);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`^VIRTUAL IP.*\\n${vip.replaceAll(".", "\\.")} +key `));
      const refused = await command("clients", "release", vip, "--registry", url);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /cannot release .*: the client is online now/);
      const tokens = await command("tokens", "list", "--registry", url, "--json");
      assert.equal(tokens.code, 0, tokens.stderr);
      assert.deepEqual(
        (JSON.parse(tokens.stdout) as { id: string; uses: number; state: string }[])
          .map((t) => [t.id, t.uses, t.state]),
        [[token.id, 1, "used-up"]],
      );
    } finally {
      await client.close();
    }
    // The relay marks its client offline as the link ends: poll the registry, bounded.
    const reader = await PostgresRegistry.open(url, AddressPool.default(), { migrate: false });
    try {
      let online = true;
      for (let check = 0; check < 500 && online; check++) {
        online = (await reader.get(parseIpv4(vip)!))?.online ?? false;
        if (online) await delay(10);
      }
      assert.equal(online, false, "the client marked offline within 5 s");
    } finally {
      await reader.close();
    }
    const released = await command("clients", "release", vip, "--registry", url, "--json");
    assert.equal(released.code, 0, released.stderr);
    assert.deepEqual(JSON.parse(released.stdout), { released: vip });
    assert.match(released.stderr, /admin-release .*registry=postgres:\/\/alphanet:\*\*\*@/);
    const revoked = await command("tokens", "revoke", token.id, "--registry", url);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout.trim(), `revoked ${token.id}`);
  },
);

clusterTest(
  "the registry commands refuse a database with no registry, and one out of reach, in one line",
  async () => {
    await using pg = await startPostgres();
    const empty = await freshDatabase(pg, "no_registry");
    const none = await command("clients", "list", "--registry", empty);
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /^alphanet relay: cannot open registry postgres:.*: it holds no AlphaNET registry .*\n$/,
    );
    const both = await command("tokens", "list", "--registry", empty, "--db", "x.db");
    assert.equal(both.code, 2);
    assert.match(both.stderr, /tokens: --registry and --db are alternatives/);
    await pg.halt();
    const down = await command("tokens", "list", "--registry", empty);
    assert.equal(down.code, 1);
    assert.match(
      down.stderr,
      /^alphanet relay: cannot open registry .*: the database is unavailable/,
    );
    assert.equal(down.stderr.trimEnd().split("\n").length, 1, down.stderr);
  },
);
