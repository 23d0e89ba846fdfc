/**
 * Baseline: a plain two-hop TCP proxy. For each accepted connection it
 * connects to the target and copies both directions with a read/write loop,
 * one reused 64 KiB buffer per direction. Prints "ready <port>"; exits on
 * SIGTERM or when stdin closes.
 *
 * Usage: deno run -A bench/proxy.ts <targetPort>
 *
 * @module
 */

const BUFFER_BYTES = 64 * 1024;
const targetPort = Number(Deno.args[0]);

async function pump(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(BUFFER_BYTES);
  try {
    while (true) {
      const count = await from.read(buffer);
      if (count === null) break;
      let written = 0;
      while (written < count) written += await to.write(buffer.subarray(written, count));
    }
    await to.closeWrite();
  } catch {
    // Reset on either side ends this direction.
  }
}

async function serve(client: Deno.TcpConn): Promise<void> {
  let target: Deno.TcpConn;
  try {
    target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
  } catch {
    client.close();
    return;
  }
  client.setNoDelay(true);
  target.setNoDelay(true);
  await Promise.all([pump(client, target), pump(target, client)]);
  for (const conn of [client, target]) {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 4096 });
const stop = () => Deno.exit(0);
Deno.addSignalListener("SIGTERM", stop);
// The orchestrator closing our stdin also means stop.
(async () => {
  for await (const _ of Deno.stdin.readable) { /* ignore */ }
  stop();
})();
console.log(`ready ${listener.addr.port}`);
for await (const conn of listener) void serve(conn);
