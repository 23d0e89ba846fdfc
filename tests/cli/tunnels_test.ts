/**
 * The command line, `cli.ts`, always as a real subprocess, against the real
 * relay (`server.ts` as a subprocess): HTTP through expose/forward, netcat
 * with half-close, status and ping, whoami and the identity file, help and
 * usage errors; global flags before the command, netcat finishing by itself
 * and -k, expose/forward started before the relay, forward's refusals, --json.
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { formatDuration, sentText } from "../../cli/progress.ts";
import { concatBytes, pseudoRandomBytes, sha256hex, text } from "../_helpers/bytes.ts";
import { type DenoRun, runDeno } from "../_helpers/run_deno.ts";
import { type ServerProcess, startServer } from "../_helpers/server_process.ts";
import { readStreamAll } from "../_helpers/streams.ts";

const CLI: string = new URL("../../cli.ts", import.meta.url).pathname;
const MiB = 1024 * 1024;
/** Time-out of a bulk transfer step. */
const BULK_MS = 30_000;

/** What a finished CLI run printed, and its exit code. */
/** Runs `cli.ts args` to the end with no stdin. */
async function runCli(args: string[], env: Record<string, string> = {}): Promise<DenoRun> {
  return await withTimeout(
    runDeno(["run", "-A", CLI, ...args], { env }),
    BULK_MS,
    `cli.ts ${args.join(" ")}`,
  );
}

/** Reads a text stream line by line, waiting for a line with a given prefix. */
class Lines {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  /** Everything read so far, for failure messages. */
  seen = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line starting with `prefix` (earlier lines are skipped), within `ms`. */
  async expect(prefix: string, ms: number = STEP_MS): Promise<string> {
    const deadline = performance.now() + ms;
    // Each pass consumes a line or reads a chunk; the deadline bounds the reads.
    while (true) {
      const end = this.#buffer.indexOf("\n");
      if (end >= 0) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 1);
        if (line.startsWith(prefix)) return line;
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no line "${prefix}..." within ${ms} ms; saw ${this.seen}`);
      const { value, done } = await withTimeout(this.#reader.read(), left, `line "${prefix}..."`);
      if (done) throw new Error(`stream ended before a line "${prefix}..."; saw ${this.seen}`);
      this.#buffer += value;
      this.seen += value;
    }
  }

  /** Reads to the end; returns everything not yet returned as lines. */
  async rest(): Promise<string> {
    while (true) {
      const { value, done } = await this.#reader.read();
      if (done) return this.#buffer;
      this.#buffer += value;
      this.seen += value;
    }
  }
}

/** Collects a byte stream, with a way to wait until some amount has arrived. */
class ByteCollector {
  readonly #chunks: Uint8Array[] = [];
  #total = 0;
  #wake: (() => void) | null = null;
  #ended = false;
  readonly #done: Promise<Uint8Array>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#done = (async () => {
      try {
        for await (const chunk of stream) {
          this.#chunks.push(chunk);
          this.#total += chunk.length;
          this.#wake?.();
        }
      } finally {
        this.#ended = true;
        this.#wake?.();
      }
      return concatBytes(this.#chunks);
    })();
  }

  /** Resolves once `bytes` have arrived; rejects if the stream ends first. */
  async atLeast(bytes: number): Promise<void> {
    // Each pass waits for a chunk or the end: bounded by the chunks that arrive.
    while (this.#total < bytes) {
      if (this.#ended) throw new Error(`stream ended after ${this.#total} of ${bytes} bytes`);
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /** Every byte, once the stream has ended. */
  all(): Promise<Uint8Array> {
    return this.#done;
  }
}

/** A long-running CLI process (expose, forward) whose stdout is read as lines. */
class CliProcess {
  readonly child: Deno.ChildProcess;
  readonly stdout: Lines;
  readonly stderr: Promise<string>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.stdout = new Lines(this.child.stdout);
    this.stderr = new Response(this.child.stderr).text();
  }

  /** Waits for its ready line; fails with its stderr if it does not come. */
  async ready(prefix: string): Promise<string> {
    try {
      return await this.stdout.expect(prefix, 15_000);
    } catch (error) {
      this.child.kill("SIGKILL");
      await this.stop();
      throw new Error(`${(error as Error).message}; stderr: ${await this.stderr}`);
    }
  }

  /** Sends SIGTERM and returns the exit code once everything is drained. */
  async stop(): Promise<number> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    const status = await withTimeout(this.child.status, STEP_MS, "the CLI to exit on SIGTERM");
    await this.stdout.rest();
    await this.stderr;
    return status.code;
  }
}

