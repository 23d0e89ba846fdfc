/** One echoed exchange over a virtual connection: the serving side and the checking side. */

import assert from "node:assert/strict";
import type { AlphaNetClient, VirtualListener } from "../../mod.ts";
import { STEP_MS, withTimeout } from "./async.ts";
import { text, utf8 } from "./bytes.ts";
import { readAll } from "./streams.ts";

/** Serves one echo on `listener`: accepts, reads to end of stream, writes it back, closes. */
export async function echoOnce(listener: VirtualListener): Promise<void> {
  const conn = await withTimeout(listener.accept(), STEP_MS, "accept");
  try {
    await conn.write(await readAll(conn));
  } finally {
    conn.close();
  }
}

/**
 * `from` dials `to`:`port` (a listener that echoes), sends `message`, ends
 * its side and must get `message` back before the echo ends.
 */
export async function assertEcho(
  from: AlphaNetClient,
  to: string,
  port: number,
  message: string,
): Promise<void> {
  const conn = await withTimeout(from.connect({ hostname: to, port }), STEP_MS, "dial");
  try {
    await conn.write(utf8(message));
    await conn.closeWrite();
    assert.equal(text(await withTimeout(readAll(conn), STEP_MS, "echo")), message);
  } finally {
    conn.close();
  }
}
