/**
 * A cluster for the tests: a private PostgreSQL and nats-server, a mesh key
 * file, and `server.ts` relays as subprocesses sharing them, each on free
 * loopback ports.
 */

import { randomHex } from "./bytes.ts";
import { type Nats, type Postgres, startNats, startPostgres } from "./cluster_engines.ts";
import { type ServerProcess, startServer } from "./server_process.ts";

/** A running test cluster. */
export interface TestCluster extends AsyncDisposable {
  readonly postgres: Postgres;
  /** The NATS server; replaced by {@linkcode restartNats}. */
  nats: Nats;
  readonly keyFile: string;
  /** The relays started, in order (a killed one stays in the list). */
  readonly relays: ServerProcess[];
  /** `127.0.0.1:PORT` of each relay, in order. */
  addrs(): string[];
  /** Starts one more relay of the cluster, with `args` added to its flags. */
  startRelay(args?: string[]): Promise<ServerProcess>;
  /** Stops nats-server, runs `meanwhile` during the outage, and starts it again on its port. */
  restartNats(meanwhile: () => Promise<void>): Promise<void>;
  /** Stops every relay still running, then NATS and PostgreSQL, and removes the key file. */
  close(): Promise<void>;
}

/**
 * Flags every test relay runs with: quick time-outs so failures show within
 * the tests' steps, and per-IP limits lifted (every test client comes from
 * 127.0.0.1).
 */
const TEST_RELAY_FLAGS = [
  "--keepalive",
  "1",
  "--peer-timeout",
  "3",
  "--max-handshakes-per-ip",
  "0",
  "--max-new-identities-per-ip",
  "0",
  "--log-level",
  "warn",
];

/** Starts PostgreSQL, NATS and `relays` relays. */
export async function startCluster(relays = 3, args: string[] = []): Promise<TestCluster> {
  const postgres = await startPostgres();
  let nats: Nats | null = null;
  const keyFile = await Deno.makeTempFile({ prefix: "alphanet-mesh-key-" });
  const started: ServerProcess[] = [];
  /** Stops what runs (relays, NATS, PostgreSQL) and removes the key file. */
  const stopAll = async (): Promise<void> => {
    await Promise.all(started.map((relay) => relay.stop().catch(() => 0)));
    await nats?.stop();
    await postgres.stop();
    await Deno.remove(keyFile).catch(() => {});
  };
  try {
    nats = await startNats();
    await Deno.writeTextFile(keyFile, `${randomHex(32)}\n`, { mode: 0o600 });
    const cluster: TestCluster = {
      postgres,
      nats,
      keyFile,
      relays: started,
      addrs: () => started.map((relay) => `127.0.0.1:${relay.port}`),
      startRelay: async (extra: string[] = []) => {
        const relay = await startServer([
          "--port",
          "0",
          "--registry",
          postgres.url,
          "--nats",
          cluster.nats.url,
          "--mesh-port",
          "0",
          "--mesh-key-file",
          keyFile,
          ...TEST_RELAY_FLAGS,
          ...args,
          ...extra,
        ]);
        started.push(relay);
        return relay;
      },
      restartNats: async (meanwhile) => {
        const port = cluster.nats.port;
        await cluster.nats.stop();
        await meanwhile();
        cluster.nats = nats = await startNats(port);
      },
      close: stopAll,
      [Symbol.asyncDispose]: () => cluster.close(),
    };
    // One at a time: the first creates the schema (the others would wait on its lock anyway).
    for (let i = 0; i < relays; i++) await cluster.startRelay();
    return cluster;
  } catch (error) {
    await stopAll();
    throw error;
  }
}