/** Starts the real relay with an in-memory registry. */
function relay(): Promise<ServerProcess> {
  return startServer(["--port", "0", "--db", ":memory:", "--log-level", "warn"]);
}

/** The common flags for a fresh identity file in `dir`. */
function as(server: ServerProcess, dir: string, name: string): string[] {
  return ["--server", `127.0.0.1:${server.port}`, "--identity-file", `${dir}/${name}.id`];
}

/** Asserts a failed run printed exactly one line on stderr and nothing on stdout. */
function assertOneLineError(result: DenoRun, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, `exit code; stderr: ${result.stderr}`);
  assert.equal(result.stdout, "");
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, `one stderr line, got: ${result.stderr}`);
  assert.match(lines[0], pattern);
}

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

Deno.test("cli: listen/connect carry 20 MiB each way byte-exact, with half-close", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const fromConnect = `${dir}/from_connect.bin`;
  const fromListen = `${dir}/from_listen.bin`;
  await Deno.writeFile(fromConnect, pseudoRandomBytes(20 * MiB, 1));
  await Deno.writeFile(fromListen, pseudoRandomBytes(20 * MiB, 2));
  const spawn = (args: string[]): Deno.ChildProcess =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  const listener = spawn(["listen", "9000", ...as(server, dir, "listener")]);
  const listenerErr = new Lines(listener.stderr);
  const listenerOut = new ByteCollector(listener.stdout);
  try {
    const listening = await listenerErr.expect("listening on ", 15_000);
    const target = listening.slice("listening on ".length);
    assert.match(target, /^\d+\.\d+\.\d+\.\d+:9000$/);

    const connector = spawn(["connect", target, ...as(server, dir, "connector"), "--progress"]);
    const connectorOut = readStreamAll(connector.stdout);
    const connectorErr = new Response(connector.stderr).text();
    // The connect side's stdin ends first: the whole file, then end of stream (closeWrite).
    await (await Deno.open(fromConnect)).readable.pipeTo(connector.stdin);

    // The listen side gets all of it before it has sent a byte.
    await withTimeout(listenerOut.atLeast(20 * MiB), BULK_MS, "20 MiB at the listen side");
    // Only now does the listen side answer; the half-closed connect side still receives it.
    await (await Deno.open(fromListen)).readable.pipeTo(listener.stdin);
    const atConnector = await withTimeout(connectorOut, BULK_MS, "the connect side's stdout");
    assert.equal(atConnector.length, 20 * MiB);
    assert.equal(await sha256hex(atConnector), await sha256hex(await Deno.readFile(fromListen)));
    const atListener = await withTimeout(listenerOut.all(), BULK_MS, "the listen side's stdout");
    assert.equal(atListener.length, 20 * MiB);
    assert.equal(await sha256hex(atListener), await sha256hex(await Deno.readFile(fromConnect)));

    const connected = await withTimeout(connector.status, STEP_MS, "connect to exit");
    const progress = await connectorErr;
    assert.equal(connected.code, 0, progress);
    assert.match(
      progress,
      /^done in [\d.]+ s: sent 20\.0 MiB \([\d.]+ MiB\/s\), received 20\.0 MiB/m,
    );
    const listened = await withTimeout(listener.status, STEP_MS, "listen to exit");
    assert.equal(listened.code, 0, listenerErr.seen);
    assert.match(await listenerErr.rest(), /connection from \d+\.\d+\.\d+\.\d+:\d+/);
  } finally {
    try {
      listener.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await listener.status;
    await listenerOut.all().catch(() => {});
    await listenerErr.rest().catch(() => "");
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

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
    const offline = "203.0.113.9"; // TEST-NET-3: never in the relay's pool.
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
      assert.match(out[0], new RegExp(`^no reply from ${target}: seq=1: `));
      assert.equal(out[2], "2 sent, 0 received, 100% loss");
    }
  } finally {
    await online.close();
    await gone.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: whoami keeps its address with the same identity file, created mode 0600", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const first = await runCli(["whoami", ...as(server, dir, "me")]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
    const info = await Deno.stat(`${dir}/me.id`);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(`${dir}/me.id`), /^[0-9a-f]{64}\n$/);
    // The same file again, the relay given through the environment this time.
    const second = await runCli(["whoami", "--identity-file", `${dir}/me.id`], {
      ALPHANET_SERVER: `127.0.0.1:${server.port}`,
    });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    const other = await runCli(["whoami", ...as(server, dir, "other")]);
    assert.equal(other.code, 0, other.stderr);
    assert.notEqual(other.stdout, first.stdout);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

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
  assertOneLineError(unknown, 2, /^alphanet: unknown command "frobnicate"/);
  assertOneLineError(none, 2, /^alphanet: missing command/);
  assertOneLineError(badTarget, 2, /^alphanet: bad target "1\.2\.3:80": expected VIP:PORT/);
  assertOneLineError(badPort, 2, /^alphanet: bad target port "99999"/);
  assertOneLineError(badFlag, 2, /^alphanet: listen: Unknown option '--bogus'$/);
  assertOneLineError(extra, 2, /^alphanet: whoami: expected no arguments/);
  assertOneLineError(badCount, 2, /^alphanet: bad --count "zero"/);
  assertOneLineError(unreachable, 1, /^alphanet: cannot join relay at 127\.0\.0\.1:\d+: /);
});

