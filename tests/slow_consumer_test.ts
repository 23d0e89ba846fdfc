/**
 * The relay's memory stays bounded by the window when a fast sender meets a
 * slow reader: measured on the real `server.ts` subprocess.
 */

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { DEFAULT_WINDOW_BYTES } from "../protocol/mod.ts";
import { rssKiB, startServer } from "./_helpers/server_process.ts";

const MiB = 1024 * 1024;

Deno.test("relay RSS stays bounded while a fast sender pushes 256 MiB to a slow reader", async () => {
  const server = await startServer(["--port", "0", "--db", ":memory:", "--log-level", "silent"]);
  const alice = await connect({ port: server.port, identity: "slow-consumer-sender-id" });
  const bob = await connect({ port: server.port, identity: "slow-consumer-reader-id" });
  try {
    const listener = bob.listen({ port: 80 });
    const [outbound, inbound] = await Promise.all([
      alice.connect({ hostname: bob.virtualIp, port: 80 }),
      listener.accept(),
    ]);
    listener.close();
    const baseline = await rssKiB(server.pid);
    // The sender offers 256 MiB at once; only credit holds it back.
    const sending = outbound.write(new Uint8Array(256 * MiB)).catch((error) => error);
    const buffer = new Uint8Array(DEFAULT_WINDOW_BYTES);
    let peakGrowthKiB = 0;
    let received = 0;
    // The reader takes one window per step and measures the relay in between: 64 bounded steps.
    for (let step = 0; step < 64; step++) {
      let taken = 0;
      while (taken < buffer.length) {
        const count = await inbound.read(buffer.subarray(taken));
        assert.ok(count !== null, "stream must not end early");
        taken += count;
      }
      received += taken;
      peakGrowthKiB = Math.max(peakGrowthKiB, (await rssKiB(server.pid)) - baseline);
    }
    assert.equal(received, 64 * DEFAULT_WINDOW_BYTES);
    // Unbounded buffering would hold most of the 256 MiB; a 16 MiB ceiling leaves room for
    // allocator and GC noise while still failing any relay that queues past credit.
    assert.ok(
      peakGrowthKiB < 16 * 1024,
      `relay RSS grew by ${peakGrowthKiB} KiB while holding a 256 KiB window`,
    );
    outbound.close();
    inbound.close();
    await sending;
  } finally {
    await alice.close();
    await bob.close();
    assert.equal(await server.stop(), 0);
  }
});
