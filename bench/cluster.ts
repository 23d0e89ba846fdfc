/**
 * The bench's cluster: `server.ts` relays as subprocesses sharing a private
 * PostgreSQL registry (a fresh database per cluster), a private nats-server
 * and a mesh key file, each on free loopback ports. A relay prints
 * `listening on HOST:PORT`, then `mesh on HOST:PORT` once its relay-link
 * listener is up.
 *
 * @module
 */

import type { Engines } from "./_cluster_engines.ts";
import { Proc, relayArgs } from "./_proc.ts";

/** One relay of a bench cluster (or a lone relay on a given registry). */
export interface BenchRelay {
  proc: Proc;
  /** Its client port. */
  port: number;
}

const START_MS = 30_000;

/**
 * Starts a relay on the registry `registry` (`--db FILE` or `--registry URL`
 * flags); with `engines`, clustered (`--nats`, `--mesh-port 0`,
 * `--mesh-key-file`). `denoFlags` go before the script (e.g. --cpu-prof).
 */
export async function startBenchRelay(
  registry: string[],
  engines: Engines | null,
  denoFlags: string[] = [],
  name = "relay",
): Promise<BenchRelay> {
  const cluster = engines === null ? [] : [
    "--nats",
    engines.natsUrl!,
    "--mesh-port",
    "0",
    "--mesh-key-file",
    engines.keyFile,
  ];
  const proc = new Proc(name, relayArgs(denoFlags, cluster, registry));
  try {
    const line = await proc.line(START_MS);
    const match = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line);
    if (!match) throw new Error(`${name}: unexpected first line ${JSON.stringify(line)}`);
    if (engines !== null) {
      // A clustered relay is ready once its link port listens too.
      const meshLine = await proc.line(START_MS);
      if (!/^mesh on [^ ]+:\d+$/.test(meshLine)) {
        throw new Error(`${name}: expected "mesh on", got ${JSON.stringify(meshLine)}`);
      }
    }
    return { proc, port: Number(match[1]) };
  } catch (error) {
    await proc.terminate(2000);
    throw error;
  }
}

/**
 * Starts `count` clustered relays on a fresh database of `engines`, one at a
 * time (the first creates the schema); `denoFlagsOf(i)` gives relay i's Deno
 * flags. On a failure the relays already started are stopped.
 */
export async function startBenchCluster(
  engines: Engines,
  count: number,
  denoFlagsOf: (i: number) => string[] = () => [],
): Promise<BenchRelay[]> {
  const url = await engines.database();
  const relays: BenchRelay[] = [];
  try {
    for (let i = 0; i < count; i++) {
      relays.push(
        await startBenchRelay(["--registry", url], engines, denoFlagsOf(i), `relay${i + 1}`),
      );
    }
  } catch (error) {
    await Promise.all(relays.map((relay) => relay.proc.terminate(2000)));
    throw error;
  }
  return relays;
}