/** A CLI process whose stdout and stderr are both read as lines. */
interface Spawned {
  readonly child: Deno.ChildProcess;
  readonly out: Lines;
  readonly err: Lines;
}

/** Starts `cli.ts args` with stdin `stdin`; read its output with `out` and `err`. */
function spawnCli(args: string[], stdin: "null" | "piped" = "null"): Spawned {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { child, out: new Lines(child.stdout), err: new Lines(child.stderr) };
}

/** A CLI process whose stdout is collected as bytes and stderr read as lines. */
interface SpawnedNetcat {
  readonly child: Deno.ChildProcess;
  readonly bytes: ByteCollector;
  readonly err: Lines;
}

/** Starts `cli.ts args` (listen, connect) with stdin `stdin`. */
function spawnNetcat(args: string[], stdin: "null" | "piped"): SpawnedNetcat {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { child, bytes: new ByteCollector(child.stdout), err: new Lines(child.stderr) };
}

/** Stops `spawned` (SIGTERM unless it exited) and drains it; resolves with its exit code. */
async function stopCli(spawned: Spawned): Promise<number> {
  try {
    spawned.child.kill("SIGTERM");
  } catch {
    // Already exited.
  }
  const status = await withTimeout(spawned.child.status, STEP_MS, "the CLI to exit");
  await Promise.all([spawned.out.rest(), spawned.err.rest()]);
  return status.code;
}

/** A TCP port that was free a moment ago: bound, then released. */
function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}

