/**
 * What every command shares, as real subprocesses: --help, usage errors and
 * runtime errors as one line (whole lines), the global flags before or after
 * the command, and --log-format json.
 */

import assert from "node:assert/strict";
import {
  as,
  assertOneLineError,
  freePort,
  OFFLINE_VIP,
  readTcpToEnd,
  relay,
  runCli,
  spawnCli,
  type Spawned,
  stopCli,
} from "./_helpers.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { utf8 } from "../_helpers/bytes.ts";

Deno.test("cli: --help for every command exits 0; usage errors exit 2 and runtime errors 1, one line", async () => {
  const commands = ["whoami", "listen", "connect", "expose", "forward", "status", "ping"];
  const helps = await Promise.all([
    runCli(["--help"]),
    ...commands.map((name) => runCli([name, "--help"])),
  ]);
  assert.equal(helps[0].code, 0);
  for (const name of commands) assert.match(helps[0].stdout, new RegExp(`^  ${name} `, "m"));
  commands.forEach((name, i) => {
    const help = helps[i + 1];
    assert.equal(help.code, 0, `${name} --help: ${help.stderr}`);
    assert.ok(help.stdout.startsWith(`Usage: alphanet ${name} `), help.stdout);
    assert.match(help.stdout, /--identity-file PATH/);
    assert.match(help.stdout, /--log-format FORMAT/);
  });

  // A port nobody listens on: bound, then freed.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = probe.addr.port;
  probe.close();
  const [unknown, none, badTarget, badPort, badFlag, extra, badCount, unreachable] = await Promise
    .all([
      runCli(["frobnicate"]),
      runCli([]),
      runCli(["connect", "1.2.3:80"]),
      runCli(["status", "1.2.3.4:99999"]),
      runCli(["listen", "9000", "--bogus"]),
      runCli(["whoami", "extra"]),
      runCli(["ping", "1.2.3.4", "-c", "zero"]),
      runCli(["status", "1.2.3.4:80", "--server", `127.0.0.1:${deadPort}`]),
    ]);
  assertOneLineError(unknown, 2, 'alphanet: unknown command "frobnicate" (see --help)');
  assertOneLineError(none, 2, "alphanet: missing command (see --help)");
  assertOneLineError(
    badTarget,
    2,
    'alphanet: bad target "1.2.3:80": expected VIP:PORT like 83.12.4.200:80 (see connect --help)',
  );
  assertOneLineError(
    badPort,
    2,
    'alphanet: bad target port "99999": expected a port number in 1..65535 (see status --help)',
  );
  assertOneLineError(badFlag, 2, 'alphanet: unknown flag "--bogus" (see listen --help)');
  assertOneLineError(extra, 2, 'alphanet: unexpected argument "extra" (see whoami --help)');
  assertOneLineError(
    badCount,
    2,
    'alphanet: bad --count "zero": expected a positive integer (see ping --help)',
  );
  assertOneLineError(
    unreachable,
    1,
    `alphanet: cannot join relay at 127.0.0.1:${deadPort}: connection refused (os error 111)`,
  );
});

