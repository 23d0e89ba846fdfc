/**
 * The real relay, `server.ts`, as a subprocess started the way the README says.
 */

import assert from "node:assert/strict";
import { Lines } from "./line_reader.ts";

/** Path of the relay entrypoint. */
export const SERVER: string = new URL("../../server.ts", import.meta.url).pathname;
const STARTUP_TIMEOUT_MS = 20_000;

/** A running relay subprocess. */
export interface ServerProcess {
  readonly pid: number;
  readonly port: number;
  readonly child: Deno.ChildProcess;
  /** Stops the server with SIGTERM and returns its exit code. */
  stop(): Promise<number>;
  /**
   * The relay-link port a clustered relay printed (`mesh on HOST:PORT`),
   * or null once its output ended without one.
   */
  readonly meshPort: Promise<number | null>;
  /** Sends `signal`, then waits for the process to exit and its stdout to drain. */
  kill(signal: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Starts `server.ts` on 127.0.0.1 with `args` and waits for its listening line. */
export async function startServer(args: string[]): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, "--hostname", "127.0.0.1", ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error("server did not print its listening line")),
      STARTUP_TIMEOUT_MS,
    );
  });
  try {
    while (!text.includes("\n")) {
      const { value, done } = await Promise.race([lines.read(), deadline]);
      if (done) throw new Error(`server exited before listening: ${text}`);
      text += value;
    }
  } finally {
    clearTimeout(timer);
  }
  const match = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(text);
  assert.ok(match, `unexpected first line: ${JSON.stringify(text)}`);
  // Keep draining stdout so the child never blocks on a full pipe, noting the relay-link port.
  const meshPort = Promise.withResolvers<number | null>();
  const drained = (async () => {
    for (;;) {
      const mesh = /^mesh on 127\.0\.0\.1:(\d+)$/m.exec(text);
      if (mesh !== null) meshPort.resolve(Number(mesh[1]));
      const { value, done } = await lines.read();
      if (done) break;
      if (mesh === null) text += value;
    }
    meshPort.resolve(null);
  })();
  return serverHandle(child, Number(match[1]), drained, meshPort.promise);
}

/**
 * The handle of a relay subprocess on `port`: stopping or killing it waits
 * for the exit and for `drained`, the end of its stdout, so no read is left
 * pending when a test ends.
 */
function serverHandle(
  child: Deno.ChildProcess,
  port: number,
  drained: Promise<unknown>,
  meshPort: Promise<number | null> = Promise.resolve(null),
): ServerProcess {
  const kill = async (signal: Deno.Signal): Promise<Deno.CommandStatus> => {
    child.kill(signal);
    const status = await child.status;
    await drained;
    return status;
  };
  return {
    pid: child.pid,
    port,
    child,
    meshPort,
    stop: async () => (await kill("SIGTERM")).code,
    kill,
  };
}

/**
 * Resident set size of a process in KiB. Read through `cat` because Deno
 * only grants /proc reads with --allow-all, and the tests run with less.
 */
export async function rssKiB(pid: number): Promise<number> {
  const output = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stderr: "null" })
    .output();
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(new TextDecoder().decode(output.stdout));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** A `server.ts` subprocess logging JSON, whose events the test reads once it stops. */
export interface LoggedServer {
  readonly port: number;
  /** Stops the relay with SIGTERM (it must exit 0) and returns its log events. */
  stop(): Promise<Record<string, unknown>[]>;
}

/** Starts `server.ts` on 127.0.0.1 with `args` and `--log-format json`, keeping its stderr. */
export async function startLoggedServer(args: string[]): Promise<LoggedServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, "--hostname", "127.0.0.1", ...args, "--log-format", "json"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderr = new Response(child.stderr).text();
  let first = "";
  for (let reads = 0; reads < 100 && !first.includes("\n"); reads++) {
    const { value, done } = await stdout.read();
    if (done) break;
    first += value;
  }
  const port = Number(/^listening on 127\.0\.0\.1:(\d+)\n/.exec(first)?.[1]);
  if (!(port > 0)) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`the relay did not start: ${first} ${await stderr}`);
  }
  const draining = (async () => {
    while (!(await stdout.read()).done) { /* keep the pipe from filling */ }
  })();
  return {
    port,
    async stop(): Promise<Record<string, unknown>[]> {
      child.kill("SIGTERM");
      const [status, log] = await Promise.all([child.status, stderr, draining]);
      assert.equal(status.code, 0, log);
      return log.trim().split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
    },
  };
}

