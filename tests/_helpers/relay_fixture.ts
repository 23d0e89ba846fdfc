/**
 * A real relay on an ephemeral port of 127.0.0.1 with its own temp dir, and
 * a probe that proves it still serves.
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import { Relay, type RelayOptions } from "../../server.ts";
import { STEP_MS, withTimeout } from "./async.ts";
import { randomIdentity } from "./bytes.ts";

/** A relay started for one test, with the temp dir holding its database. */
export interface TestRelay {
  readonly relay: Relay;
  readonly port: number;
  /** The temp dir; removed by {@linkcode TestRelay.close} or {@linkcode TestRelay.cleanup}. */
  readonly dir: string;
  /** The database path the relay was started with. */
  readonly db: string;
  /** Closes the relay, then removes the temp dir. */
  close(): Promise<void>;
  /** Removes the temp dir only (for tests that close the relay themselves). */
  cleanup(): Promise<void>;
}

/**
 * Starts a relay on 127.0.0.1 on an ephemeral port, logging nothing, with
 * its database in a fresh temp dir unless `opts.db` says otherwise.
 */
export async function startRelay(opts: RelayOptions = {}): Promise<TestRelay> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_test_" });
  const db = opts.db ?? `${dir}/alphanet.db`;
  let relay: Relay;
  try {
    relay = await Relay.start({
      logLevel: "silent",
      ...opts,
      hostname: "127.0.0.1",
      port: 0,
      db,
    });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  let removed = false;
  const cleanup = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await Deno.remove(dir, { recursive: true });
  };
  return {
    relay,
    port: relay.addr.port,
    dir,
    db,
    async close(): Promise<void> {
      try {
        await withTimeout(relay.close(), STEP_MS, "relay.close()");
      } finally {
        await cleanup();
      }
    },
    cleanup,
  };
}

/** Connects a fresh real client and closes it: proof that the relay still serves. */
export async function assertRelayServes(port: number): Promise<void> {
  const probe = await withTimeout(
    connect({ port, identity: randomIdentity() }),
    STEP_MS,
    "a fresh client to join the relay",
  );
  try {
    const status = await withTimeout(
      probe.status({ hostname: probe.virtualIp, port: 1 }),
      STEP_MS,
      "the fresh client's status request",
    );
    assert.deepEqual(status, { online: true, listening: false });
  } finally {
    await probe.close();
  }
}

/**
 * Runs `test` against an in-process relay with an in-memory registry that
 * serves its WebSocket carrier on an ephemeral port too, then closes it.
 *
 * @param options The relay's options (its limits and time-outs).
 * @param test The test, given the relay and its WebSocket port.
 */
export async function withWebSocketRelay(
  options: RelayOptions,
  test: (relay: TestRelay, websocketPort: number) => Promise<void>,
): Promise<void> {
  const relay = await startRelay({ db: ":memory:", websocketPort: 0, ...options });
  try {
    await test(relay, relay.relay.websocketAddr!.port);
  } finally {
    await relay.close();
  }
}
