/**
 * iperf3 through AlphaNET, against iperf3 over plain loopback in the same
 * run: `iperf3 -c` -> `cli.ts forward` -> relay (`server.ts`) -> `cli.ts
 * expose` -> `iperf3 -s`, one TCP stream each way of the tunnel. Runs only
 * where iperf3 is installed (it is never installed from here).
 *
 * Standalone: `deno run -A bench/iperf.ts [SECONDS]` prints one line.
 *
 * @module
 */

import { Proc, relayArgs } from "./_proc.ts";

const here = (file: string): string => new URL(file, import.meta.url).pathname;
const CLI = here("../cli.ts");
/** How long to wait for a process's ready line. */
const READY_MS = 30_000;
/** The virtual port iperf3's server is exposed on. */
const VPORT = 5201;

/** What {@linkcode iperfBench} measured, or why it did not. */
export type IperfResult =
  | {
    readonly installed: true;
    /** iperf3 through forward -> relay -> expose, Gbit/s received. */
    readonly alphanetGbps: number;
    /** iperf3 over plain 127.0.0.1, Gbit/s received. */
    readonly loopbackGbps: number;
    /** Length of each iperf3 run, in seconds. */
    readonly seconds: number;
  }
  | { readonly installed: false; readonly note: "iperf3 not installed" };

/** Whether `iperf3` is on the PATH (`which iperf3`). */
export async function iperfInstalled(): Promise<boolean> {
  try {
    const { code } = await new Deno.Command("which", {
      args: ["iperf3"],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0;
  } catch {
    return false; // No `which` either.
  }
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Runs `iperf3 -c 127.0.0.1 -p port` for `seconds` and returns the received Gbit/s. */
async function iperfClient(port: number, seconds: number): Promise<number> {
  const output = await new Deno.Command("iperf3", {
    args: ["-c", "127.0.0.1", "-p", String(port), "-t", String(seconds), "-O", "1", "-J"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  let report: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  try {
    report = JSON.parse(text);
  } catch {
    throw new Error(`iperf3 -c port ${port}: no JSON report: ${text.slice(0, 200)}`);
  }
  const bps = report.end?.sum_received?.bits_per_second;
  if (report.error || typeof bps !== "number") {
    throw new Error(`iperf3 -c port ${port}: ${report.error ?? "no sum_received in the report"}`);
  }
  return bps / 1e9;
}

/** Starts `iperf3 -s` on `port` and waits until it listens. */
async function iperfServer(port: number): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("iperf3", {
    args: ["-s", "-B", "127.0.0.1", "-p", String(port), "--forceflush"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`iperf3 -s did not listen: ${seen}`)), READY_MS);
  });
  try {
    while (!seen.includes("Server listening on")) {
      const { value, done } = await Promise.race([reader.read(), deadline]);
      if (done) throw new Error(`iperf3 -s exited: ${seen}`);
      seen += value;
    }
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  // Keep draining its stdout so it never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  return child;
}

/**
 * Measures iperf3 (one stream, `seconds` long, first second omitted) over
 * plain loopback, then through `cli.ts forward` -> relay -> `cli.ts expose`.
 * Resolves `{ installed: false }` without running anything if iperf3 is missing.
 */
export async function iperfBench(seconds = 5): Promise<IperfResult> {
  if (!(await iperfInstalled())) return { installed: false, note: "iperf3 not installed" };
  const dir = await Deno.makeTempDir({ prefix: "alphanet_iperf_" });
  const procs: Proc[] = [];
  let iperf: Deno.ChildProcess | null = null;
  try {
    const iperfPort = freePort();
    iperf = await iperfServer(iperfPort);
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
    const expose = cli("expose", ["expose", String(VPORT), `127.0.0.1:${iperfPort}`]);
    const vip = (await expose.expect("exposing", READY_MS)).split(":")[0];
    const forward = cli("forward", ["forward", "0", `${vip}:${VPORT}`]);
    const forwardPort = Number(
      /^127\.0\.0\.1:(\d+) /.exec(
        await forward.expect("forwarding", READY_MS),
      )?.[1],
    );
    const loopbackGbps = await iperfClient(iperfPort, seconds);
    const alphanetGbps = await iperfClient(forwardPort, seconds);
    return { installed: true, alphanetGbps, loopbackGbps, seconds };
  } finally {
    for (const proc of procs.reverse()) await proc.terminate();
    if (iperf !== null) {
      iperf.kill("SIGTERM");
      await iperf.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const result = await iperfBench(Number(Deno.args[0] ?? 5));
  if (!result.installed) console.log(result.note);
  else {
    const round = (x: number): number => Math.round(x * 100) / 100;
    console.log(
      `iperf3, 1 stream, ${result.seconds} s: AlphaNET ${round(result.alphanetGbps)} Gbit/s, ` +
        `loopback ${round(result.loopbackGbps)} Gbit/s (${
          round(result.alphanetGbps / result.loopbackGbps)
        } ×)`,
    );
  }
}
