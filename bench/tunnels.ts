/**
 * Row 7: iperf3 (one stream) through the tunnels one would use, all in the
 * same run, interleaved per repetition: plain loopback; AlphaNET
 * (`iperf3 -c` -> `cli.ts forward` -> relay (`server.ts`) -> `cli.ts expose`
 * -> `iperf3 -s`); `ssh -L` through a private sshd (aes128-gcm); two `socat`
 * hops. Each runs only where its tools are installed (nothing is installed
 * from here); a missing one gives a one-line note.
 *
 * Standalone: `deno run -A bench/tunnels.ts [SECONDS] [REPS]` prints one line per path.
 *
 * @module
 */

import { findExecutable, freePort, Proc, relayArgs, sleep } from "./_proc.ts";
import { socatTunnel, sshTunnel, terminate, type Tunnel } from "./_tunnel_tools.ts";

const here = (file: string): string => new URL(file, import.meta.url).pathname;
const CLI = here("../cli.ts");
/** How long to wait for a process's ready line. */
const READY_MS = 30_000;
/** The virtual port iperf3's server is exposed on. */
const VPORT = 5201;
/** Attempts of one iperf3 client run while the server still reports itself busy. */
const BUSY_ATTEMPTS = 5;

/** The paths row 7 compares, in the order each repetition runs them. */
export const TUNNEL_PATHS = ["loopback", "alphanet", "ssh", "socat"] as const;
/** One of {@linkcode TUNNEL_PATHS}. */
export type TunnelPath = typeof TUNNEL_PATHS[number];

/** What {@linkcode tunnelBench} measured, and why a path did not run. */
export interface TunnelResult {
  /** Length of each iperf3 run in seconds (after one omitted second). */
  readonly seconds: number;
  /** MB/s (10^6 bytes per second, received) of each run, per path that ran. */
  readonly runs: Partial<Record<TunnelPath, number[]>>;
  /** A one-line note per path that did not run (tool not installed). */
  readonly skipped: Partial<Record<TunnelPath, string>>;
}

/** Runs `iperf3 -c` against 127.0.0.1:`port` for `seconds` and returns the received MB/s. */
async function iperfClient(iperf3: string, port: number, seconds: number): Promise<number> {
  for (let attempt = 1;; attempt++) {
    const proc = new Proc(`iperf3 -c :${port}`, [
      "-c",
      "127.0.0.1",
      "-p",
      String(port),
      "-t",
      String(seconds),
      "-O",
      "1",
      "-J",
    ], iperf3);
    const text = await proc.rest((seconds + 30) * 1000);
    await proc.stop(1000);
    let report: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
    try {
      report = JSON.parse(text);
    } catch {
      throw new Error(`iperf3 -c port ${port}: no JSON report: ${text.slice(0, 200)}`);
    }
    const bps = report.end?.sum_received?.bits_per_second;
    if (typeof bps === "number" && !report.error) return bps / 8e6;
    // The server may still be closing a connection that probed a tunnel while it started.
    if (report.error?.includes("busy") && attempt < BUSY_ATTEMPTS) {
      await sleep(500);
      continue;
    }
    throw new Error(`iperf3 -c port ${port}: ${report.error ?? "no sum_received in the report"}`);
  }
}

/** Starts `iperf3 -s` on `port` and waits until it listens. */
async function iperfServer(iperf3: string, port: number): Promise<Proc> {
  const proc = new Proc(
    "iperf3 -s",
    ["-s", "-B", "127.0.0.1", "-p", String(port), "--forceflush"],
    iperf3,
  );
  try {
    while (!(await proc.line(READY_MS)).includes("Server listening on")) { /* next line */ }
  } catch (error) {
    await proc.terminate(1000);
    throw error;
  }
  proc.drain(); // It prints a report per run; never let the pipe fill.
  return proc;
}

/** forward -> relay -> expose, ending at `targetPort`: the relay and two `cli.ts` processes. */
async function alphanetTunnel(targetPort: number, dir: string): Promise<Tunnel> {
  const procs: Proc[] = [];
  const close = () => terminate(procs);
  try {
    const relay = new Proc("relay", relayArgs());
    procs.push(relay);
    const relayAddr = await relay.expect("listening on", READY_MS);
    const cli = (name: string, args: string[]): Proc => {
      const proc = new Proc(`cli ${name}`, [
        "run",
        "-A",
        CLI,
        ...args,
        "--server",
        relayAddr,
        "--identity-file",
        `${dir}/${name}.id`,
      ]);
      procs.push(proc);
      return proc;
    };
    const expose = cli("expose", ["expose", String(VPORT), `127.0.0.1:${targetPort}`]);
    const vip = (await expose.expect("exposing", READY_MS)).split(":")[0];
    const forward = cli("forward", ["forward", "0", `${vip}:${VPORT}`]);
    const line = await forward.expect("forwarding", READY_MS);
    const port = Number(/^127\.0\.0\.1:(\d+) /.exec(line)?.[1]);
    if (!port) throw new Error(`cli forward: no port in ${JSON.stringify(line)}`);
    return { port, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Sets up every installed path to one `iperf3 -s`, then runs iperf3 (one
 * stream, `seconds` long after one omitted second) through each path in turn,
 * `reps` times. The tunnels are up before iperf3 listens, so probing them
 * never reaches it. Every process is stopped before this returns or throws.
 */
export async function tunnelBench(seconds = 5, reps = 3): Promise<TunnelResult> {
  const iperf3 = findExecutable("iperf3");
  if (!iperf3) {
    const note = "iperf3 not installed";
    return { seconds, runs: {}, skipped: Object.fromEntries(TUNNEL_PATHS.map((p) => [p, note])) };
  }
  const dir = await Deno.makeTempDir({ prefix: "alphanet_tunnels_" });
  const tunnels: Tunnel[] = [];
  let server: Proc | null = null;
  try {
    const iperfPort = freePort();
    const ports: Partial<Record<TunnelPath, number>> = { loopback: iperfPort };
    const skipped: Partial<Record<TunnelPath, string>> = {};
    const add = (path: TunnelPath, tunnel: Tunnel | string) => {
      if (typeof tunnel === "string") skipped[path] = tunnel;
      else {
        tunnels.push(tunnel);
        ports[path] = tunnel.port;
      }
    };
    add("alphanet", await alphanetTunnel(iperfPort, dir));
    // A baseline that fails to start is a note in the row; AlphaNET failing is an error.
    const note = (error: unknown) => String(error instanceof Error ? error.message : error);
    add("ssh", await sshTunnel(iperfPort, dir).catch(note));
    add("socat", await socatTunnel(iperfPort).catch(note));
    server = await iperfServer(iperf3, iperfPort);
    const runs: Partial<Record<TunnelPath, number[]>> = {};
    for (let rep = 0; rep < reps; rep++) {
      for (const path of TUNNEL_PATHS) {
        const port = ports[path];
        if (port === undefined) continue;
        (runs[path] ??= []).push(await iperfClient(iperf3, port, seconds));
      }
    }
    return { seconds, runs, skipped };
  } finally {
    for (const tunnel of tunnels.reverse()) await tunnel.close();
    await server?.terminate();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const result = await tunnelBench(Number(Deno.args[0] ?? 5), Number(Deno.args[1] ?? 1));
  for (const path of TUNNEL_PATHS) {
    const runs = result.runs[path];
    console.log(
      `${path}: ${runs ? `${runs.map(Math.round).join(", ")} MB/s` : result.skipped[path]}`,
    );
  }
}