Deno.test("cli: global flags work before and after the command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const [flags] = [as(server, dir, "me")];
    const after = await runCli(["whoami", ...flags]);
    const before = await runCli([...flags, "whoami"]);
    const mixed = await runCli([
      `--server=127.0.0.1:${server.port}`,
      "whoami",
      "--identity-file",
      `${dir}/me.id`,
    ]);
    for (const result of [after, before, mixed]) assert.equal(result.code, 0, result.stderr);
    assert.match(after.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
    assert.equal(before.stdout, after.stdout);
    assert.equal(mixed.stdout, after.stdout);

    const [help, helpAfter, bogus, dangling] = await Promise.all([
      runCli(["--help", "status"]),
      runCli(["status", "--help"]),
      runCli(["--bogus", "whoami"]),
      runCli(["--server"]),
    ]);
    assert.equal(help.code, 0);
    assert.ok(help.stdout.startsWith("Usage: alphanet status "), help.stdout);
    assert.equal(helpAfter.stdout, help.stdout);
    assertOneLineError(
      bogus,
      2,
      'alphanet: unknown flag "--bogus" before the command (see --help)',
    );
    assertOneLineError(dangling, 2, "alphanet: missing value of --server (see --help)");
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a bad command line is one line in our words, never parseArgs' own text", async () => {
  const cases: [string[], string][] = [
    [["whoami", "--identity-file"], "missing value of --identity-file (see whoami --help)"],
    [["--identity-file"], "missing value of --identity-file (see --help)"],
    [["--identity-file", "--json", "whoami"], "missing value of --identity-file (see --help)"],
    [
      ["whoami", "--identity-file", "--json"],
      "missing value of --identity-file (see whoami --help)",
    ],
    [["whoami", "--json=yes"], "--json takes no value (see whoami --help)"],
    [["--help=yes"], "--help takes no value (see --help)"],
    [["listen", "0", "-q"], "missing value of -q (see listen --help)"],
    [["listen", "0", "-x"], 'unknown flag "-x" (see listen --help)'],
    [["connect"], "missing VIP:PORT (see connect --help)"],
    [["expose", "80"], "missing HOST:PORT (see expose --help)"],
    [
      ["whoami", "--log-format", "xml"],
      'bad --log-format "xml": expected text or json (see whoami --help)',
    ],
    [["--log-format"], "missing value of --log-format (see --help)"],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  cases.forEach(([args, line], i) => {
    assert.equal(results[i].code, 2, `${args.join(" ")}: ${results[i].stderr}`);
    assertOneLineError(results[i], 2, `alphanet: ${line}`);
  });
});

/** One stderr line as a JSON event, checked for the fields every event has. */
function parseEvent(line: string, command: string): Record<string, unknown> {
  const event = JSON.parse(line);
  assert.equal(typeof event.time, "string", line);
  assert.equal(new Date(event.time).toISOString(), event.time, line);
  assert.ok(["info", "warn", "error"].includes(event.level), line);
  assert.equal(typeof event.event, "string", line);
  assert.equal(event.command, command, line);
  assert.equal(typeof event.message, "string", line);
  return event;
}

Deno.test("cli: --log-format json writes stderr events as one JSON object a line; an error that ends a command stays plain", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const deadPort = freePort();
  const listener = spawnCli(["--log-format", "json", "listen", "0", ...as(server, dir, "l")]);
  const forwarder = spawnCli([
    "forward",
    "0",
    `${OFFLINE_VIP}:80`,
    "--log-format=json",
    ...as(server, dir, "f"),
  ]);
  const exposer = spawnCli([
    "--log-format",
    "json",
    "expose",
    "7",
    "127.0.0.1:9",
    "--server",
    `127.0.0.1:${deadPort}`,
    "--identity-file",
    `${dir}/e.id`,
  ]);
  const all: Spawned[] = [listener, forwarder, exposer];
  try {
    // listen: "listening", then "connection"; connect --progress: "transfer-done".
    const listening = parseEvent(await listener.err.expect("{", 15_000), "listen");
    assert.equal(listening.event, "listening");
    assert.equal(listening.level, "info");
    assert.match(String(listening.address), /^\d+\.\d+\.\d+\.\d+:\d+$/);
    assert.equal(listening.message, `listening on ${listening.address}`);
    const connector = spawnCli(
      [
        "connect",
        String(listening.address),
        "--progress",
        "--log-format",
        "json",
        ...as(server, dir, "c"),
      ],
      "piped",
    );
    all.push(connector);
    const writer = connector.child.stdin.getWriter();
    await writer.write(utf8("hi\n"));
    await writer.close();
    const connection = parseEvent(await listener.err.expect("{"), "listen");
    assert.equal(connection.event, "connection");
    assert.match(String(connection.from), /^\d+\.\d+\.\d+\.\d+:\d+$/);
    assert.equal((await withTimeout(connector.child.status, STEP_MS, "connect to end")).code, 0);
    await connector.err.rest();
    const events = connector.err.seen.trimEnd().split("\n").map((line) =>
      parseEvent(line, "connect")
    );
    const done = events.at(-1)!;
    assert.equal(done.event, "transfer-done", connector.err.seen);
    assert.equal(done.sentBytes, 3);
    assert.equal(done.receivedBytes, 0);

    // forward: a refused local connection is a "connect-failed" event.
    const port = Number(/:(\d+) -> /.exec(await forwarder.out.expect("forwarding ", 15_000))![1]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      assert.equal((await withTimeout(readTcpToEnd(conn), STEP_MS, "the close")).length, 0);
    } finally {
      conn.close();
    }
    const refused = parseEvent(await forwarder.err.expect("{"), "forward");
    assert.equal(refused.event, "connect-failed");
    assert.equal(refused.level, "warn");
    assert.equal(refused.target, `${OFFLINE_VIP}:80`);
    assert.equal(refused.error, `cannot connect to ${OFFLINE_VIP}:80: host is offline`);
    assert.match(String(refused.from), /^127\.0\.0\.1:\d+$/);
    assert.equal(refused.message, `forward: connection from ${refused.from}: ${refused.error}`);

    // expose before the relay: a "join-retry" event.
    const retry = parseEvent(await exposer.err.expect("{", 15_000), "expose");
    assert.equal(retry.event, "join-retry");
    assert.equal(retry.relay, `127.0.0.1:${deadPort}`);
    assert.equal(
      retry.error,
      `cannot join relay at 127.0.0.1:${deadPort}: connection refused (os error 111)`,
    );
  } finally {
    const codes = [];
    for (const proc of all) codes.push(await stopCli(proc));
    await server.stop();
    await Deno.remove(dir, { recursive: true });
    assert.deepEqual(codes, codes.map(() => 0));
  }
  // Nothing but JSON on stderr.
  for (
    const [proc, command] of [[listener, "listen"], [forwarder, "forward"], [
      exposer,
      "expose",
    ]] as const
  ) {
    for (const line of proc.err.seen.trimEnd().split("\n")) parseEvent(line, command);
  }
  const failed = await runCli([
    "--log-format",
    "json",
    "status",
    "1.2.3.4:80",
    "--server",
    `127.0.0.1:${deadPort}`,
  ]);
  assertOneLineError(
    failed,
    1,
    `alphanet: cannot join relay at 127.0.0.1:${deadPort}: connection refused (os error 111)`,
  );
});

