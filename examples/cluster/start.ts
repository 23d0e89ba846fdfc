/**
 * A three-relay AlphaNET cluster on this machine, to try (docs/CLUSTER.md,
 * "Try it"): a private PostgreSQL and a private nats-server on free loopback
 * ports, in a temporary directory of their own (never the system's), a mesh
 * key, and three `server.ts` relays on 127.0.0.1 that share them. Ctrl-C or
 * SIGTERM stops everything and removes the directory.
 *
 * ```sh
 * deno run -A examples/cluster/start.ts [--port-base 1337] [--log-level info]
 * ```
 *
 * Relays listen on BASE, BASE+1 and BASE+2 and their relay links on BASE+3,
 * BASE+4 and BASE+5; `--port-base 0` picks free ports for all of them. It
 * needs Debian's `postgresql` and `nats-server` packages (or the same
 * programs elsewhere on the PATH). As root, PostgreSQL runs as the
 * `postgres` user (it refuses root), through `runuser`.
 *
 * Standard output: a line per engine and relay, then `ready: HOST:PORT,...`
 * (the relays, for `--server`), the commands to try, and `stopped` at the
 * end. The relays' log lines go to standard error, each after its relay's
 * name.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Relays of the cluster. */
const RELAYS = 3;
/** The first relay's port when `--port-base` is not given. */
export const DEFAULT_PORT_BASE = 1337;
/** Where Debian's `postgresql` package puts its server programs: /usr/lib/postgresql/<major>/bin. */
const POSTGRES_LIB = "/usr/lib/postgresql";
/** How long an engine or a relay may take to start: initdb takes a few seconds. */
const START_MS = 60_000;
const HOST = "127.0.0.1";
const SERVER = new URL("../../server.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

const USAGE = `Usage: deno run -A examples/cluster/start.ts [--port-base N] [--log-level LEVEL]

Starts PostgreSQL, nats-server and three relays on ${HOST}; Ctrl-C stops them all.
  --port-base N      relays on N, N+1, N+2, relay links on N+3..N+5; 0 picks free ports (default ${DEFAULT_PORT_BASE})
  --log-level LEVEL  the relays' --log-level (default info)`;

/** Something started that must be stopped, last started first. */
type Stop = () => Promise<void>;

/** A relay subprocess. */
interface RelayProcess {
  readonly name: string;
  readonly port: number;
  readonly child: Deno.ChildProcess;
  /** Settles when its stdout and stderr are read to their end. */
  readonly drained: Promise<unknown>;
}

/**
 * Prints a line to standard output; a reader that went away (a closed
 * pipe) must not stop the clean-up.
 */
function say(line: string): void {
  try {
    console.log(line);
  } catch {
    // Nobody reads standard output any more.
  }
}

function fail(message: string): never {
  console.error(`cluster: ${message}`);
  Deno.exit(1);
}

/** The directory of `initdb` and `pg_ctl` (newest major version), or null. */
function findPostgresBin(): string | null {
  let majors: number[];
  try {
    majors = [...Deno.readDirSync(POSTGRES_LIB)].map((entry) => Number(entry.name))
      .filter(Number.isInteger).sort((a, b) => b - a);
  } catch {
    majors = [];
  }
  const dirs = [...majors.map((major) => `${POSTGRES_LIB}/${major}/bin`), ...pathDirs()];
  return dirs.find((dir) => isFile(`${dir}/initdb`) && isFile(`${dir}/pg_ctl`)) ?? null;
}

function pathDirs(): string[] {
  return [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/usr/bin"]
    .filter((dir) => dir !== "");
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** A free TCP port on 127.0.0.1: bound, then released for a subprocess to take. */
function freePort(): number {
  const probe = Deno.listen({ hostname: HOST, port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}

/** Runs a program to its end; throws with its output if it fails. */
async function run(program: string, args: string[]): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(program, { args, stdin: "null" })
    .output();
  if (code !== 0) {
    const text = new TextDecoder().decode(new Uint8Array([...stdout, ...stderr])).trim();
    throw new Error(`${program} ${args.join(" ")} failed (exit ${code}): ${text}`);
  }
}

/** The uid of `user` (`id -u USER`), or of this process. */
async function userId(user?: string): Promise<number> {
  const output = await new Deno.Command("id", { args: ["-u", ...(user ? [user] : [])] }).output();
  if (!output.success) throw new Error(`id -u ${user ?? ""} failed`);
  return Number(new TextDecoder().decode(output.stdout).trim());
}

/**
 * Creates and starts a PostgreSQL in `dir` (trust authentication for the
 * user `alphanet`, TCP on 127.0.0.1 only, its socket in `dir`); returns its
 * URL and how to stop it.
 */
async function startPostgres(bin: string, dir: string, port: number): Promise<[string, Stop]> {
  const asRoot = (await userId()) === 0;
  if (asRoot) await Deno.chown(dir, await userId("postgres"), null);
  const exec = (program: string, args: string[]): Promise<void> =>
    asRoot
      ? run("runuser", ["-u", "postgres", "--", `${bin}/${program}`, ...args])
      : run(`${bin}/${program}`, args);
  const data = `${dir}/data`;
  await exec("initdb", ["-D", data, "-U", "alphanet", "-A", "trust", "--no-sync", "-E", "UTF8"]);
  await exec("pg_ctl", [
    "-D",
    data,
    "-l",
    `${dir}/server.log`,
    "-w",
    "-t",
    String(START_MS / 1000),
    "-o",
    `-p ${port} -h ${HOST} -k ${dir}`,
    "start",
  ]);
  const stop = (): Promise<void> =>
    exec("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]).catch((error) =>
      console.error(`cluster: stopping PostgreSQL: ${error.message}`)
    );
  return [`postgres://alphanet@${HOST}:${port}/postgres`, stop];
}

/** Starts nats-server on `port`; resolves once it says it is ready. */
async function startNats(program: string, port: number): Promise<[string, Stop]> {
  const child = new Deno.Command(program, {
    args: ["-a", HOST, "-p", String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), START_MS);
  while (!log.includes("Server is ready")) {
    const { value, done } = await reader.read();
    if (done) {
      clearTimeout(timer);
      await child.status;
      throw new Error(`nats-server exited before it was ready: ${log.trim()}`);
    }
    log += value;
  }
  clearTimeout(timer);
  // Drained to the end, so the server never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Exited already (a Ctrl-C reaches the whole process group).
    }
    await child.status;
    await drained;
  };
  return [`nats://${HOST}:${port}`, stop];
}

/** Copies `stream` to standard error line by line, each line after `name`. */
async function prefixLines(stream: ReadableStream<Uint8Array>, name: string): Promise<void> {
  const encoder = new TextEncoder();
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    if (lines.length > 0) {
      await Deno.stderr.write(encoder.encode(lines.map((line) => `${name} | ${line}\n`).join("")));
    }
  }
  if (rest !== "") await Deno.stderr.write(encoder.encode(`${name} | ${rest}\n`));
}

/**
 * Starts `server.ts` with the cluster's flags and the narrow permissions a
 * relay needs: its own ports, the relay-link ports of the others,
 * PostgreSQL, NATS, and the key file. Resolves once it prints its
 * listening line.
 */
async function startRelay(
  name: string,
  port: number,
  meshPort: number,
  allMeshPorts: number[],
  engines: { registry: string; nats: string; pgPort: number; natsPort: number },
  keyFile: string,
  logLevel: string,
): Promise<RelayProcess> {
  const net = [port, ...allMeshPorts, engines.pgPort, engines.natsPort]
    .map((p) => `${HOST}:${p}`).join(",");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--config=${CONFIG}`,
      `--allow-net=${net}`,
      `--allow-read=${keyFile}`,
      "--allow-env", // postgres.js reads its PG* settings (PGPASSWORD, PGSSL, ...)
      "--v8-flags=--max-semi-space-size=8",
      SERVER,
      ...["--hostname", HOST, "--port", String(port), "--log-level", logLevel],
      ...["--registry", engines.registry, "--nats", engines.nats],
      ...["--mesh-port", String(meshPort), "--mesh-key-file", keyFile],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logged = prefixLines(child.stderr, name);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), START_MS);
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${name} exited before it listened (its log is above)`);
      text += value;
    }
    if (!text.startsWith(`listening on ${HOST}:${port}\n`)) {
      throw new Error(`${name} printed ${JSON.stringify(text)}`);
    }
  } catch (error) {
    try {
      child.kill("SIGTERM");
    } catch {
      // Exited already.
    }
    await child.status;
    await reader.cancel().catch(() => {});
    await logged.catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const drained = Promise.all([
    logged,
    (async () => {
      while (!(await reader.read()).done) { /* discard */ }
    })(),
  ]).catch(() => {});
  return { name, port, child, drained };
}