/** Lines of a stderr text, without blank ones. */
function linesOf(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

/** Quotes `text` for sh. */
function shQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Reads everything from a TCP connection until the peer closes; rejects on a reset. */
async function readTcpToEnd(conn: Deno.TcpConn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  // Each pass reads a chunk; the peer's close ends it (callers bound it with withTimeout).
  while (true) {
    const count = await conn.read(buffer);
    if (count === null) return concatBytes(chunks);
    chunks.push(buffer.slice(0, count));
  }
}

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
    assertOneLineError(bogus, 2, /^alphanet: unknown flag "--bogus" before the command/);
    assertOneLineError(dangling, 2, /^alphanet: missing value of --server$/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: an identity file in missing folders creates them 0700, the file 0600", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const path = `${dir}/home/.alphanet/web`;
    const first = await runCli([
      "whoami",
      "--server",
      `127.0.0.1:${server.port}`,
      "--identity-file",
      path,
    ]);
    assert.equal(first.code, 0, first.stderr);
    for (const folder of [`${dir}/home`, `${dir}/home/.alphanet`]) {
      const info = await Deno.stat(folder);
      assert.ok(info.isDirectory);
      assert.equal(info.mode! & 0o777, 0o700, folder);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    // "~/" is the home folder even where the shell did not expand it (--identity-file=~/...).
    const again = await runCli(
      ["whoami", "--server", `127.0.0.1:${server.port}`, "--identity-file=~/.alphanet/web"],
      { HOME: `${dir}/home` },
    );
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, first.stdout);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "cli: the tour's listen > file (a terminal as stdin) and connect < file both finish by themselves",
  async fn(): Promise<void> {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
    const server = await relay();
    const sent = pseudoRandomBytes(3 * MiB + 123, 11);
    await Deno.writeFile(`${dir}/in.bin`, sent);
    const cli = (args: string[]): string =>
      [Deno.execPath(), "run", "-A", CLI, ...args].map(shQuote).join(" ");
    // `script` gives the listener a terminal as stdin, as in the tour; nothing is typed.
    const listener = new Deno.Command("script", {
      args: [
        "-qec",
        `${cli(["listen", "0", ...as(server, dir, "a")])} > ${shQuote(`${dir}/out.bin`)}`,
        "/dev/null",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const terminal = new Lines(listener.stdout);
    try {
      const listening = await terminal.expect("listening on ", 15_000);
      const target = listening.slice("listening on ".length).trim();
      const connector = await withTimeout(
        new Deno.Command("sh", {
          args: [
            "-c",
            `${cli(["connect", target, ...as(server, dir, "b")])} < ${shQuote(`${dir}/in.bin`)}`,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output(),
        BULK_MS,
        "connect < in.bin to finish",
      );
      assert.equal(connector.code, 0, new TextDecoder().decode(connector.stderr));
      assert.equal(connector.stdout.length, 0);
      const listened = await withTimeout(listener.status, BULK_MS, "listen > out.bin to finish");
      assert.equal(listened.code, 0, terminal.seen);
      const received = await Deno.readFile(`${dir}/out.bin`);
      assert.equal(received.length, sent.length);
      assert.equal(await sha256hex(received), await sha256hex(sent));
    } finally {
      try {
        listener.kill("SIGKILL");
      } catch {
        // Finished.
      }
      await listener.status;
      await listener.stdin.close().catch(() => {});
      await terminal.rest().catch(() => "");
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli: listen -k serves two connections in turn, then exits 0 on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const listener = spawnNetcat(["listen", "0", "-k", ...as(server, dir, "listener")], "null");
  const received = listener.bytes;
  try {
    const target = (await listener.err.expect("listening on ", 15_000)).slice(
      "listening on ".length,
    );
    const messages = ["first connection\n", "second connection\n"];
    for (const [i, message] of messages.entries()) {
      const connector = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, "connect", target, ...as(server, dir, `c${i}`)],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = connector.stdin.getWriter();
      await writer.write(new TextEncoder().encode(message));
      await writer.close();
      const done = await withTimeout(connector.output(), BULK_MS, `connect ${i} to finish`);
      assert.equal(done.code, 0, new TextDecoder().decode(done.stderr));
      await listener.err.expect("connection from ");
    }
    const expected = new TextEncoder().encode(messages.join(""));
    await withTimeout(received.atLeast(expected.length), STEP_MS, "both messages");
    listener.child.kill("SIGTERM");
    const status = await withTimeout(listener.child.status, STEP_MS, "listen -k to exit");
    assert.equal(status.code, 0, listener.err.seen);
    assert.equal(text(await received.all()), messages.join(""));
  } finally {
    try {
      listener.child.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await listener.child.status;
    await received.all().catch(() => {});
    await listener.err.rest().catch(() => "");
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --progress of a transfer whose peer dies says 'failed after', never 'done'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const listener = spawnNetcat(["listen", "0", ...as(server, dir, "listener")], "piped");
  const atListener = listener.bytes;
  try {
    const target = (await listener.err.expect("listening on ", 15_000)).slice(
      "listening on ".length,
    );
    const connector = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "connect", target, "--progress", ...as(server, dir, "sender")],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const connectorErr = new Response(connector.stderr).text();
    const connectorOut = readStreamAll(connector.stdout);
    const writer = connector.stdin.getWriter();
    await writer.write(pseudoRandomBytes(MiB, 5));
    await withTimeout(atListener.atLeast(1), STEP_MS, "the first bytes at the listener");
    listener.child.kill("SIGKILL");
    await listener.child.status;
    // More input after the peer is gone: the sending side must fail now if it did not already.
    await writer.write(pseudoRandomBytes(MiB, 6)).catch(() => {});
    await writer.close().catch(() => {});
    const status = await withTimeout(connector.status, BULK_MS, "connect to fail");
    const stderr = await connectorErr;
    await connectorOut;
    assert.equal(status.code, 1, stderr);
    assert.match(stderr, /^failed after [\d.]+ s: sent [\d.]+ MiB/m);
    assert.doesNotMatch(stderr, /^done/m);
    assert.match(stderr, /^alphanet: cannot (send to|receive from) \d+\.\d+\.\d+\.\d+:\d+: /m);
  } finally {
    try {
      listener.child.kill("SIGKILL");
    } catch {
      // Killed above.
    }
    await listener.child.status;
    await listener.child.stdin.close().catch(() => {});
    await atListener.all().catch(() => {});
    await listener.err.rest().catch(() => "");
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --progress shows percent and ETA when the size is known", () => {
  assert.equal(
    sentText(5 * MiB, 20 * MiB, "10.0 MiB/s", 0.5),
    "sent 5.0 of 20.0 MiB (25%, 10.0 MiB/s, ETA 2 s)",
  );
  assert.equal(sentText(MiB, null, "2.0 MiB/s", 1), "sent 1.0 MiB (2.0 MiB/s)");
  assert.equal(
    sentText(20 * MiB, 20 * MiB, "0.0 MiB/s", 9),
    "sent 20.0 of 20.0 MiB (100%, 0.0 MiB/s, ETA 0 s)",
  );
  assert.equal(formatDuration(185), "3 min 05 s");
  assert.equal(formatDuration(7_620), "2 h 07 min");
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
    assert.match(
      retrying,
      new RegExp(`^expose: cannot join relay at 127\\.0\\.0\\.1:${port}: .+; retrying`),
    );
    relayProcess = await startServer(relayArgs);
    // The retry goes on in the background: the next attempt finds the relay.
    const vip = /^exposing (\S+):7 /.exec(await exposer.out.expect("exposing ", 15_000))![1];
    assert.match(await exposer.err.expect("expose: joined relay at "), /^expose: joined relay at /);

    await relayProcess.stop();
    relayProcess = null;
    forwarder.push(
      spawnCli(["forward", "0", `${vip}:7`, ...server, "--identity-file", `${dir}/fwd.id`]),
    );
    await forwarder[0].err.expect("forward: cannot join relay at ", 15_000);
    relayProcess = await startServer(relayArgs);
    const local = Number(
      /:(\d+) -> /.exec(await forwarder[0].out.expect("forwarding ", 15_000))![1],
    );
    // The exposer reconnects to the new relay too (same identity, same address).
    await exposer.err.expect("expose: reconnected to the relay", 15_000);
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
  assertOneLineError(exposed, 1, /^alphanet: cannot join relay at 127\.0\.0\.1:\d+: /);
  assertOneLineError(forwarded, 1, /^alphanet: cannot join relay at 127\.0\.0\.1:\d+: /);
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
    const cases: [string, RegExp][] = [
      ["203.0.113.9:80", /cannot connect to 203\.0\.113\.9:80: host is offline$/],
      [`${target.virtualIp}:81`, /: nothing listens there$/],
      [`${exposedVip}:8`, /: connection denied$/],
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
      const line = await forwarder.err.expect("forward: ");
      assert.match(line, /^forward: connection from 127\.0\.0\.1:\d+: cannot connect to /);
      assert.match(line, cause);
    }
    assert.match(
      await exposer.err.expect("expose: connection from "),
      new RegExp(`cannot connect to 127\\.0\\.0\\.1:${deadService}: .*; denied$`),
    );

    // The relay goes down: requests are refused at once, not after the 15 s request time-out.
    const forwarder = forwarders[0];
    const port = Number(/:(\d+) -> /.exec(forwarder.out.seen)![1]);
    await server.stop();
    server = null;
    await forwarder.err.expect("forward: lost the relay", 15_000);
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
    assert.match(down, /: cannot connect to 203\.0\.113\.9:80: relay down/);
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
