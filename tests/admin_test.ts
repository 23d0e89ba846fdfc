/**
 * Operating a live relay: `server.ts clients ...` reads and manages the
 * registry beside the running `server.ts`, and `--log-format json` logs one
 * JSON object per event.
 */

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { identityFromSecret } from "../client/identity.ts";
import { randomIdentity } from "./_helpers/bytes.ts";
import { type DenoRun, runDeno } from "./_helpers/run_deno.ts";
import { SERVER, startLoggedServer, startServer } from "./_helpers/server_process.ts";

function clients(...args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", SERVER, "clients", ...args]);
}

interface ClientJson {
  virtualIp: string;
  kind: string;
  firstSeen: string;
  lastSeen: string;
  online: boolean;
  publicKey: string | null;
}

/** The public key, as hex, of the identity a secret stands for. */
async function publicKeyOf(secret: string): Promise<string> {
  const { publicKey } = await identityFromSecret(secret);
  return Array.from(publicKey, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("clients list, show and release work on the registry of a running relay", async () => {
  const dir = await Deno.makeTempDir();
  const db = `${dir}/alphanet.db`;
  const server = await startServer(["--port", "0", "--db", db, "--log-level", "silent"]);
  try {
    const staysIdentity = randomIdentity();
    const stays = await connect({
      port: server.port,
      identity: staysIdentity,
      reconnect: false,
    });
    const leaves = await connect({
      port: server.port,
      identity: randomIdentity(),
      reconnect: false,
    });
    const leftIp = leaves.virtualIp;
    await leaves.close();
    try {
      // The relay marks a client offline as it handles the disconnect: poll, bounded.
      let listed: ClientJson[] = [];
      for (let attempt = 0; attempt < 50; attempt++) {
        const run = await clients("list", "--db", db, "--json");
        assert.equal(run.code, 0, run.stderr);
        listed = JSON.parse(run.stdout);
        if (listed.find((client) => client.virtualIp === leftIp)?.online === false) break;
      }
      const byIp = new Map(listed.map((client) => [client.virtualIp, client]));
      assert.equal(byIp.size, 2);
      assert.equal(byIp.get(stays.virtualIp)?.online, true);
      assert.equal(byIp.get(leftIp)?.online, false);
      for (const client of listed) {
        assert.equal(client.kind, "key");
        assert.match(client.publicKey ?? "", /^[0-9a-f]{64}$/);
        assert.ok(Date.parse(client.firstSeen) <= Date.parse(client.lastSeen));
      }
      const staysKey = await publicKeyOf(staysIdentity);
      assert.equal(byIp.get(stays.virtualIp)?.publicKey, staysKey);

      const shown = await clients("show", stays.virtualIp, "--db", db, "--json");
      assert.equal(shown.code, 0);
      assert.equal((JSON.parse(shown.stdout) as ClientJson).virtualIp, stays.virtualIp);
      const text = await clients("list", "--db", db);
      assert.match(
        text.stdout.split("\n")[0],
        /^VIRTUAL IP\s+KIND\s+FIRST SEEN\s+LAST SEEN\s+STATE\s+PUBLIC KEY$/,
        "a header row first",
      );
      assert.equal(text.stdout.trimEnd().split("\n").length, 1 + listed.length);
      assert.match(
        text.stdout,
        new RegExp(
          `^${stays.virtualIp.replaceAll(".", "\\.")}\\s+key\\s.*online\\s+${staysKey}$`,
          "m",
        ),
      );

      const refused = await clients("release", stays.virtualIp, "--db", db);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /online/);
      const released = await clients("release", leftIp, "--db", db);
      assert.equal(released.code, 0, released.stderr);
      const missing = await clients("show", leftIp, "--db", db);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no client has virtual IP/);
      const bad = await clients("show", "1.2.3", "--db", db);
      assert.equal(bad.code, 2);
    } finally {
      await stays.close();
    }
  } finally {
    assert.equal(await server.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs `server.ts` with JSON logs and `logArgs` around `use(port)`, then stops
 * it with SIGTERM and returns its log events (it must exit 0).
 */
async function withJsonLogs(
  logArgs: string[],
  use: (port: number) => Promise<void>,
): Promise<Record<string, unknown>[]> {
  const server = await startLoggedServer(["--port", "0", "--db", ":memory:", ...logArgs]);
  try {
    await use(server.port);
  } catch (error) {
    await server.stop().catch(() => {});
    throw error;
  }
  return await server.stop();
}

Deno.test("--log-format json writes one JSON object per connect, assignment and disconnect", async () => {
  let ip = "";
  const events = await withJsonLogs([], async (port) => {
    const client = await connect({ port, identity: randomIdentity(), reconnect: false });
    ip = client.virtualIp;
    await client.close();
  });
  const mine = events.filter((event) => event.vip === ip).map((event) => event.event);
  assert.deepEqual(mine, ["assign", "connect", "disconnect"]);
  for (const event of events) {
    assert.equal(typeof event.time, "string");
    assert.equal(typeof event.level, "string");
  }
});

Deno.test("clients --db on a file that is not a SQLite database prints one line and exits 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/notes.txt`;
    await Deno.writeTextFile(path, "these are not the tables you are looking for\n".repeat(200));
    for (const args of [["list"], ["show", "1.2.3.4"], ["list", "--json"]]) {
      const run = await clients(...args, "--db", path);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.stdout, "");
      assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
      assert.match(run.stderr, /^alphanet relay: cannot read registry .*notes\.txt: /);
    }
    const missing = await clients("list", "--db", `${dir}/absent.db`);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^alphanet relay: cannot open registry .*: no such file\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clients usage errors are one line with exit 2", async () => {
  for (const args of [["frobnicate"], ["show", "1.2.3"], ["list", "extra"], ["--bogus"]]) {
    const run = await clients(...args);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, /^alphanet relay: .* \(see clients --help\)$/m);
  }
});

Deno.test("--log-level debug logs the settings, each link, each refused request and the shutdown", async () => {
  let port = 0;
  const events = await withJsonLogs(["--log-level", "debug"], async (relayPort) => {
    port = relayPort;
    const client = await connect({ port, identity: randomIdentity(), reconnect: false });
    // An address nobody holds: the relay refuses the request itself.
    assert.deepEqual(await client.status({ hostname: "1.2.3.4", port: 80 }), {
      online: false,
      listening: false,
    });
    await client.close();
  });
  const stderr = JSON.stringify(events);
  const config = events.find((event) => event.event === "config");
  assert.ok(config, stderr);
  assert.equal(config.level, "debug");
  assert.equal(config.port, port);
  assert.equal(config.db, ":memory:");
  assert.equal(typeof config.keepaliveMs, "number");
  assert.ok(events.some((event) => event.event === "shutdown" && event.signal === "SIGTERM"));
  assert.ok(events.some((event) => event.event === "link" && event.client === "127.0.0.1"));
  assert.ok(
    events.some((event) =>
      event.event === "request-refused" && event.to === "1.2.3.4" && event.reason === "Offline"
    ),
    stderr,
  );
});

Deno.test("clients release logs an audit line, and list shows when addresses expire under --address-ttl", async () => {
  const dir = await Deno.makeTempDir();
  const db = `${dir}/alphanet.db`;
  const server = await startServer([
    "--port",
    "0",
    "--db",
    db,
    "--log-level",
    "silent",
    "--address-ttl",
    "30d",
  ]);
  try {
    const client = await connect({
      port: server.port,
      identity: randomIdentity(),
      reconnect: false,
    });
    const vip = client.virtualIp;
    await client.close();
    let listed: (ClientJson & { expires: string | null })[] = [];
    for (let attempt = 0; attempt < 50 && listed[0]?.online !== false; attempt++) {
      const run = await clients("list", "--db", db, "--json");
      assert.equal(run.code, 0, run.stderr);
      listed = JSON.parse(run.stdout);
    }
    assert.equal(listed[0]?.online, false);
    const DAYS_30 = 30 * 86_400_000;
    assert.equal(Date.parse(listed[0].expires!), Date.parse(listed[0].lastSeen) + DAYS_30);

    const text = await clients("list", "--db", db);
    assert.match(
      text.stdout.split("\n")[0],
      /^VIRTUAL IP\s+KIND\s+FIRST SEEN\s+LAST SEEN\s+STATE\s+EXPIRES\s+PUBLIC KEY$/,
    );
    assert.match(
      text.stdout,
      new RegExp(
        `offline\\s+${listed[0].expires!.replaceAll(".", "\\.")}\\s+[0-9a-f]{64}$`,
        "m",
      ),
    );

    const released = await clients("release", vip, "--db", db, "--log-format", "json");
    assert.equal(released.code, 0, released.stderr);
    assert.equal(released.stdout, `released ${vip}\n`);
    const lines = released.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, released.stderr);
    const audit = JSON.parse(lines[0]);
    assert.equal(audit.event, "admin-release");
    assert.equal(audit.vip, vip);
    assert.equal(audit.kind, "key");
    assert.equal(audit.db, db);
    assert.equal(typeof audit.time, "string");
    const textAudit = await clients("release", vip, "--db", db);
    assert.equal(textAudit.code, 1, "released already");
    assert.match(textAudit.stderr, /^alphanet relay: no client has virtual IP /);
  } finally {
    assert.equal(await server.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clients refuses another program's SQLite file in one line, leaving it as it was", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/other.db`;
    const { DatabaseSync } = await import("node:sqlite");
    const other = new DatabaseSync(path);
    other.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)");
    other.close();
    const before = await Deno.readFile(path);
    const run = await clients("list", "--db", path);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "");
    assert.match(
      run.stderr,
      /^alphanet relay: cannot open registry .*other\.db: it is another program's SQLite database \(tables invoices, user_version 0\)\n$/,
    );
    assert.deepEqual(await Deno.readFile(path), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a takeover is logged as an audit event with the old and the new source", async () => {
  const identity = randomIdentity();
  let vip = "";
  const events = await withJsonLogs([], async (port) => {
    const first = await connect({ port, identity, reconnect: false });
    vip = first.virtualIp;
    const second = await connect({ port, identity, reconnect: false });
    assert.ok((await first.closed) instanceof Error, "the older client was replaced");
    await second.close();
  });
  const takeover = events.find((event) => event.event === "takeover");
  assert.ok(takeover, JSON.stringify(events));
  assert.deepEqual(
    [takeover.level, takeover.vip, takeover.kind, takeover.from, takeover.to],
    ["warn", vip, "key", "127.0.0.1", "127.0.0.1"],
  );
});
