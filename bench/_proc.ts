/**
 * Bench helpers: spawn a subprocess (Deno by default, or a tool such as
 * iperf3), read its stdout line by line with a deadline, write commands to
 * its stdin, read RSS and CPU time from /proc. Every process spawned here is
 * kept in one set until it exits, so the watchdog can kill them all.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Every spawned process that has not exited yet: what {@linkcode killAll} kills. */
const running = new Set<Proc>();

/** SIGKILLs every process spawned through {@linkcode Proc} that is still running. */
export function killAll(): void {
  for (const proc of running) {
    try {
      proc.child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** SIGTERMs every process still running, each given `graceMs` before SIGKILL. */
export async function terminateAll(graceMs = 1000): Promise<void> {
  await Promise.all([...running].map((proc) => proc.terminate(graceMs)));
}

/** A spawned subprocess speaking the bench's line protocol (or any tool's stdout lines). */
export class Proc {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderr: Promise<string>;
  #buffer = "";

  /** Spawns `command` (this Deno by default) with `args`, stdin, stdout and stderr piped. */
  constructor(name: string, args: string[], command: string = Deno.execPath()) {
    this.name = name;
    this.child = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    running.add(this);
    this.child.status.finally(() => running.delete(this));
    this.#lines = this.child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stdin = this.child.stdin.getWriter();
    this.#stderr = new Response(this.child.stderr).text().catch(() => "");
  }

  /** Everything the process wrote to stderr, once it has exited. */
  get stderr(): Promise<string> {
    return this.#stderr;
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Next stdout line; throws after `timeoutMs` or if the process ends first. */
  async line(timeoutMs: number): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name}: no output line within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      while (!this.#buffer.includes("\n")) {
        const { value, done } = await Promise.race([this.#lines.read(), deadline]);
        if (done) {
          throw new Error(`${this.name} exited early: ${this.#buffer}${await this.#stderr}`);
        }
        this.#buffer += value;
      }
    } finally {
      clearTimeout(timer);
    }
    const end = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, end);
    this.#buffer = this.#buffer.slice(end + 1);
    return line;
  }

  /** Waits for a line starting with `prefix` and returns the rest of it. */
  async expect(prefix: string, timeoutMs: number): Promise<string> {
    const line = await this.line(timeoutMs);
    if (!line.startsWith(prefix + " ") && line !== prefix) {
      throw new Error(`${this.name}: expected "${prefix}", got ${JSON.stringify(line)}`);
    }
    return line.slice(prefix.length + 1);
  }

  /**
   * Everything left on stdout until the process exits; after `timeoutMs` the
   * process is killed and this throws.
   */
  async rest(timeoutMs: number): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`${this.name}: still running after ${timeoutMs} ms, killed`));
      }, timeoutMs);
    });
    try {
      while (true) {
        const { value, done } = await Promise.race([this.#lines.read(), deadline]);
        if (done) break;
        this.#buffer += value;
      }
      await Promise.race([this.child.status, deadline]);
    } finally {
      clearTimeout(timer);
    }
    const text = this.#buffer;
    this.#buffer = "";
    return text;
  }

  /**
   * Reads and discards stdout from now on, so a chatty tool never blocks on a
   * full pipe; no line can be read after this.
   */
  drain(): void {
    (async () => {
      while (!(await this.#lines.read()).done) { /* discard */ }
    })().catch(() => {});
  }

  /** Waits for "result <json>" and parses it. */
  async result<T>(timeoutMs: number): Promise<T> {
    return JSON.parse(await this.expect("result", timeoutMs)) as T;
  }

  /** Sends one command line on stdin. */
  async send(command: string): Promise<void> {
    await this.#stdin.write(encoder.encode(command + "\n"));
  }

  /** Closes stdin, then waits up to `graceMs` for exit before SIGTERM, then SIGKILL. */
  async stop(graceMs = 3000): Promise<number> {
    await this.#stdin.close().catch(() => {});
    for (const signal of [null, "SIGTERM", "SIGKILL"] as const) {
      if (signal) {
        try {
          this.child.kill(signal);
        } catch {
          // Already gone.
        }
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        this.child.status,
        new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), graceMs)),
      ]);
      clearTimeout(timer);
      if (status) {
        await this.#lines.cancel().catch(() => {});
        await this.#stderr;
        return status.code;
      }
    }
    return -1;
  }

  /** Sends SIGTERM and waits for the exit (used for the relay and the proxy). */
  async terminate(graceMs = 5000): Promise<number> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    return await this.stop(graceMs);
  }
}

/** Resident set size of a process in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** User + system CPU time of a process in seconds (utime + stime from /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A free TCP port on 127.0.0.1 (bound, then released: another process may take it first). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/**
 * Resolves once a TCP connect to 127.0.0.1:`port` succeeds (the connection is
 * closed at once); throws after `timeoutMs`, or as soon as `proc` exits.
 */
export async function waitForPort(port: number, timeoutMs: number, proc?: Proc): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let exited = false;
  proc?.child.status.then(() => exited = true);
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (error) {
      if (exited) throw new Error(`${proc!.name} exited before port ${port} accepted`);
      if (performance.now() > deadline) {
        throw new Error(`port ${port} did not accept within ${timeoutMs} ms: ${error}`);
      }
      await sleep(50);
    }
  }
}

/** Where `command` is: the first executable file of that name on PATH (plus the sbin dirs). */
export function findExecutable(command: string): string | null {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  for (const dir of [...dirs, "/usr/local/sbin", "/usr/sbin", "/sbin"]) {
    try {
      const info = Deno.statSync(`${dir}/${command}`);
      if (info.isFile && (info.mode ?? 0) & 0o111) return `${dir}/${command}`;
    } catch {
      // Not in this directory.
    }
  }
  return null;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Epoch milliseconds with sub-millisecond precision, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Arguments of `deno` that start the real relay the way `deno task serve`
 * does (with its smaller V8 nursery: README, "Running the relay"), on a free
 * loopback port with a throwaway registry (or the `registry` flags given,
 * e.g. `--registry postgres://...` or `--db FILE`). `denoFlags` go before the
 * script, `relayFlags` (such as {@linkcode TLS_RELAY_FLAGS}) after it.
 */
export function relayArgs(
  denoFlags: string[] = [],
  relayFlags: string[] = [],
  registry: string[] = ["--db", ":memory:"],
): string[] {
  return [
    "run",
    "-A",
    "--v8-flags=--max-semi-space-size=8",
    ...denoFlags,
    new URL("../server.ts", import.meta.url).pathname,
    "--hostname",
    "127.0.0.1",
    "--port",
    "0",
    ...registry,
    "--log-level",
    "warn",
    // Every bench client comes from 127.0.0.1: row 5 holds 10,000 links, 200 in their handshake,
    // and the join rows register thousands of new identities.
    "--max-links-per-ip",
    "0",
    "--max-handshakes-per-ip",
    "0",
    "--max-new-identities-per-ip",
    "0",
    ...relayFlags,
  ];
}

const testTls = (file: string) =>
  new URL(`../tests/testdata/tls/${file}`, import.meta.url).pathname;

/** Relay flags that serve TLS with the tests' certificate for 127.0.0.1. */
export const TLS_RELAY_FLAGS: readonly string[] = [
  "--tls-cert",
  testTls("localhost.crt"),
  "--tls-key",
  testTls("localhost.key"),
];

/** The CA file that certificate is signed by, for the clients' `caCerts`. */
export const TLS_CA_FILE: string = testTls("ca.pem");
