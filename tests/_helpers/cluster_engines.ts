/**
 * Private PostgreSQL and nats-server instances for the cluster tests (issue
 * 12): each on a free loopback port, in a temporary directory of its own,
 * never the system's, and removed after. Debian's packages provide them
 * (`apt-get install -y postgresql nats-server`; .ci/run installs both).
 * Without them the cluster tests say so in one line and are ignored, except
 * under CI (`CI=true`), where they fail.
 */

import { withTimeout } from "./async.ts";
import { freePort } from "./ports.ts";

/** Where Debian's `postgresql` package puts its server programs: /usr/lib/postgresql/<major>/bin. */
const POSTGRES_LIB = "/usr/lib/postgresql";

/** How long an engine may take to come up: a PostgreSQL initdb takes a few seconds. */
const START_MS = 60_000;

/** The directory of `initdb` and `pg_ctl` (newest major version), or null. */
function findPostgresBin(): string | null {
  let majors: number[] = [];
  try {
    majors = [...Deno.readDirSync(POSTGRES_LIB)].map((entry) => Number(entry.name))
      .filter((major) => Number.isInteger(major)).sort((a, b) => b - a);
  } catch {
    return null; // Not installed.
  }
  for (const major of majors) {
    const bin = `${POSTGRES_LIB}/${major}/bin`;
    try {
      if (Deno.statSync(`${bin}/initdb`).isFile && Deno.statSync(`${bin}/pg_ctl`).isFile) {
        return bin;
      }
    } catch {
      // This version lacks the server programs: try the next.
    }
  }
  return null;
}

/** The nats-server binary on the PATH or where Debian puts it, or null. */
function findNatsServer(): string | null {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/usr/bin"];
  for (const dir of dirs.filter((d) => d !== "")) {
    try {
      if (Deno.statSync(`${dir}/nats-server`).isFile) return `${dir}/nats-server`;
    } catch {
      // Not in this directory.
    }
  }
  return null;
}

/** PostgreSQL's server programs, or null when the package is missing. */
export const POSTGRES_BIN: string | null = findPostgresBin();
/** The nats-server binary, or null when the package is missing. */
export const NATS_SERVER: string | null = findNatsServer();

/** Whether the cluster tests are ignored: an engine is missing and this is not CI. */
const SKIP_CLUSTER_TESTS: boolean = (POSTGRES_BIN === null || NATS_SERVER === null) &&
  Deno.env.get("CI") !== "true";

if (POSTGRES_BIN === null || NATS_SERVER === null) {
  const missing = [POSTGRES_BIN === null && "postgresql", NATS_SERVER === null && "nats-server"]
    .filter(Boolean).join(" and ");
  console.log(
    `${missing} missing: the cluster tests are ${
      SKIP_CLUSTER_TESTS ? "ignored" : "failing (CI=true)"
    }; install with \`apt-get install -y postgresql nats-server\``,
  );
}

/**
 * Registers a cluster test: ignored (with the one-line notice above) when an
 * engine is missing outside CI. Sanitizers stay on.
 */
export function clusterTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  Deno.test({ name, ignore: SKIP_CLUSTER_TESTS, fn });
}

/** Runs a command to its end; throws with its output if it fails. */
async function run(command: string, args: string[]): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args }).output();
  if (code !== 0) {
    const text = new TextDecoder().decode(new Uint8Array([...stdout, ...stderr]));
    throw new Error(`${command} ${args.join(" ")} failed (${code}): ${text.trim()}`);
  }
}

/** The current process's user id, from `id -u` (Deno.uid() needs --allow-sys). */
async function userId(name?: string): Promise<number> {
  const output = await new Deno.Command("id", { args: ["-u", ...(name ? [name] : [])] }).output();
  return Number(new TextDecoder().decode(output.stdout).trim());
}

