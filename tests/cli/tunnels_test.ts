/**
 * `expose` and `forward`, as real subprocesses against the real relay: HTTP
 * and half-close through both, starting before the relay, --fail-fast, and
 * the one line each refused connection gets (whole lines: offline, nothing
 * listening, denied, relay down).
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { concatBytes, pseudoRandomBytes, sha256hex, text } from "../_helpers/bytes.ts";
import { type ServerProcess, startServer } from "../_helpers/server_process.ts";
import { readStreamAll } from "../_helpers/streams.ts";
import {
  as,
  assertOneLineError,
  BULK_MS,
  CliProcess,
  freePort,
  linesOf,
  literal,
  MiB,
  OFFLINE_VIP,
  readTcpToEnd,
  relay,
  runCli,
  spawnCli,
  type Spawned,
  stopCli,
} from "./_helpers.ts";

Deno.test("cli: HTTP through expose and forward, 50 MiB download and 20 parallel echoes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const body = pseudoRandomBytes(50 * MiB, 7);
  const bodyHash = await sha256hex(body);
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) =>
      request.method === "POST"
        ? new Response(await request.arrayBuffer())
        : new Response(body.slice()),
  );
  const exposer = new CliProcess([
    "expose",
    "8080",
    `127.0.0.1:${http.addr.port}`,
    ...as(server, dir, "exposer"),
  ]);
  const forwarder: CliProcess[] = [];
  const client = Deno.createHttpClient({});
  try {
    const exposing = await exposer.ready("exposing ");
    const match = /^exposing (\d+\.\d+\.\d+\.\d+):8080 -> 127\.0\.0\.1:\d+$/.exec(exposing);
    assert.ok(match, exposing);
    const vip = match[1];
    forwarder.push(
      new CliProcess(["forward", "0", `${vip}:8080`, ...as(server, dir, "forwarder")]),
    );
    const forwarding = await forwarder[0].ready("forwarding ");
    const port = /^forwarding 127\.0\.0\.1:(\d+) -> (\S+)$/.exec(forwarding);
    assert.ok(port, forwarding);
    assert.equal(port[2], `${vip}:8080`);
    const base = `http://127.0.0.1:${port[1]}`;

    const response = await withTimeout(fetch(`${base}/big`, { client }), BULK_MS, "GET headers");
    assert.equal(response.status, 200);
    const got = new Uint8Array(await withTimeout(response.arrayBuffer(), BULK_MS, "GET body"));
    assert.equal(got.length, body.length);
    assert.equal(await sha256hex(got), bodyHash);

    const echoes = Array.from({ length: 20 }, async (_, i) => {
      const sent = pseudoRandomBytes(64 * 1024, 100 + i);
      const answer = await fetch(`${base}/echo/${i}`, {
        client,
        method: "POST",
        body: new Uint8Array(sent),
      });
      assert.equal(answer.status, 200);
      const echoed = new Uint8Array(await answer.arrayBuffer());
      assert.equal(echoed.length, sent.length, `echo ${i} length`);
      assert.equal(await sha256hex(echoed), await sha256hex(sent), `echo ${i} bytes`);
    });
    await withTimeout(Promise.all(echoes), BULK_MS, "20 parallel echoes");
  } finally {
    client.close();
    for (const proc of forwarder) assert.equal(await proc.stop(), 0, await proc.stderr);
    assert.equal(await exposer.stop(), 0, await exposer.stderr);
    await withTimeout(http.shutdown(), STEP_MS, "the HTTP server to shut down");
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: expose and forward pass half-close on, both ways", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  // A service that answers only after the client's end of stream: the SHA-256 of all it read.
  const service = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async (): Promise<void> => {
    const conn = await service.accept();
    try {
      const chunks: Uint8Array[] = [];
      const buffer = new Uint8Array(64 * 1024);
      for (let reads = 0; reads <= 2 * MiB; reads++) {
        const count = await conn.read(buffer);
        if (count === null) break;
        chunks.push(buffer.slice(0, count));
      }
      const reply = new TextEncoder().encode(await sha256hex(concatBytes(chunks)));
      for (let written = 0; written < reply.length;) {
        written += await conn.write(reply.subarray(written));
      }
      await conn.closeWrite();
      // Then the tunnel must close its end too.
      assert.equal(await conn.read(buffer), null);
    } finally {
      conn.close();
    }
  })();
  const exposer = new CliProcess([
    "expose",
    "7000",
    `127.0.0.1:${service.addr.port}`,
    ...as(server, dir, "exposer"),
  ]);
  const forwarder: CliProcess[] = [];
  try {
    const vip = /^exposing (\S+):7000 /.exec(await exposer.ready("exposing "))![1];
    forwarder.push(new CliProcess(["forward", "0", `${vip}:7000`, ...as(server, dir, "fwd")]));
    const port = Number(/:(\d+) -> /.exec(await forwarder[0].ready("forwarding "))![1]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const sent = pseudoRandomBytes(MiB, 3);
      for (let written = 0; written < sent.length;) {
        written += await conn.write(sent.subarray(written));
      }
      await conn.closeWrite();
      const reply = await withTimeout(readStreamAll(conn.readable), STEP_MS, "the service's reply");
      assert.equal(new TextDecoder().decode(reply), await sha256hex(sent));
    } catch (error) {
      conn.close();
      throw error;
    }
    await withTimeout(serving, STEP_MS, "the service to see the tunnel close");
  } finally {
    service.close();
    await serving.catch(() => {});
    for (const proc of forwarder) assert.equal(await proc.stop(), 0, await proc.stderr);
    assert.equal(await exposer.stop(), 0, await exposer.stderr);
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: expose and forward started before the relay retry, then work once it starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const port = freePort();
  const server = ["--server", `127.0.0.1:${port}`];
  // A registry file, so that the restarted relay gives the exposer its address back.
  const relayArgs = ["--port", String(port), "--db", `${dir}/relay.db`, "--log-level", "warn"];
  // An echo service behind expose.
  const service = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async (): Promise<void> => {
    for await (const conn of service) {
      void conn.readable.pipeTo(conn.writable).catch(() => {});
    }
  })();
  const exposer = spawnCli([
    ...server,
    "expose",
    "7",
    `127.0.0.1:${service.addr.port}`,
    "--identity-file",
    `${dir}/exposer.id`,
  ]);
  let relayProcess: ServerProcess | null = null;
  const forwarder: Spawned[] = [];
  try {
    const retrying = await exposer.err.expect("expose: cannot join relay at ", 15_000);
    assert.equal(
      retrying,
      `expose: cannot join relay at 127.0.0.1:${port}: connection refused (os error 111); ` +
        "retrying (--fail-fast to exit instead)",
    );
    relayProcess = await startServer(relayArgs);
    // The retry goes on in the background: the next attempt finds the relay.
    const vip = /^exposing (\S+):7 /.exec(await exposer.out.expect("exposing ", 15_000))![1];
    assert.equal(
      await exposer.err.expect("expose: joined relay at "),
      `expose: joined relay at 127.0.0.1:${port}`,
    );

    await relayProcess.stop();
    relayProcess = null;
    forwarder.push(
      spawnCli(["forward", "0", `${vip}:7`, ...server, "--identity-file", `${dir}/fwd.id`]),
    );
    assert.equal(
      await forwarder[0].err.expect("forward: cannot join relay at ", 15_000),
      `forward: cannot join relay at 127.0.0.1:${port}: connection refused (os error 111); ` +
        "retrying (--fail-fast to exit instead)",
    );
    relayProcess = await startServer(relayArgs);
    const local = Number(
      /:(\d+) -> /.exec(await forwarder[0].out.expect("forwarding ", 15_000))![1],
    );
    // The exposer reconnects to the new relay too (same identity, same address).
    assert.equal(
      await exposer.err.expect("expose: reconnected to the relay", 15_000),
      "expose: reconnected to the relay",
    );
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: local });
    try {
      await conn.write(new TextEncoder().encode("echo through the relay"));
      await conn.closeWrite();
      const echoed = await withTimeout(readTcpToEnd(conn), STEP_MS, "the echo");
      assert.equal(text(echoed), "echo through the relay");
    } finally {
      conn.close();
    }
  } finally {
    for (const proc of forwarder) assert.equal(await stopCli(proc), 0, proc.err.seen);
    assert.equal(await stopCli(exposer), 0, exposer.err.seen);
    await relayProcess?.stop();
    service.close();
    await serving.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: expose and forward with --fail-fast exit at once while the relay is down", async () => {
  const port = freePort();
  const [exposed, forwarded] = await Promise.all([
    runCli(["expose", "7", "127.0.0.1:9", "--fail-fast", "--server", `127.0.0.1:${port}`]),
    runCli(["forward", "0", "1.2.3.4:7", "--fail-fast", "--server", `127.0.0.1:${port}`]),
  ]);
  const down =
    `alphanet: cannot join relay at 127.0.0.1:${port}: connection refused (os error 111)`;
  assertOneLineError(exposed, 1, down);
  assertOneLineError(forwarded, 1, down);
});

Deno.test("cli: forward closes a local connection cleanly with one line naming why (offline, nothing listens, denied, relay down)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  let server: ServerProcess | null = await relay();
  const serverFlags = ["--server", `127.0.0.1:${server.port}`];
  const target = await connect({ port: server.port, identity: "cli-test-forward-target-secret" });
  // expose in front of a local service that is not running.
  const deadService = freePort();
  const exposer = spawnCli([
    "expose",
    "8",
    `127.0.0.1:${deadService}`,
    ...serverFlags,
    "--identity-file",
    `${dir}/exposer.id`,
  ]);
  const forwarders: Spawned[] = [];
  try {
    const exposedVip = /^exposing (\S+):8 /.exec(await exposer.out.expect("exposing ", 15_000))![1];
    const cases: [string, string][] = [
      [`${OFFLINE_VIP}:80`, "host is offline"],
      [`${target.virtualIp}:81`, "nothing listens there"],
      [`${exposedVip}:8`, "connection denied"],
    ];
    for (const [i, [where]] of cases.entries()) {
      forwarders.push(
        spawnCli(["forward", "0", where, ...serverFlags, "--identity-file", `${dir}/f${i}.id`]),
      );
    }
    for (const [i, [where, cause]] of cases.entries()) {
      const forwarder = forwarders[i];
      const port = Number(/:(\d+) -> /.exec(await forwarder.out.expect("forwarding ", 15_000))![1]);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
        // A clean close: end of stream, not a reset.
        const got = await withTimeout(readTcpToEnd(conn), STEP_MS, `the close of ${where}`);
        assert.equal(got.length, 0);
      } finally {
        conn.close();
      }
      // The whole line: the action named once, the cause last.
      assert.match(
        await forwarder.err.expect("forward: "),
        new RegExp(
          `^forward: connection from 127\\.0\\.0\\.1:\\d+: ` +
            `${literal(`cannot connect to ${where}: ${cause}`)}$`,
        ),
      );
    }
    assert.match(
      await exposer.err.expect("expose: connection from "),
      new RegExp(
        // From the third forwarder's virtual IP.
        `^expose: connection from \\d+\\.\\d+\\.\\d+\\.\\d+:\\d+: ` +
          `${literal(`cannot connect to 127.0.0.1:${deadService}: connection refused`)} ` +
          `\\(os error 111\\); denied$`,
      ),
    );

    // The relay goes down: requests are refused at once, not after the 15 s request time-out.
    const forwarder = forwarders[0];
    const port = Number(/:(\d+) -> /.exec(forwarder.out.seen)![1]);
    await server.stop();
    server = null;
    assert.equal(
      await forwarder.err.expect("forward: lost the relay", 15_000),
      "forward: lost the relay (the relay said Shutdown), reconnecting",
    );
    const started = performance.now();
    for (let i = 0; i < 3; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        const got = await withTimeout(readTcpToEnd(conn), STEP_MS, "the refusal while down");
        assert.equal(got.length, 0);
      } finally {
        conn.close();
      }
    }
    assert.ok(performance.now() - started < STEP_MS);
    const down = await forwarder.err.expect("forward: connection from ");
    assert.match(
      down,
      new RegExp(
        `^forward: connection from 127\\.0\\.0\\.1:\\d+: ` +
          literal(
            `cannot connect to ${OFFLINE_VIP}:80: relay down ` +
              "(local connections are closed at once until it is back)",
          ) + "$",
      ),
    );
  } finally {
    await target.close();
    const codes = [];
    for (const proc of forwarders) codes.push(await stopCli(proc));
    codes.push(await stopCli(exposer));
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
    assert.deepEqual(codes, codes.map(() => 0));
  }
  // One line per outage: the three refusals while down printed one line, not three.
  assert.equal(
    linesOf(forwarders[0].err.seen).filter((line) => line.includes("relay down")).length,
    1,
    forwarders[0].err.seen,
  );
});
