/**
 * The browser path of the client, in a process of its own: deletes the
 * `Deno` global before importing mod.ts; checks that a TCP join is refused
 * with a TypeError that says to use a URL; joins the relay at the WebSocket
 * URL given with two clients, connects one to the other's listener, echoes
 * 2 MiB, toggles unref/ref, and closes everything.
 * Any Deno API touched on the way throws (the global is gone). Prints one
 * JSON line.
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-read _websocket_no_deno_child.ts ws://HOST:PORT/
 */

const MOD = new URL("../../mod.ts", import.meta.url).href;
const real = globalThis.Deno;
const url = real.args[0];
const stdout = real.stdout;
const print = (value: unknown): void =>
  void stdout.writeSync(new TextEncoder().encode(JSON.stringify(value) + "\n"));

delete (globalThis as { Deno?: unknown }).Deno;
const mod = await import(MOD) as typeof import("../../mod.ts");

const tcpRefused = await mod.connect({ port: 1 }).then(
  () => false,
  (error) => error instanceof TypeError && /this platform has no TCP/.test(error.message),
);
const owner = await mod.connect({ url, identity: await mod.generateIdentity() });
const requester = await mod.connect({ url, identity: "a secret of sixteen bytes or more" });
requester.unref();
requester.ref();
const listener = owner.listen({ port: 7 });
const accepting = listener.accept();
const conn = await requester.connect({ hostname: owner.virtualIp, port: 7 });
const served = await accepting;
const echo = (async () => {
  const buffer = new Uint8Array(64 * 1024);
  // Bounded by the bytes sent: every read returns at least one byte or the end.
  for (let reads = 0; reads < 1_000_000; reads++) {
    const count = await served.read(buffer);
    if (count === null) break;
    await served.write(buffer.slice(0, count));
  }
  await served.closeWrite();
})();
const sent = new Uint8Array(2 * 1024 * 1024).map((_, i) => (i * 31 + 7) & 0xff);
const writing = conn.write(sent).then(() => conn.closeWrite());
const back = new Uint8Array(await new Response(conn.readable).arrayBuffer());
await writing;
await echo;
served.close();
listener.close();
await requester.close();
await owner.close();
print({
  tcpRefused,
  denoAbsent: typeof (globalThis as { Deno?: unknown }).Deno === "undefined",
  distinct: owner.virtualIp !== requester.virtualIp,
  echoed: back.length === sent.length && back.every((byte, i) => byte === sent[i]),
});