Deno.test("cli: --relay-id (or $ALPHANET_RELAY_ID, the flag winning) pins the relay whoami --json shows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const flags = as(server, dir, "me");
    const first = await runCli(["whoami", "--json", ...flags]);
    assert.equal(first.code, 0, first.stderr);
    const { virtualIp, relayId } = JSON.parse(first.stdout);
    assert.match(relayId, /^[0-9a-f]{64}$/);
    const other = relayId === "0".repeat(64) ? "1".repeat(64) : "0".repeat(64);
    const [pinned, upper, wrong, fromEnv, flagWins, bad, help] = await Promise.all([
      runCli(["whoami", "--relay-id", relayId, ...flags]),
      runCli(["--relay-id", relayId.toUpperCase(), "whoami", ...flags]),
      runCli(["whoami", "--relay-id", other, ...flags]),
      runCli(["whoami", ...flags], { ALPHANET_RELAY_ID: other }),
      runCli(["whoami", "--relay-id", relayId, ...flags], { ALPHANET_RELAY_ID: other }),
      runCli(["whoami", "--relay-id", "abc", ...flags]),
      runCli(["whoami", "--help"]),
    ]);
    for (const result of [pinned, upper, flagWins]) {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${virtualIp}\n`);
    }
    const mismatch = `alphanet: cannot join relay at 127.0.0.1:${server.port}: ` +
      `its relay id is ${relayId}, not the pinned ${other}: ` +
      "another relay may be relaying its challenge; check --server / --relay-id";
    assertOneLineError(wrong, 1, mismatch);
    assertOneLineError(fromEnv, 1, mismatch);
    assertOneLineError(
      bad,
      2,
      'alphanet: bad --relay-id "abc": expected the relay\'s id, 64 hex digits ' +
        '("alphanet whoami --json" prints it) (see whoami --help)',
    );
    assert.match(help.stdout, /--relay-id HEX/);
    assert.match(help.stdout, /\$ALPHANET_RELAY_ID/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
