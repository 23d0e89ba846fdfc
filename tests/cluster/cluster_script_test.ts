/**
 * The cluster people try (examples/cluster/start.ts, docs/CLUSTER.md "Try
 * it"), run as a subprocess on free ports: it says it is ready, a client of
 * its first relay and a client of its third reach each other across the
 * relays, and SIGTERM stops every process it started and removes its files.
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { randomIdentity, text, utf8 } from "../_helpers/bytes.ts";
import { clusterTest } from "../_helpers/cluster_engines.ts";
import { Lines } from "../_helpers/line_reader.ts";
import { readExactly } from "../_helpers/streams.ts";

const SCRIPT = new URL("../../examples/cluster/start.ts", import.meta.url).pathname;
/** initdb, two engines and three relays, one after the other. */
const START_MS = 120_000;
/** A virtual port for the test's listener. */
const PORT = 7000;

/** The `HOST:PORT` at the end of `prefix HOST:PORT...`. */
function portOf(line: string): number {
  const match = /^[a-z0-9 ]+ on 127\.0\.0\.1:(\d+)/.exec(line);
  assert.ok(match, `no port in ${JSON.stringify(line)}`);
  return Number(match[1]);
}

/** Whether a process with `pid` exists (`ps -p`, which exits 1 when none does). */
async function alive(pid: number): Promise<boolean> {
  const { code } = await new Deno.Command("ps", {
    args: ["-o", "pid=", "-p", String(pid)],
    stdout: "null",
    stderr: "null",
  }).output();
  return code === 0;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return false;
    throw error;
  }
}

clusterTest(
  "the cluster script's relays carry a connection between clients of different relays; SIGTERM stops everything",
  async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT, "--port-base", "0", "--log-level", "warn"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = new Lines(child.stdout);
    const log = new Lines(child.stderr);
    const logged = log.rest();
    const enginePorts: number[] = [];
    const relayPids: number[] = [];
    let dir = "";
    let status: Deno.CommandStatus;
    try {
      enginePorts.push(portOf(await out.expect("postgres on ", START_MS)));
      enginePorts.push(portOf(await out.expect("nats on ", START_MS)));
      for (let i = 1; i <= 3; i++) {
        const line = await out.expect(`relay ${i} on `, START_MS);
        relayPids.push(Number(/ pid (\d+)$/.exec(line)?.[1]));
      }
      dir = (await out.expect("files in ", STEP_MS)).slice("files in ".length);
      const relays = (await out.expect("ready: ", STEP_MS)).slice("ready: ".length).split(",");
      assert.equal(relays.length, 3);

      const joining = { reconnect: false, requestTimeoutMs: 10_000 } as const;
      await using first = await withTimeout(
        connect({ relays: [relays[0]], identity: randomIdentity(), ...joining }),
        STEP_MS,
        "a client to join relay 1",
      );
      await using third = await withTimeout(
        connect({ relays: [relays[2]], identity: randomIdentity(), ...joining }),
        STEP_MS,
        "a client to join relay 3",
      );
      assert.equal(first.relay, relays[0]);
      assert.equal(third.relay, relays[2]);
      assert.notEqual(first.virtualIp, third.virtualIp);

      await using listener = first.listen({ port: PORT });
      const accepted = listener.accept();
      accepted.catch(() => {}); // awaited below; a failed dial must not leave it unhandled
      // The first cross-relay request finds relay 1 through NATS and opens the relay link.
      await using dialed = await withTimeout(
        third.connect({ hostname: first.virtualIp, port: PORT }),
        STEP_MS * 2,
        "a connection from relay 3's client to relay 1's",
      );
      await using served = await withTimeout(accepted, STEP_MS, "the accept on relay 1's client");
      assert.equal(served.remoteAddr.hostname, third.virtualIp);

      await dialed.write(utf8("ping across relays"));
      assert.equal(
        text(await withTimeout(readExactly(served, 18), STEP_MS, "bytes 3 → 1")),
        "ping across relays",
      );
      await served.write(utf8("pong"));
      assert.equal(text(await withTimeout(readExactly(dialed, 4), STEP_MS, "bytes 1 → 3")), "pong");
    } finally {
      try {
        child.kill("SIGTERM");
      } catch {
        // Exited already: its status says how.
      }
      status = await child.status;
      await out.rest();
      await logged;
    }
    assert.equal(status.code, 0, `exit ${status.code}; log:\n${log.seen}`);
    assert.match(out.seen, /\nstopped\n$/);
    for (const pid of relayPids) assert.equal(await alive(pid), false, `relay pid ${pid} runs on`);
    for (const port of enginePorts) assert.equal(await listening(port), false, `port ${port}`);
    assert.ok(dir.startsWith("/"), `files line: ${dir}`);
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
  },
);
