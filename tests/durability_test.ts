/**
 * The registry survives the relay process dying: `kill -9` in the middle of
 * a burst of joins loses no address a client was given, and SIGTERM shuts
 * down cleanly. The real `server.ts` runs as a subprocess on a SQLite file.
 *
 * A client holding a VirtualIP implies a committed row: the relay sends
 * VirtualIP only after `Registry.assign` returned (server/membership.ts), and
 * `assign` commits its insert (with the walk's cursor) before it returns
 * (server/registry.ts), so the row is in the WAL before the frame is queued. With `synchronous = NORMAL`
 * the WAL is not fsynced per commit: a process kill loses nothing, a power
 * cut could.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type AlphaNetClient, connect, RelayError } from "../mod.ts";
import { formatIpv4, reasonName } from "../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { identityFromSecret } from "../client/identity.ts";
import { utf8 } from "./_helpers/bytes.ts";
import { type ServerProcess, startServer } from "./_helpers/server_process.ts";
import { readAll } from "./_helpers/streams.ts";

/** Runs `task` for every item with at most `limit` in flight; returns settled results in order. */
async function pool<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    // Each pass takes one item: at most items.length passes over all workers.
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = { status: "fulfilled", value: await task(items[index], index) };
      } catch (reason) {
        results[index] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** `PRAGMA integrity_check` and the registry rows, read through a read-only connection. */
function inspect(path: string): { integrity: string[]; rows: Map<string, number> } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const integrity = (db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[])
      .map((row) => row.integrity_check);
    const rows = new Map<string, number>();
    for (const row of db.prepare("SELECT key, address FROM clients").all()) {
      const { key, address } = row as { key: string; address: number };
      rows.set(key, address);
    }
    return { integrity, rows };
  } finally {
    db.close();
  }
}

