/**
 * Private PostgreSQL and nats-server for the bench's cluster rows (14–17),
 * as tests/_helpers/cluster_engines.ts makes them for the tests: free
 * loopback ports, a temporary directory, never the system's instance. Both
 * run as {@linkcode Proc}s in the foreground, so the bench's watchdog kills
 * them with everything else (PostgreSQL through `setpriv` when run as root,
 * which execs the postmaster instead of forking it, as `runuser` would).
 *
 * PostgreSQL runs with `synchronous_commit=off`: no WAL flush per commit,
 * as the relay's SQLite file (WAL, `synchronous = NORMAL`) does no flush per
 * commit either, so the join rows compare the engines, not their fsync
 * policies. `fsync` stays on.
 *
 * @module
 */

import { findExecutable, freePort, Proc, sleep, waitForPort } from "./_proc.ts";

/** Where Debian's `postgresql` package puts its server programs: /usr/lib/postgresql/<major>/bin. */
const POSTGRES_LIB = "/usr/lib/postgresql";
const START_MS = 60_000;

/** The directory of `initdb`, `postgres`, `pg_isready` and `createdb` (newest major), or null. */
function findPostgresBin(): string | null {
  let majors: number[] = [];
  try {
    majors = [...Deno.readDirSync(POSTGRES_LIB)].map((entry) => Number(entry.name))
      .filter((major) => Number.isInteger(major)).sort((a, b) => b - a);
  } catch {
    return null; // Not installed.
  }
  const programs = ["initdb", "postgres", "pg_isready", "createdb"];
  for (const major of majors) {
    const bin = `${POSTGRES_LIB}/${major}/bin`;
    try {
      if (programs.every((program) => Deno.statSync(`${bin}/${program}`).isFile)) return bin;
    } catch {
      // This version lacks a program: try the next.
    }
  }
  return null;
}

/** PostgreSQL's programs, or null when the package is missing. */
export const POSTGRES_BIN: string | null = findPostgresBin();
/** The nats-server binary, or null when the package is missing. */
export const NATS_SERVER: string | null = findExecutable("nats-server");

/** What the cluster rows lack, as one line, or null when nothing. */
export function missingEngines(needNats: boolean): string | null {
  const missing = [
    POSTGRES_BIN === null && "PostgreSQL (/usr/lib/postgresql/*/bin)",
    needNats && NATS_SERVER === null && "nats-server",
  ].filter(Boolean);
  return missing.length
    ? `${missing.join(" and ")} not installed (apt-get install -y postgresql nats-server)`
    : null;
}

async function run(command: string, args: string[]): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args }).output();
  if (code !== 0) {
    const text = new TextDecoder().decode(new Uint8Array([...stdout, ...stderr]));
    throw new Error(`${command} ${args.join(" ")} failed (${code}): ${text.trim()}`);
  }
}

async function userId(name?: string): Promise<number> {
  const output = await new Deno.Command("id", { args: ["-u", ...(name ? [name] : [])] }).output();
  return Number(new TextDecoder().decode(output.stdout).trim());
}

/** The engines of a bench run: one PostgreSQL (a database per cluster), one nats-server. */
export interface Engines {
  /** A fresh, empty database; returns its `postgres://` URL (trust authentication, loopback). */
  database(): Promise<string>;
  /** `nats://127.0.0.1:PORT`, or null when NATS was not asked for. */
  readonly natsUrl: string | null;
  /** A mesh key file (64 hex digits, mode 0600) the cluster relays share. */
  readonly keyFile: string;
  /** Stops both and removes their directory. */
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL (initdb, then the postmaster in the foreground) and,
 * with `nats`, nats-server; resolves once both accept.
 */
export async function startEngines(nats: boolean): Promise<Engines> {
  if (POSTGRES_BIN === null) throw new Error("PostgreSQL is not installed");
  const bin = POSTGRES_BIN;
  const base = await Deno.makeTempDir({ prefix: "alphanet_bench_pg_" });
  const data = `${base}/data`;
  const asRoot = (await userId()) === 0;
  // PostgreSQL refuses to run as root: as root, its programs run as the postgres user.
  const as = (program: string): [string, string[]] =>
    asRoot
      ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--clear-groups", "--", program]]
      : [program, []];
  const procs: Proc[] = [];
  const stopAll = async () => {
    await Promise.all(procs.map(async (proc) => {
      try {
        // SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for clients); NATS takes either.
        proc.child.kill("SIGINT");
      } catch {
        // Gone already.
      }
      await proc.stop(10_000);
    }));
    await Deno.remove(base, { recursive: true }).catch(() => {});
  };
  try {
    if (asRoot) await Deno.chown(base, await userId("postgres"), null);
    const keyFile = `${base}/mesh.key`;
    const key = Array.from(
      crypto.getRandomValues(new Uint8Array(32)),
      (byte) => byte.toString(16).padStart(2, "0"),
    ).join("");
    Deno.writeTextFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    const [initdb, initdbPrefix] = as(`${bin}/initdb`);
    await run(initdb, [
      ...initdbPrefix,
      "-D",
      data,
      "-U",
      "alphanet",
      "-A",
      "trust",
      "--no-sync",
      "-E",
      "UTF8",
    ]);
    const port = freePort();
    const [postgres, postgresPrefix] = as(`${bin}/postgres`);
    const pg = new Proc("postgres", [
      ...postgresPrefix,
      "-D",
      data,
      "-p",
      String(port),
      "-h",
      "127.0.0.1",
      "-k",
      base,
      "-c",
      "synchronous_commit=off",
    ], postgres);
    procs.push(pg);
    await pgReady(bin, port, pg);
    let natsUrl: string | null = null;
    if (nats) {
      if (NATS_SERVER === null) throw new Error("nats-server is not installed");
      const natsPort = freePort();
      const natsProc = new Proc(
        "nats-server",
        ["-a", "127.0.0.1", "-p", String(natsPort)],
        NATS_SERVER,
      );
      procs.push(natsProc);
      await waitForPort(natsPort, START_MS, natsProc);
      natsUrl = `nats://127.0.0.1:${natsPort}`;
    }
    let databases = 0;
    return {
      natsUrl,
      keyFile,
      database: async () => {
        const name = `bench_${++databases}`;
        await run(`${bin}/createdb`, [
          "-h",
          "127.0.0.1",
          "-p",
          String(port),
          "-U",
          "alphanet",
          name,
        ]);
        return `postgres://alphanet@127.0.0.1:${port}/${name}`;
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Waits until `pg_isready` says the server accepts connections (not merely its port). */
async function pgReady(bin: string, port: number, proc: Proc): Promise<void> {
  let exited = false;
  proc.child.status.then(() => exited = true);
  const deadline = performance.now() + START_MS;
  while (true) {
    const { code } = await new Deno.Command(`${bin}/pg_isready`, {
      args: ["-h", "127.0.0.1", "-p", String(port), "-t", "1"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (code === 0) return;
    if (exited) throw new Error(`postgres exited before it was ready: ${await proc.stderr}`);
    if (performance.now() > deadline) throw new Error(`postgres not ready within ${START_MS} ms`);
    await sleep(100);
  }
}