/** A relay subprocess serving its operations endpoint. */
export interface AdminRelay {
  /** The relay's TCP port. */
  readonly port: number;
  /** The endpoint's base URL, `http://127.0.0.1:PORT`. */
  readonly admin: string;
  /** Stops the relay with SIGTERM and returns its exit code. */
  stop(): Promise<number>;
}

/**
 * Spawns `server.ts` on 127.0.0.1 with `args` (stdout piped, stderr dropped)
 * and reads its start lines that begin with `prefixes`, in order; kills it
 * if one does not come.
 */
async function spawnRelay(
  args: string[],
  prefixes: string[],
): Promise<{ child: Deno.ChildProcess; lines: Lines; found: string[] }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, "--hostname", "127.0.0.1", ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = new Lines(child.stdout);
  const found: string[] = [];
  try {
    for (const prefix of prefixes) found.push(await lines.expect(prefix, STARTUP_TIMEOUT_MS));
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  }
  return { child, lines, found };
}

/**
 * Starts `server.ts` on 127.0.0.1 with `--admin-port 0` (registry `--db :memory:`
 * unless `args` names one), and reads both of its start lines.
 */
export async function startAdminRelay(args: string[] = []): Promise<AdminRelay> {
  const db = args.includes("--db") ? [] : ["--db", ":memory:"];
  const { child, lines, found: [listening, admin] } = await spawnRelay(
    ["--port", "0", ...db, "--log-level", "silent", "--admin-port", "0", ...args],
    ["listening on ", "admin on "],
  );
  const port = Number(/^listening on 127\.0\.0\.1:(\d+)$/.exec(listening)?.[1]);
  const match = /^admin on (127\.0\.0\.1:\d+)$/.exec(admin);
  assert.ok(match, `unexpected admin line: ${admin}`);
  return {
    port,
    admin: `http://${match[1]}`,
    async stop(): Promise<number> {
      child.kill("SIGTERM");
      const status = await child.status;
      await lines.rest();
      return status.code;
    },
  };
}

/** A relay subprocess serving its WebSocket carrier too. */
export interface WebSocketRelay extends ServerProcess {
  /** The WebSocket port. */
  readonly websocketPort: number;
  /** The relay's WebSocket URL, `ws://127.0.0.1:PORT/` (`wss://` when it serves TLS). */
  readonly url: string;
}

/**
 * Starts `server.ts` on 127.0.0.1 with `--websocket-port 0` (unless `args`
 * names one; `--port 0` and `--db :memory:` likewise), and reads both of
 * its start lines: `listening on HOST:PORT` and `websocket on HOST:PORT`
 * (`websocket (tls) on ...` with a certificate).
 */
export async function startWebSocketServer(args: string[] = []): Promise<WebSocketRelay> {
  const defaults = [
    ...(args.includes("--port") ? [] : ["--port", "0"]),
    ...(args.includes("--db") ? [] : ["--db", ":memory:"]),
    ...(args.includes("--websocket-port") ? [] : ["--websocket-port", "0"]),
  ];
  const { child, lines, found: [listening, websocket] } = await spawnRelay(
    [...defaults, ...args],
    ["listening on ", "websocket "],
  );
  const port = Number(/^listening on 127\.0\.0\.1:(\d+)$/.exec(listening)?.[1]);
  const match = /^websocket (\(tls\) )?on 127\.0\.0\.1:(\d+)$/.exec(websocket);
  assert.ok(port > 0 && match, `unexpected start lines: ${lines.seen}`);
  // Keep draining stdout so the child never blocks on a full pipe.
  const drained = lines.rest();
  const websocketPort = Number(match[2]);
  return {
    ...serverHandle(child, port, drained),
    websocketPort,
    url: `${match[1] ? "wss" : "ws"}://127.0.0.1:${websocketPort}/`,
  };
}