/** The registry key the relay stores for an identity secret: its derived public key's. */
async function keyOf(identity: string): Promise<string> {
  const { publicKey } = await identityFromSecret(identity);
  return `key:${Array.from(publicKey, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function serverArgs(db: string): string[] {
  // Every join here is a new identity from 127.0.0.1: no hourly allowance of new addresses.
  return ["--port", "0", "--db", db, "--log-level", "silent", "--max-new-identities-per-ip", "0"];
}

Deno.test("kill -9 during a burst of 300 joins loses no virtual IP a client was given, and the registry stays intact", async () => {
  const TOTAL = 300;
  const CONCURRENCY = 30;
  const KILL_AFTER = 150;
  const dir = await Deno.makeTempDir({ prefix: "alphanet_durability_" });
  const db = `${dir}/alphanet.db`;
  const identities = Array.from(
    { length: TOTAL },
    (_, i) => `durability-${i}-${crypto.randomUUID()}`,
  );
  const given = new Map<string, string>();
  let server: ServerProcess | null = await startServer(serverArgs(db));
  try {
    const first = server;
    let killed: Promise<Deno.CommandStatus> | null = null;
    const failedBeforeKill: unknown[] = [];
    const joins = await withTimeout(
      pool(identities, CONCURRENCY, async (identity) => {
        if (killed !== null) return "skipped";
        let client: AlphaNetClient;
        try {
          // Bounded by the client's own handshake time-out; a refused TCP connect fails at once.
          client = await connect({
            port: first.port,
            identity,
            reconnect: false,
            handshakeTimeoutMs: STEP_MS,
          });
        } catch (error) {
          // Joins in flight when the server dies fail; none may fail before.
          if (killed === null) failedBeforeKill.push(error);
          throw error;
        }
        given.set(identity, client.virtualIp);
        if (given.size >= KILL_AFTER && killed === null) killed = first.kill("SIGKILL");
        await client.close();
        return "joined";
      }),
      60_000,
      "the burst of joins",
    );
    assert.ok(killed !== null, `the server was never killed: ${given.size} joins`);
    const status = await withTimeout(killed as Promise<Deno.CommandStatus>, STEP_MS, "the kill");
    server = null;
    assert.equal(status.signal, "SIGKILL");
    assert.deepEqual(failedBeforeKill, [], "joins failed before the kill");
    const outcomes = joins.map((result) => result.status === "fulfilled" ? result.value : "failed");
    console.log(
      `${given.size} joins recorded; at the kill: ${
        outcomes.filter((outcome) => outcome === "failed").length
      } in flight failed, ${outcomes.filter((outcome) => outcome === "skipped").length} skipped`,
    );
    assert.ok(given.size >= KILL_AFTER);

    // Right after the crash: the file (with its WAL) is consistent and holds every address given.
    const crashed = inspect(db);
    assert.deepEqual(crashed.integrity, ["ok"], "integrity_check after kill -9");
    for (const [identity, vip] of given) {
      const address = crashed.rows.get(await keyOf(identity));
      assert.ok(address !== undefined, `the registry lost ${identity} (given ${vip})`);
      assert.equal(formatIpv4(address), vip, `the registry moved ${identity}`);
    }

    // The restarted relay gives every recorded identity the same address back.
    server = await startServer(serverArgs(db));
    const second = server;
    const rejoins = await withTimeout(
      pool([...given], CONCURRENCY, async ([identity, vip]) => {
        const client = await connect({ port: second.port, identity, reconnect: false });
        try {
          assert.equal(client.virtualIp, vip, `${identity} came back with another address`);
        } finally {
          await client.close();
        }
      }),
      60_000,
      "every recorded identity to rejoin",
    );
    const rejoinFailure = rejoins.find((result) => result.status === "rejected");
    if (rejoinFailure) throw (rejoinFailure as PromiseRejectedResult).reason;
    assert.deepEqual(inspect(db).integrity, ["ok"], "integrity_check while the relay runs");
    assert.equal(await second.stop(), 0);
    server = null;
    assert.deepEqual(inspect(db).integrity, ["ok"], "integrity_check after a clean stop");
  } finally {
    if (server !== null) await server.kill("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM closes every client with Error(Shutdown), exits 0 within 2 s, and leaves an intact registry", async () => {
  const CLIENTS = 10;
  const dir = await Deno.makeTempDir({ prefix: "alphanet_sigterm_" });
  const db = `${dir}/alphanet.db`;
  let server: ServerProcess | null = await startServer(serverArgs(db));
  const clients: AlphaNetClient[] = [];
  try {
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(
        await withTimeout(
          connect({
            port: server.port,
            identity: `sigterm-${i}-${crypto.randomUUID()}`,
            reconnect: false,
          }),
          STEP_MS,
          `client ${i} to join`,
        ),
      );
    }
    // Two of them have a connection busy with data when the signal comes.
    const [owner, requester] = clients;
    const listener = owner.listen({ port: 80 });
    const accepting = listener.accept();
    const conn = await withTimeout(
      requester.connect({ hostname: owner.virtualIp, port: 80 }),
      STEP_MS,
      "the busy connection",
    );
    const inbound = await withTimeout(accepting, STEP_MS, "the owner to accept");
    const reading = readAll(inbound).then(() => "ended", (error) => error);
    const writing = (async () => {
      const chunk = new Uint8Array(16 * 1024);
      for (let i = 0; i < 100_000; i++) await conn.write(chunk);
      return "wrote everything";
    })().catch((error) => error);
    await withTimeout(conn.write(utf8("warm-up")), STEP_MS, "a first write");

    const signalledAt = performance.now();
    const status = await withTimeout(server.kill("SIGTERM"), STEP_MS, "the relay to exit");
    const exitedAfter = performance.now() - signalledAt;
    server = null;
    assert.equal(status.code, 0, "the relay exits 0 on SIGTERM");
    assert.ok(exitedAfter <= 2_000, `the relay took ${Math.round(exitedAfter)} ms to exit`);

    const reasons = await withTimeout(
      Promise.all(clients.map((client) => client.closed)),
      STEP_MS,
      "every client to be closed",
    );
    for (const reason of reasons) {
      assert.ok(reason instanceof RelayError, `closed with ${reason}, not a RelayError`);
      assert.equal(reasonName(reason.reason), "Shutdown");
    }
    const [read, wrote] = await withTimeout(
      Promise.all([reading, writing]),
      STEP_MS,
      "the busy connection to end on both sides",
    );
    assert.notEqual(wrote, "wrote everything", "writes fail once the relay is gone");
    assert.ok(read === "ended" || read instanceof Error);
    listener.close();
    conn.close();
    inbound.close();

    const { integrity, rows } = inspect(db);
    assert.deepEqual(integrity, ["ok"]);
    assert.equal(rows.size, CLIENTS);
  } finally {
    for (const client of clients) await client.close();
    if (server !== null) await server.kill("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
