/**
 * `listen` and `connect` (netcat), as real subprocesses against the real
 * relay: byte-exact transfers with half-close, the tour's pair finishing by
 * itself, -k and --progress. How an exchange ends (-N, -q) and how connect
 * fails are in netcat_ends_test.ts.
 */

import assert from "node:assert/strict";
import { formatDuration, sentText } from "../../cli/progress.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { pseudoRandomBytes, sha256hex, text } from "../_helpers/bytes.ts";
import { readStreamAll } from "../_helpers/streams.ts";
import {
  as,
  BULK_MS,
  ByteCollector,
  CLI,
  Lines,
  MiB,
  relay,
  shQuote,
  spawnNetcat,
} from "./_helpers.ts";

Deno.test("cli: listen/connect carry 20 MiB each way byte-exact, with half-close", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const fromConnect = `${dir}/from_connect.bin`;
  const fromListen = `${dir}/from_listen.bin`;
  await Deno.writeFile(fromConnect, pseudoRandomBytes(20 * MiB, 1));
  await Deno.writeFile(fromListen, pseudoRandomBytes(20 * MiB, 2));
  const spawn = (args: string[]): Deno.ChildProcess =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  const listener = spawn(["listen", "9000", ...as(server, dir, "listener")]);
  const listenerErr = new Lines(listener.stderr);
  const listenerOut = new ByteCollector(listener.stdout);
  try {
    const listening = await listenerErr.expect("listening on ", 15_000);
    const target = listening.slice("listening on ".length);
    assert.match(target, /^\d+\.\d+\.\d+\.\d+:9000$/);

    const connector = spawn(["connect", target, ...as(server, dir, "connector"), "--progress"]);
    const connectorOut = readStreamAll(connector.stdout);
    const connectorErr = new Response(connector.stderr).text();
    // The connect side's stdin ends first: the whole file, then end of stream (closeWrite).
    await (await Deno.open(fromConnect)).readable.pipeTo(connector.stdin);

    // The listen side gets all of it before it has sent a byte.
    await withTimeout(listenerOut.atLeast(20 * MiB), BULK_MS, "20 MiB at the listen side");
    // Only now does the listen side answer; the half-closed connect side still receives it.
    await (await Deno.open(fromListen)).readable.pipeTo(listener.stdin);
    const atConnector = await withTimeout(connectorOut, BULK_MS, "the connect side's stdout");
    assert.equal(atConnector.length, 20 * MiB);
    assert.equal(await sha256hex(atConnector), await sha256hex(await Deno.readFile(fromListen)));
    const atListener = await withTimeout(listenerOut.all(), BULK_MS, "the listen side's stdout");
    assert.equal(atListener.length, 20 * MiB);
    assert.equal(await sha256hex(atListener), await sha256hex(await Deno.readFile(fromConnect)));

    const connected = await withTimeout(connector.status, STEP_MS, "connect to exit");
    const progress = await connectorErr;
    assert.equal(connected.code, 0, progress);
    assert.match(
      progress,
      /^done in [\d.]+ s: sent 20\.0 MiB \([\d.]+ MiB\/s\), received 20\.0 MiB/m,
    );
    const listened = await withTimeout(listener.status, STEP_MS, "listen to exit");
    assert.equal(listened.code, 0, listenerErr.seen);
    assert.match(await listenerErr.rest(), /connection from \d+\.\d+\.\d+\.\d+:\d+/);
  } finally {
    try {
      listener.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await listener.status;
    await listenerOut.all().catch(() => {});
    await listenerErr.rest().catch(() => "");
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "cli: the tour's listen > file (a terminal as stdin) and connect < file both finish by themselves",
  async fn(): Promise<void> {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
    const server = await relay();
    const sent = pseudoRandomBytes(3 * MiB + 123, 11);
    await Deno.writeFile(`${dir}/in.bin`, sent);
    const cli = (args: string[]): string =>
      [Deno.execPath(), "run", "-A", CLI, ...args].map(shQuote).join(" ");
    // `script` gives the listener a terminal as stdin, as in the tour; nothing is typed.
    const listener = new Deno.Command("script", {
      args: [
        "-qec",
        `${cli(["listen", "0", ...as(server, dir, "a")])} > ${shQuote(`${dir}/out.bin`)}`,
        "/dev/null",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const terminal = new Lines(listener.stdout);
    try {
      const listening = await terminal.expect("listening on ", 15_000);
      const target = listening.slice("listening on ".length).trim();
      const connector = await withTimeout(
        new Deno.Command("sh", {
          args: [
            "-c",
            `${cli(["connect", target, ...as(server, dir, "b")])} < ${shQuote(`${dir}/in.bin`)}`,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output(),
        BULK_MS,
        "connect < in.bin to finish",
      );
      assert.equal(connector.code, 0, new TextDecoder().decode(connector.stderr));
      assert.equal(connector.stdout.length, 0);
      const listened = await withTimeout(listener.status, BULK_MS, "listen > out.bin to finish");
      assert.equal(listened.code, 0, terminal.seen);
      const received = await Deno.readFile(`${dir}/out.bin`);
      assert.equal(received.length, sent.length);
      assert.equal(await sha256hex(received), await sha256hex(sent));
    } finally {
      try {
        listener.kill("SIGKILL");
      } catch {
        // Finished.
      }
      await listener.status;
      await listener.stdin.close().catch(() => {});
      await terminal.rest().catch(() => "");
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli: listen -k serves two connections in turn, then exits 0 on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const listener = spawnNetcat(["listen", "0", "-k", ...as(server, dir, "listener")], "null");
  const received = listener.bytes;
  try {
    const target = (await listener.err.expect("listening on ", 15_000)).slice(
      "listening on ".length,
    );
    const messages = ["first connection\n", "second connection\n"];
    for (const [i, message] of messages.entries()) {
      const connector = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, "connect", target, ...as(server, dir, `c${i}`)],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = connector.stdin.getWriter();
      await writer.write(new TextEncoder().encode(message));
      await writer.close();
      const done = await withTimeout(connector.output(), BULK_MS, `connect ${i} to finish`);
      assert.equal(done.code, 0, new TextDecoder().decode(done.stderr));
      await listener.err.expect("connection from ");
    }
    const expected = new TextEncoder().encode(messages.join(""));
    await withTimeout(received.atLeast(expected.length), STEP_MS, "both messages");
    listener.child.kill("SIGTERM");
    const status = await withTimeout(listener.child.status, STEP_MS, "listen -k to exit");
    assert.equal(status.code, 0, listener.err.seen);
    assert.equal(text(await received.all()), messages.join(""));
  } finally {
    try {
      listener.child.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await listener.child.status;
    await received.all().catch(() => {});
    await listener.err.rest().catch(() => "");
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --progress of a transfer whose peer dies says 'failed after', never 'done'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  const listener = spawnNetcat(["listen", "0", ...as(server, dir, "listener")], "piped");
  const atListener = listener.bytes;
  try {
    const target = (await listener.err.expect("listening on ", 15_000)).slice(
      "listening on ".length,
    );
    const connector = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "connect", target, "--progress", ...as(server, dir, "sender")],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const connectorErr = new Response(connector.stderr).text();
    const connectorOut = readStreamAll(connector.stdout);
    const writer = connector.stdin.getWriter();
    await writer.write(pseudoRandomBytes(MiB, 5));
    await withTimeout(atListener.atLeast(1), STEP_MS, "the first bytes at the listener");
    listener.child.kill("SIGKILL");
    await listener.child.status;
    // More input after the peer is gone: the sending side must fail now if it did not already.
    await writer.write(pseudoRandomBytes(MiB, 6)).catch(() => {});
    await writer.close().catch(() => {});
    const status = await withTimeout(connector.status, BULK_MS, "connect to fail");
    const stderr = await connectorErr;
    await connectorOut;
    assert.equal(status.code, 1, stderr);
    assert.match(stderr, /^failed after [\d.]+ s: sent [\d.]+ MiB/m);
    assert.doesNotMatch(stderr, /^done/m);
    // The whole line: the direction that failed, the peer, and why, by the error's class.
    assert.match(
      stderr,
      /^alphanet: cannot (send to|receive from) \d+\.\d+\.\d+\.\d+:\d+: the (peer|relay) closed the connection$/m,
    );
  } finally {
    try {
      listener.child.kill("SIGKILL");
    } catch {
      // Killed above.
    }
    await listener.child.status;
    await listener.child.stdin.close().catch(() => {});
    await atListener.all().catch(() => {});
    await listener.err.rest().catch(() => "");
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --progress shows percent and ETA when the size is known", () => {
  assert.equal(
    sentText(5 * MiB, 20 * MiB, "10.0 MiB/s", 0.5),
    "sent 5.0 of 20.0 MiB (25%, 10.0 MiB/s, ETA 2 s)",
  );
  assert.equal(sentText(MiB, null, "2.0 MiB/s", 1), "sent 1.0 MiB (2.0 MiB/s)");
  assert.equal(
    sentText(20 * MiB, 20 * MiB, "0.0 MiB/s", 9),
    "sent 20.0 of 20.0 MiB (100%, 0.0 MiB/s, ETA 0 s)",
  );
  assert.equal(formatDuration(185), "3 min 05 s");
  assert.equal(formatDuration(7_620), "2 h 07 min");
});