/** A running private PostgreSQL. */
export interface Postgres extends AsyncDisposable {
  /** `postgres://alphanet@127.0.0.1:PORT/postgres`: trust authentication, loopback only. */
  readonly url: string;
  readonly port: number;
  /** Stops the server (immediate shutdown) and removes its directory. */
  stop(): Promise<void>;
  /** Stops the server (immediate shutdown) and keeps its data, for {@linkcode Postgres.resume}. */
  halt(): Promise<void>;
  /** Starts a halted server again: the same port, the same data. */
  resume(): Promise<void>;
}

/**
 * Starts a PostgreSQL of its own in a new temporary directory: `initdb` with
 * trust authentication for the user `alphanet`, then `pg_ctl start` on a
 * free port of 127.0.0.1 (its Unix socket in the same directory). As root
 * the programs run as the `postgres` user through `runuser`, PostgreSQL
 * refusing to run as root.
 */
export async function startPostgres(): Promise<Postgres> {
  if (POSTGRES_BIN === null) throw new Error("PostgreSQL is not installed");
  const base = await Deno.makeTempDir({ prefix: "alphanet_pg_" });
  const data = `${base}/data`;
  const port = freePort();
  const asRoot = (await userId()) === 0;
  const exec = async (program: string, args: string[]): Promise<void> => {
    const path = `${POSTGRES_BIN}/${program}`;
    await (asRoot ? run("runuser", ["-u", "postgres", "--", path, ...args]) : run(path, args));
  };
  try {
    if (asRoot) {
      const postgresUid = await userId("postgres");
      await Deno.chown(base, postgresUid, null);
    }
    await exec("initdb", ["-D", data, "-U", "alphanet", "-A", "trust", "--no-sync", "-E", "UTF8"]);
    await start();
  } catch (error) {
    await Deno.remove(base, { recursive: true }).catch(() => {});
    throw error;
  }
  let stopped: Promise<void> | null = null;
  let halted = false;
  const halt = (): Promise<void> => exec("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
  const stop = (): Promise<void> =>
    stopped ??= (halted ? Promise.resolve() : halt())
      .finally(() => Deno.remove(base, { recursive: true }).catch(() => {}));
  return {
    url: `postgres://alphanet@127.0.0.1:${port}/postgres`,
    port,
    stop,
    halt: async () => {
      await halt();
      halted = true;
    },
    resume: async () => {
      await start();
      halted = false;
    },
    [Symbol.asyncDispose]: stop,
  };

  function start(): Promise<void> {
    return exec("pg_ctl", [
      "-D",
      data,
      "-l",
      `${base}/server.log`,
      "-w",
      "-t",
      String(START_MS / 1000),
      "-o",
      `-p ${port} -h 127.0.0.1 -k ${base} -c fsync=off -c full_page_writes=off`,
      "start",
    ]);
  }
}

/** A running private nats-server. */
export interface Nats extends AsyncDisposable {
  /** `nats://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, then waits for its exit). */
  stop(): Promise<void>;
}

/** Starts a nats-server of its own on a free port of 127.0.0.1; resolves once it says it is ready. */
export async function startNats(port: number = freePort()): Promise<Nats> {
  if (NATS_SERVER === null) throw new Error("nats-server is not installed");
  const child = new Deno.Command(NATS_SERVER, {
    args: ["-a", "127.0.0.1", "-p", String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const status = child.status;
  // Reads its log until "Server is ready", then keeps draining it so the pipe never fills.
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const ready = (async () => {
    let log = "";
    while (!log.includes("Server is ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`nats-server exited before it was ready: ${log.trim()}`);
      log += value;
    }
  })();
  try {
    await withTimeout(ready, START_MS, "nats-server to be ready");
  } catch (error) {
    child.kill("SIGKILL");
    await reader.cancel().catch(() => {});
    await status;
    throw error;
  }
  const draining = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await status;
      await draining;
    })();
  return { url: `nats://127.0.0.1:${port}`, port, stop, [Symbol.asyncDispose]: stop };
}
