/**
 * `status` and `ping`, as real subprocesses against the real relay: online,
 * offline and closed targets with exit codes, --json, and their failure
 * lines (whole lines: offline, relay down, rate-limited).
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import {
  as,
  assertOneLineError,
  freePort,
  OFFLINE_VIP,
  rateLimitedRelay,
  relay,
  runCli,
} from "./_helpers.ts";

Deno.test("cli: status and ping of online, offline and closed targets, with exit codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const online = await connect({ port: server.port, identity: "cli-test-online-target-secret" });
  const gone = await connect({ port: server.port, identity: "cli-test-closed-target-secret" });
  try {
    using _listener = online.listen({ port: 80 });
    gone.listen({ port: 80 });
    const closedVip = gone.virtualIp;
    await gone.close();
    const vip = online.virtualIp;
    const offline = OFFLINE_VIP;
    const fast = ["-i", "0.05", "-W", "2"];
    const [listening, notListening, off, closed, pingOk, pingOff, pingClosed] = await Promise.all([
      runCli(["status", `${vip}:80`, ...as(server, dir, "s1")]),
      runCli(["status", `${vip}:81`, ...as(server, dir, "s2")]),
      runCli(["status", `${offline}:80`, ...as(server, dir, "s3")]),
      runCli(["status", `${closedVip}:80`, ...as(server, dir, "s4")]),
      runCli(["ping", vip, "-c", "3", ...fast, ...as(server, dir, "p1")]),
      runCli(["ping", offline, "-c", "2", ...fast, ...as(server, dir, "p2")]),
      runCli(["ping", closedVip, "-c", "2", ...fast, ...as(server, dir, "p3")]),
    ]);
    assert.deepEqual(
      [listening, notListening, off, closed].map((r) => [r.code, r.stdout]),
      [
        [0, `${vip}:80 online, listening\n`],
        [1, `${vip}:81 online, not listening\n`],
        [1, `${offline}:80 offline\n`],
        [1, `${closedVip}:80 offline\n`],
      ],
    );

    assert.equal(pingOk.code, 0, pingOk.stderr);
    const lines = pingOk.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 4, pingOk.stdout);
    for (let seq = 1; seq <= 3; seq++) {
      assert.match(
        lines[seq - 1],
        new RegExp(`^reply from ${vip}: seq=${seq} time=\\d+\\.\\d{3} ms$`),
      );
    }
    assert.match(
      lines[3],
      /^3 sent, 3 received, 0% loss, min\/avg\/max = \d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3} ms$/,
    );
    for (const [result, target] of [[pingOff, offline], [pingClosed, closedVip]] as const) {
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const out = result.stdout.trimEnd().split("\n");
      assert.equal(out.length, 3, result.stdout);
      assert.equal(out[0], `no reply from ${target}: seq=1: host is offline`);
      assert.equal(out[1], `no reply from ${target}: seq=2: host is offline`);
      assert.equal(out[2], "2 sent, 0 received, 100% loss");
    }
  } finally {
    await online.close();
    await gone.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: whoami, status and ping --json print one JSON object", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const online = await connect({ port: server.port, identity: "cli-test-json-target-secret" });
  try {
    using _listener = online.listen({ port: 80 });
    const vip = online.virtualIp;
    const [me, listening, offline, pinged] = await Promise.all([
      runCli(["whoami", "--json", ...as(server, dir, "me")]),
      runCli(["status", `${vip}:80`, "--json", ...as(server, dir, "s")]),
      runCli(["status", "203.0.113.9:80", "--json", ...as(server, dir, "o")]),
      runCli(["ping", vip, "-c", "2", "-i", "0.05", "--json", ...as(server, dir, "p")]),
    ]);
    assert.equal(me.code, 0, me.stderr);
    const whoami = JSON.parse(me.stdout);
    assert.match(whoami.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(whoami.relay, `127.0.0.1:${server.port}`);
    assert.equal(listening.code, 0, listening.stderr);
    assert.deepEqual(JSON.parse(listening.stdout), {
      target: `${vip}:80`,
      online: true,
      listening: true,
    });
    assert.equal(offline.code, 1);
    assert.deepEqual(JSON.parse(offline.stdout), {
      target: "203.0.113.9:80",
      online: false,
      listening: false,
    });
    assert.equal(pinged.code, 0, pinged.stderr);
    assert.equal(pinged.stdout.trimEnd().split("\n").length, 1, pinged.stdout);
    const summary = JSON.parse(pinged.stdout);
    assert.equal(summary.target, vip);
    assert.equal(summary.sent, 2);
    assert.equal(summary.received, 2);
    assert.equal(summary.lossPercent, 0);
    assert.equal(summary.timesMs.length, 2);
    assert.ok(summary.minMs <= summary.avgMs && summary.avgMs <= summary.maxMs);
  } finally {
    await online.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: status and ping failure lines name the action once (relay down, rate-limited)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  // One request a second: ping's second request within 10 ms is refused by the relay itself.
  const strict = await rateLimitedRelay();
  const target = await connect({ port: strict.port, identity: "cli-test-ping-limited-secret" });
  try {
    const vip = target.virtualIp;
    const deadPort = freePort();
    const dead = ["--server", `127.0.0.1:${deadPort}`];
    const [statusDown, pingDown, limited] = await Promise.all([
      runCli(["status", `${vip}:80`, ...dead]),
      runCli(["ping", vip, "-c", "1", ...dead]),
      runCli(["ping", vip, "-c", "2", "-i", "0.01", ...as(strict, dir, "p")]),
    ]);
    const down =
      `alphanet: cannot join relay at 127.0.0.1:${deadPort}: connection refused (os error 111)`;
    assertOneLineError(statusDown, 1, down);
    assertOneLineError(pingDown, 1, down);
    // A refusal by the relay is no reply, not a refused connection: ping goes on.
    assert.equal(limited.code, 0, limited.stderr);
    const lines = limited.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 3, limited.stdout);
    assert.match(lines[0], new RegExp(`^reply from ${vip}: seq=1 time=\\d+\\.\\d{3} ms$`));
    assert.equal(
      lines[1],
      `no reply from ${vip}: seq=2: the relay refused the request: RateLimited`,
    );
    assert.match(lines[2], /^2 sent, 1 received, 50% loss, /);
  } finally {
    await target.close();
    await strict.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
