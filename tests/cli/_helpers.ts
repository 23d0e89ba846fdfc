/**
 * Running `cli.ts` as a real subprocess against the real relay (`server.ts`
 * as a subprocess), for the tests of tests/cli/.
 */

import assert from "node:assert/strict";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { ByteCollector } from "../_helpers/byte_collector.ts";
import { concatBytes } from "../_helpers/bytes.ts";
import { Lines } from "../_helpers/line_reader.ts";
import { type DenoRun, runDeno } from "../_helpers/run_deno.ts";
import { type ServerProcess, startServer } from "../_helpers/server_process.ts";

export { ByteCollector, Lines };

/** The command line's entrypoint. */
export const CLI: string = new URL("../../cli.ts", import.meta.url).pathname;
export const MiB = 1024 * 1024;
/** Time-out of a bulk transfer step. */
export const BULK_MS = 30_000;
/** TEST-NET-3: never in the relay's pool, so never online. */
export const OFFLINE_VIP = "203.0.113.9";

/**
 * The config folder every CLI under test sees, so a command run without
 * --identity-file writes its default identity here, never into the real home.
 */
const CONFIG_HOME = Deno.makeTempDirSync({ prefix: "alphanet_cli_config_" });
globalThis.addEventListener("unload", () => Deno.removeSync(CONFIG_HOME, { recursive: true }));

/** The environment of a CLI under test: `env` over the isolated config folder. */
function cliEnv(env: Record<string, string> = {}): Record<string, string> {
  return { XDG_CONFIG_HOME: CONFIG_HOME, ...env };
}

/** Runs `cli.ts args` to the end with no stdin. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<DenoRun> {
  return await withTimeout(
    runDeno(["run", "-A", CLI, ...args], { env: cliEnv(env) }),
    BULK_MS,
    `cli.ts ${args.join(" ")}`,
  );
}

/** A long-running CLI process (expose, forward) whose stdout is read as lines. */
export class CliProcess {
  readonly child: Deno.ChildProcess;
  readonly stdout: Lines;
  readonly stderr: Promise<string>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: cliEnv(),
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
export function relay(...flags: string[]): Promise<ServerProcess> {
  return startServer(["--port", "0", "--db", ":memory:", "--log-level", "warn", ...flags]);
}

/** A relay that admits one request a second, so a client's second request is refused at once. */
export function rateLimitedRelay(): Promise<ServerProcess> {
  return relay("--request-rate", "1", "--request-burst", "1");
}

/** The common flags for a fresh identity file in `dir`. */
export function as(server: ServerProcess, dir: string, name: string): string[] {
  return ["--server", `127.0.0.1:${server.port}`, "--identity-file", `${dir}/${name}.id`];
}

/**
 * Asserts a failed run printed exactly one line on stderr and nothing on
 * stdout; `line` is the whole line (a string), or a pattern for it.
 */
export function assertOneLineError(result: DenoRun, code: number, line: RegExp | string): void {
  assert.equal(result.code, code, `exit code; stderr: ${result.stderr}`);
  assert.equal(result.stdout, "");
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, `one stderr line, got: ${result.stderr}`);
  if (typeof line === "string") assert.equal(lines[0], line);
  else assert.match(lines[0], line);
}

/** `text` as a RegExp that matches it literally. */
export function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A CLI process whose stdout and stderr are both read as lines. */
export interface Spawned {
  readonly child: Deno.ChildProcess;
  readonly out: Lines;
  readonly err: Lines;
}

/** Starts `cli.ts args` with stdin `stdin`, stdout and stderr piped. */
function startCli(args: string[], stdin: "null" | "piped"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin,
    stdout: "piped",
    stderr: "piped",
    env: cliEnv(),
  }).spawn();
}

/** Starts `cli.ts args` with stdin `stdin`; read its output with `out` and `err`. */
export function spawnCli(args: string[], stdin: "null" | "piped" = "null"): Spawned {
  const child = startCli(args, stdin);
  return { child, out: new Lines(child.stdout), err: new Lines(child.stderr) };
}

/** A CLI process whose stdout is collected as bytes and stderr read as lines. */
export interface SpawnedNetcat {
  readonly child: Deno.ChildProcess;
  readonly bytes: ByteCollector;
  readonly err: Lines;
}

/** Starts `cli.ts args` (listen, connect) with stdin `stdin`. */
export function spawnNetcat(args: string[], stdin: "null" | "piped"): SpawnedNetcat {
  const child = startCli(args, stdin);
  return { child, bytes: new ByteCollector(child.stdout), err: new Lines(child.stderr) };
}

/** Stops `spawned` (SIGTERM unless it exited) and drains it; resolves with its exit code. */
export async function stopCli(spawned: Spawned): Promise<number> {
  try {
    spawned.child.kill("SIGTERM");
  } catch {
    // Already exited.
  }
  const status = await withTimeout(spawned.child.status, STEP_MS, "the CLI to exit");
  await Promise.all([spawned.out.rest(), spawned.err.rest()]);
  return status.code;
}

export { freePort } from "../_helpers/ports.ts";

/** Lines of a stderr text, without blank ones. */
export function linesOf(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

/** Quotes `text` for sh. */
export function shQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Reads everything from a TCP connection until the peer closes; rejects on a reset. */
export async function readTcpToEnd(conn: Deno.TcpConn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  // Each pass reads a chunk; the peer's close ends it (callers bound it with withTimeout).
  while (true) {
    const count = await conn.read(buffer);
    if (count === null) return concatBytes(chunks);
    chunks.push(buffer.slice(0, count));
  }
}
