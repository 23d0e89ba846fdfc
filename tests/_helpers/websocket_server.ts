/**
 * The real relay, `server.ts`, as a subprocess serving its WebSocket carrier
 * beside the TCP one (and, when asked, its operations endpoint), for the
 * relay-side WebSocket tests.
 */

import assert from "node:assert/strict";
import { Lines } from "./line_reader.ts";
import { SERVER } from "./server_process.ts";

const STARTUP_TIMEOUT_MS = 20_000;

/** A relay subprocess with `--websocket-port`. */
export interface WebSocketServer {
  readonly pid: number;
  /** The TCP carrier's port. */
  readonly port: number;
  /** The WebSocket carrier's port. */
  readonly websocketPort: number;
  /** The start line of the WebSocket carrier, as printed. */
  readonly websocketLine: string;
  /** `http://127.0.0.1:PORT` of the operations endpoint, when `--admin-port` was given. */
  readonly admin: string | null;
  /** Stops the relay with SIGTERM; returns its exit code and its stderr (the log). */
  stop(): Promise<{ code: number; log: string }>;
}

/**
 * Starts `server.ts --hostname 127.0.0.1 --port 0 --websocket-port 0` with
 * `args` (an in-memory registry unless they name `--db`), reads its start
 * lines and keeps its stderr.
 */
export async function startWebSocketRelayProcess(args: string[] = []): Promise<WebSocketServer> {
  const db = args.includes("--db") ? [] : ["--db", ":memory:"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, "--hostname", "127.0.0.1", "--port", "0", ...db]
      .concat(["--websocket-port", "0", ...args]),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = new Response(child.stderr).text();
  const lines = new Lines(child.stdout);
  try {
    const listening = await lines.expect("listening on ", STARTUP_TIMEOUT_MS);
    const websocketLine = await lines.expect("websocket ", STARTUP_TIMEOUT_MS);
    const adminLine = args.includes("--admin-port")
      ? await lines.expect("admin on ", STARTUP_TIMEOUT_MS)
      : null;
    const port = Number(/^listening on 127\.0\.0\.1:(\d+)$/.exec(listening)?.[1]);
    const websocketPort = Number(/:(\d+)$/.exec(websocketLine)?.[1]);
    assert.ok(port > 0 && websocketPort > 0, `unexpected start lines: ${lines.seen}`);
    const admin = adminLine === null
      ? null
      : `http://${/^admin on (127\.0\.0\.1:\d+)$/.exec(adminLine)?.[1]}`;
    const drained = lines.rest();
    return {
      pid: child.pid,
      port,
      websocketPort,
      websocketLine,
      admin,
      async stop(): Promise<{ code: number; log: string }> {
        child.kill("SIGTERM");
        const [status, text] = await Promise.all([child.status, log, drained]);
        return { code: status.code, log: text };
      },
    };
  } catch (error) {
    child.kill("SIGKILL");
    await Promise.all([child.status, log, lines.rest()]);
    throw error;
  }
}
