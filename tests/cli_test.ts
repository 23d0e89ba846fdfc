/**
 * The command line, `cli.ts`, always as a real subprocess, against the real
 * relay (`server.ts` as a subprocess): HTTP through expose/forward, netcat
 * with half-close, status and ping, whoami and the identity file, help and
 * usage errors.
 */

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { concatBytes, pseudoRandomBytes, sha256hex } from "./_helpers/bytes.ts";
import { type ServerProcess, startServer } from "./_helpers/server_process.ts";
import { readStreamAll } from "./_helpers/streams.ts";

const CLI: string = new URL("../cli.ts", import.meta.url).pathname;
const MiB = 1024 * 1024;
/** Time-out of a bulk transfer step. */
const BULK_MS = 30_000;

/** What a finished CLI run printed, and its exit code. */
interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cli.ts args` to the end with no stdin. */
async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const output = await withTimeout(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env,
    }).output(),
    BULK_MS,
    `cli.ts ${args.join(" ")}`,
  );
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
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
function assertOneLineError(result: CliResult, code: number, pattern: RegExp): void {
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
