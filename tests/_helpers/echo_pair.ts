/** Two real clients joined by one echoed virtual connection. */

import assert from "node:assert/strict";
import { type AlphaNetClient, type ClientOptions, connect, type VirtualConn } from "../../mod.ts";
import { STEP_MS, withTimeout } from "./async.ts";
import { randomIdentity, text, utf8 } from "./bytes.ts";
import { readExactly } from "./streams.ts";

/** Two real clients joined by one virtual connection that the owner echoes. */
export interface EchoPair {
  readonly owner: AlphaNetClient;
  readonly requester: AlphaNetClient;
  /** The requester's end of the echoed connection. */
  readonly conn: VirtualConn;
  /** Sends a fresh message and checks that it comes back unchanged. */
  assertEchoes(what: string): Promise<void>;
  /** Closes the connection and both clients. Idempotent. */
  close(): Promise<void>;
}

/** Largest number of reads the echo side of an {@linkcode EchoPair} serves. */
const ECHO_MAX_READS = 1_000_000;

/**
 * Joins two clients (fresh identities) to the relay on `port`, connects the
 * second to the first's listener on virtual port `virtualPort`, and echoes.
 */
export async function startEchoPair(
  port: number,
  options: ClientOptions = {},
  virtualPort = 7,
): Promise<EchoPair> {
  const join = (who: string) =>
    withTimeout(connect({ port, identity: randomIdentity(), ...options }), STEP_MS, who);
  const owner = await join("the echo owner to join");
  let requester: AlphaNetClient;
  try {
    requester = await join("the echo requester to join");
  } catch (error) {
    await owner.close();
    throw error;
  }
  let conn: VirtualConn;
  let ownerEnd: VirtualConn;
  try {
    const listener = owner.listen({ port: virtualPort });
    try {
      const accepting = listener.accept();
      conn = await withTimeout(
        requester.connect({ hostname: owner.virtualIp, port: virtualPort }),
        STEP_MS,
        "the echo requester to connect",
      );
      ownerEnd = await withTimeout(accepting, STEP_MS, "the echo owner to accept");
    } finally {
      listener.close();
    }
  } catch (error) {
    await requester.close();
    await owner.close();
    throw error;
  }
  const served = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let reads = 0; reads < ECHO_MAX_READS; reads++) {
        const count = await ownerEnd.read(buffer);
        if (count === null) return;
        await ownerEnd.write(buffer.slice(0, count));
      }
    } catch {
      // The link went away under the echo: the pair's own checks report that.
    } finally {
      ownerEnd.close();
    }
  })();
  let sent = 0;
  let closing: Promise<void> | null = null;
  return {
    owner,
    requester,
    conn,
    async assertEchoes(what: string): Promise<void> {
      const message = utf8(`echo #${++sent}: ${what}`);
      await withTimeout(conn.write(message), STEP_MS, `echo write (${what})`);
      const back = await withTimeout(readExactly(conn, message.length), STEP_MS, `echo (${what})`);
      assert.equal(text(back), text(message), `the echo pair (${what})`);
    },
    close(): Promise<void> {
      closing ??= (async () => {
        conn.close();
        await withTimeout(served, STEP_MS, "the echo owner to finish");
        await requester.close();
        await owner.close();
      })();
      return closing;
    },
  };
}
