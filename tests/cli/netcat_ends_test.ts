/**
 * How a netcat exchange ends, as real subprocesses against the real relay:
 * -N/--shutdown-on-eof half-close at the end of input, -q closes SEC seconds
 * after it, and connect's failure lines (whole lines: offline, nothing
 * listening, denied, relay down, rate-limited).
 */

import assert from "node:assert/strict";
import { connect, type VirtualConn } from "../../mod.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { text, utf8 } from "../_helpers/bytes.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { readAll } from "../_helpers/streams.ts";
import {
  as,
  assertOneLineError,
  freePort,
  OFFLINE_VIP,
  rateLimitedRelay,
  relay,
  runCli,
  spawnNetcat,
} from "./_helpers.ts";

Deno.test("cli: connect's failure lines name the action once (offline, nothing listening, denied, relay down, rate-limited)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  // One request a second: connect's second request (status, then connect) is refused.
  const strict = await rateLimitedRelay();
  const target = await connect({ port: server.port, identity: "cli-test-netcat-target-secret" });
  const limited = await connect({ port: strict.port, identity: "cli-test-limited-target-secret" });
  try {
    using _listening = target.listen({ port: 80 });
    using _denying = target.listen({ port: 82, accept: () => false });
    using _limited = limited.listen({ port: 80 });
    const vip = target.virtualIp;
    const deadPort = freePort();
    const [offline, nothing, denied, down, rateLimited] = await Promise.all([
      runCli(["connect", `${OFFLINE_VIP}:80`, ...as(server, dir, "c1")]),
      runCli(["connect", `${vip}:81`, ...as(server, dir, "c2")]),
      runCli(["connect", `${vip}:82`, ...as(server, dir, "c3")]),
      runCli(["connect", `${vip}:80`, "--server", `127.0.0.1:${deadPort}`]),
      runCli(["connect", `${limited.virtualIp}:80`, ...as(strict, dir, "c4")]),
    ]);
    assertOneLineError(
      offline,
      1,
      `alphanet: cannot connect to ${OFFLINE_VIP}:80: host is offline`,
    );
    assertOneLineError(nothing, 1, `alphanet: cannot connect to ${vip}:81: nothing listens there`);
    assertOneLineError(denied, 1, `alphanet: cannot connect to ${vip}:82: connection denied`);
    assertOneLineError(
      down,
      1,
      `alphanet: cannot join relay at 127.0.0.1:${deadPort}: connection refused (os error 111)`,
    );
    assertOneLineError(
      rateLimited,
      1,
      `alphanet: cannot connect to ${limited.virtualIp}:80: ` +
        "the relay refused the request: RateLimited",
    );
  } finally {
    await target.close();
    await limited.close();
    await strict.stop();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Accepts one connection on `port` of a library client. */
async function acceptOne(
  server: ServerProcess,
  identity: string,
  port: number,
): Promise<{ vip: string; conn: Promise<VirtualConn>; close(): Promise<void> }> {
  const peer = await connect({ port: server.port, identity });
  const listener = peer.listen({ port });
  return {
    vip: peer.virtualIp,
    conn: listener.accept().finally(() => listener.close()),
    close: () => peer.close(),
  };
}

Deno.test("cli: connect -q SEC closes SEC after the end of its input while the peer keeps its side open", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const peer = await acceptOne(server, "cli-test-quit-peer-secret", 90);
  const connector = spawnNetcat(
    ["connect", `${peer.vip}:90`, "-q", "1", ...as(server, dir, "q")],
    "piped",
  );
  try {
    const writer = connector.child.stdin.getWriter();
    await writer.write(utf8("hello\n"));
    await writer.close();
    const conn = await withTimeout(peer.conn, STEP_MS, "the connection at the peer");
    try {
      // The peer reads to the end of the input (the CLI half-closed) and keeps its own side open.
      assert.equal(text(await withTimeout(readAll(conn), STEP_MS, "the input")), "hello\n");
      const endOfInput = performance.now();
      const status = await withTimeout(connector.child.status, STEP_MS, "connect -q 1 to exit");
      const waited = performance.now() - endOfInput;
      assert.equal(status.code, 0, connector.err.seen);
      // Not at once: -q waits for the peer first (less a little for the relay's hop).
      assert.ok(waited >= 900, `exited ${waited} ms after the end of input`);
    } finally {
      conn.close();
    }
    assert.equal((await connector.bytes.all()).length, 0);
    assert.equal(await connector.err.rest(), "");
  } finally {
    try {
      connector.child.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await connector.child.status;
    await connector.bytes.all().catch(() => {});
    await connector.err.rest().catch(() => "");
    await peer.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: -N and --shutdown-on-eof half-close at the end of input and still read the peer's answer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const peer = await acceptOne(server, "cli-test-shutdown-peer-secret", 91);
  const connector = spawnNetcat(
    ["connect", `${peer.vip}:91`, "-N", ...as(server, dir, "n")],
    "piped",
  );
  const listener = spawnNetcat(
    ["listen", "0", "--shutdown-on-eof", ...as(server, dir, "l")],
    "piped",
  );
  const client = await connect({ port: server.port, identity: "cli-test-shutdown-client-secret" });
  try {
    // connect -N: its input ends, the peer reads end of stream, and answers after it.
    const writer = connector.child.stdin.getWriter();
    await writer.write(utf8("ping\n"));
    await writer.close();
    const conn = await withTimeout(peer.conn, STEP_MS, "the connection at the peer");
    try {
      assert.equal(text(await withTimeout(readAll(conn), STEP_MS, "the input")), "ping\n");
      await conn.write(utf8("pong\n"));
      await conn.closeWrite();
      const status = await withTimeout(connector.child.status, STEP_MS, "connect -N to exit");
      assert.equal(status.code, 0, connector.err.seen);
      assert.equal(text(await connector.bytes.all()), "pong\n");
    } finally {
      conn.close();
    }

    // listen --shutdown-on-eof: the same from the listening side.
    const target = (await listener.err.expect("listening on ", 15_000)).slice(
      "listening on ".length,
    );
    const [hostname, port] = target.split(":");
    const toListener = await client.connect({ hostname, port: Number(port) });
    try {
      await toListener.write(utf8("hello listener\n"));
      await toListener.closeWrite();
      await withTimeout(listener.bytes.atLeast(15), STEP_MS, "the message at the listener");
      const input = listener.child.stdin.getWriter();
      await input.write(utf8("answer\n"));
      await input.close();
      assert.equal(text(await withTimeout(readAll(toListener), STEP_MS, "the answer")), "answer\n");
    } finally {
      toListener.close();
    }
    const listened = await withTimeout(listener.child.status, STEP_MS, "listen to exit");
    assert.equal(listened.code, 0, listener.err.seen);
    assert.equal(text(await listener.bytes.all()), "hello listener\n");
  } finally {
    for (const proc of [connector, listener]) {
      try {
        proc.child.kill("SIGKILL");
      } catch {
        // Exited.
      }
      await proc.child.status;
      await proc.child.stdin.close().catch(() => {});
      await proc.bytes.all().catch(() => {});
      await proc.err.rest().catch(() => "");
    }
    await client.close();
    await peer.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