/** Writes a new mesh key: 32 random bytes as 64 hex digits, readable by this user only. */
async function writeMeshKey(path: string): Promise<void> {
  const key = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
  await Deno.writeTextFile(path, `${key}\n`, { mode: 0o600, createNew: true });
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      "port-base": { type: "string", default: String(DEFAULT_PORT_BASE) },
      "log-level": { type: "string", default: "info" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    say(USAGE);
    return 0;
  }
  const base = Number(values["port-base"]);
  if (!/^[0-9]+$/.test(values["port-base"]) || base > 65_535 - 2 * RELAYS + 1) {
    fail(`bad --port-base "${values["port-base"]}": expected 0 or a port up to 65530`);
  }
  const postgresBin = findPostgresBin();
  const natsServer = pathDirs().map((dir) => `${dir}/nats-server`).find(isFile) ?? null;
  if (postgresBin === null || natsServer === null) {
    const missing = [postgresBin === null && "postgresql", natsServer === null && "nats-server"]
      .filter(Boolean).join(" and ");
    fail(`${missing} not found: install with \`apt-get install -y postgresql nats-server\``);
  }
  const pick = (offset: number): number => base === 0 ? freePort() : base + offset;
  const relayPorts = Array.from({ length: RELAYS }, (_, i) => pick(i));
  const meshPorts = Array.from({ length: RELAYS }, (_, i) => pick(RELAYS + i));

  // Signals first: a Ctrl-C during the start still cleans up.
  const stopping = Promise.withResolvers<Deno.Signal>();
  const signals = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const handler = (): void => stopping.resolve(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const stops: Stop[] = [];
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cluster_" });
  stops.push(() => Deno.remove(dir, { recursive: true }));
  let code = 0;
  const relayPids: number[] = [];
  /** Set once the cluster is stopping: relays that exit from then on are expected to. */
  let stopped = false;
  try {
    // PostgreSQL's own folder may belong to another user (as root); the key stays this user's.
    await Deno.chmod(dir, 0o711);
    await Deno.mkdir(`${dir}/postgres`, { mode: 0o700 });
    const starting = (async () => {
      const pgPort = freePort();
      const [registry, stopPostgres] = await startPostgres(postgresBin, `${dir}/postgres`, pgPort);
      stops.push(stopPostgres);
      say(`postgres on ${HOST}:${pgPort} (${registry})`);
      const natsPort = freePort();
      const [nats, stopNats] = await startNats(natsServer, natsPort);
      stops.push(stopNats);
      say(`nats on ${HOST}:${natsPort}`);
      const keyFile = `${dir}/mesh.key`;
      await writeMeshKey(keyFile);
      const engines = { registry, nats, pgPort, natsPort };
      // One after the other: the first creates the schema, and each line says which relay failed.
      for (let i = 0; i < RELAYS; i++) {
        const relay = await startRelay(
          `relay ${i + 1}`,
          relayPorts[i],
          meshPorts[i],
          meshPorts,
          engines,
          keyFile,
          values["log-level"],
        );
        relayPids.push(relay.child.pid);
        stops.push(async () => {
          try {
            relay.child.kill("SIGTERM");
          } catch {
            // Exited already.
          }
          await relay.child.status;
          await relay.drained;
        });
        say(
          `${relay.name} on ${HOST}:${relayPorts[i]}, links on ${HOST}:${
            meshPorts[i]
          }, pid ${relay.child.pid}`,
        );
        void relay.child.status.then((status) => {
          if (stopped) return;
          say(`${relay.name} exited (${status.signal ?? `code ${status.code}`})`);
        });
      }
      say(`files in ${dir}`);
    })();
    const started = await Promise.race([starting.then(() => true), stopping.promise]);
    if (started === true) {
      const relays = relayPorts.map((port) => `${HOST}:${port}`);
      // The order of --server is the order a client tries the relays in.
      const from = (first: number): string =>
        [...relays.slice(first), ...relays.slice(0, first)].join(",");
      say(`ready: ${relays.join(",")}`);
      say("try, each in a terminal of its own:");
      say(`  deno task cli --server ${from(0)} --identity-file /tmp/alphanet-a listen -k 7000`);
      say(`  deno task cli --server ${from(2)} --identity-file /tmp/alphanet-b connect VIP:7000`);
      say(`  kill -9 ${relayPids[0]}   (relay 1: its clients come back on relay 2, same address)`);
      say("Ctrl-C stops everything.");
      await stopping.promise;
    }
    stopped = true;
    await starting.catch(() => {}); // a start cut short by a signal finishes, then is undone
  } catch (error) {
    console.error(`cluster: cannot start: ${error instanceof Error ? error.message : error}`);
    code = 1;
  } finally {
    for (const stop of stops.reverse()) {
      await stop().catch((error) => console.error(`cluster: ${error.message}`));
    }
    for (const [signal, handler] of signals) Deno.removeSignalListener(signal, handler);
  }
  say("stopped");
  return code;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
