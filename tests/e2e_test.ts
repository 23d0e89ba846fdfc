/**
 * End to end: the real `server.ts` as a subprocess, started the way the
 * README says, and real clients in this process.
 */

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { pseudoRandomBytes, sha256hex as sha256 } from "./_helpers/bytes.ts";
import { runDeno } from "./_helpers/run_deno.ts";
import { SERVER, startServer } from "./_helpers/server_process.ts";
import { readAll } from "./_helpers/streams.ts";

Deno.test("server.ts subprocess relays 8 MiB each way between two clients, byte-exact", async () => {
  const dir = await Deno.makeTempDir();
  const server = await startServer([
    "--port",
    "0",
    "--db",
    `${dir}/alphanet.db`,
    "--log-level",
    "warn",
  ]);
  try {
    const alice = await connect({ port: server.port, identity: "alice-e2e-identity-secret" });
    const bob = await connect({ port: server.port, identity: "bob-e2e-identity-secret!!" });
    try {
      assert.notEqual(alice.virtualIp, bob.virtualIp);
      const size = 8 * 1024 * 1024;
      const fromAlice = pseudoRandomBytes(size, 1);
      const fromBob = pseudoRandomBytes(size, 2);
      const listener = bob.listen({ port: 8080 });
      const bobSide = (async () => {
        const conn = await listener.accept();
        const [received] = await Promise.all([
          readAll(conn),
          conn.write(fromBob).then(() => conn.closeWrite()),
        ]);
        conn.close();
        return received;
      })();
      const conn = await alice.connect({ hostname: bob.virtualIp, port: 8080 });
      assert.equal(conn.remoteAddr.hostname, bob.virtualIp);
      const [aliceReceived] = await Promise.all([
        readAll(conn),
        conn.write(fromAlice).then(() => conn.closeWrite()),
      ]);
      const bobReceived = await bobSide;
      conn.close();
      listener.close();
      assert.equal(aliceReceived.length, size);
      assert.equal(bobReceived.length, size);
      assert.equal(await sha256(aliceReceived), await sha256(fromBob));
      assert.equal(await sha256(bobReceived), await sha256(fromAlice));
    } finally {
      await alice.close();
      await bob.close();
    }
  } finally {
    assert.equal(await server.stop(), 0, "server exits 0 on SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts keeps a client's virtual IP across a restart on the same db file", async () => {
  const dir = await Deno.makeTempDir();
  const args = ["--port", "0", "--db", `${dir}/alphanet.db`, "--log-level", "silent"];
  const identity = "restart-identity-secret-e2e";
  let first: string;
  let server = await startServer(args);
  try {
    const client = await connect({ port: server.port, identity });
    first = client.virtualIp;
    await client.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
  server = await startServer(args);
  try {
    const client = await connect({ port: server.port, identity });
    assert.equal(client.virtualIp, first);
    await client.close();
  } finally {
    assert.equal(await server.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts flags: --help exits 0, unknown or bad flags exit 2 with a reason", async (t) => {
  const run = (args: string[]) => runDeno(["run", "-A", SERVER, ...args]);
  await t.step("--help prints usage", async () => {
    const { code, stdout } = await run(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /Usage: deno run -A server\.ts/);
    assert.match(stdout, /--vip-range/);
  });
  const bad: [string[], RegExp][] = [
    [["--bogus"], /bogus/],
    [["--port", "70000"], /--port/],
    [["--port", "abc"], /--port/],
    [["--vip-range", "10.0.0.1/8"], /--vip-range/],
    [["--log-level", "loud"], /--log-level/],
    [["extra"], /extra/],
  ];
  for (const [args, reason] of bad) {
    await t.step(`${args.join(" ")} exits 2`, async () => {
      const { code, stderr } = await run(args);
      assert.equal(code, 2);
      assert.match(stderr, reason);
    });
  }
});
