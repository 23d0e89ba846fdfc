/**
 * The relay's registry files on disk, with the real `server.ts`: one relay
 * per file (a second exits with one line and changes nothing), and private
 * modes whatever the umask.
 */

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { randomIdentity } from "./_helpers/bytes.ts";
import { runDeno } from "./_helpers/run_deno.ts";
import { SERVER, startServer } from "./_helpers/server_process.ts";

function relayArgs(db: string): string[] {
  return ["--hostname", "127.0.0.1", "--port", "0", "--db", db, "--log-level", "silent"];
}

Deno.test("a second relay on a file another relay holds exits 1 with one line, changing nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_exclusive_" });
  const db = `${dir}/alphanet.db`;
  const first = await startServer(["--port", "0", "--db", db, "--log-level", "silent"]);
  try {
    const identity = randomIdentity();
    const client = await connect({ port: first.port, identity, reconnect: false });
    const vip = client.virtualIp;
    try {
      const second = await runDeno(["run", "-A", SERVER, ...relayArgs(db)], {
        signal: AbortSignal.timeout(20_000),
      });
      assert.equal(second.code, 1, second.stderr);
      assert.equal(second.stdout, "", "the second relay never listened");
      assert.equal(second.stderr.trimEnd().split("\n").length, 1, second.stderr);
      assert.match(
        second.stderr,
        /^alphanet relay: cannot start: cannot open registry .*alphanet\.db: another relay holds it/,
      );

      // The first relay's record stands: its client is online and cannot be released.
      const release = await runDeno(["run", "-A", SERVER, "clients", "release", vip, "--db", db]);
      assert.equal(release.code, 1, release.stderr);
      assert.match(release.stderr, /cannot release .*: the client is online now/);
    } finally {
      await client.close();
    }
    // Coming back, the client gets its own address again.
    const again = await connect({ port: first.port, identity, reconnect: false });
    assert.equal(again.virtualIp, vip);
    await again.close();
  } finally {
    assert.equal(await first.stop(), 0);
  }
  // Once the holder stops, the file is free for the next relay.
  const next = await startServer(["--port", "0", "--db", db, "--log-level", "silent"]);
  assert.equal(await next.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the relay creates its database, -wal, -shm and lock 0600 in folders it creates 0700, even under umask 000", async () => {
  if (Deno.build.os === "windows") return;
  const dir = await Deno.makeTempDir({ prefix: "alphanet_modes_" });
  const db = `${dir}/state/relay/alphanet.db`;
  // `exec` keeps the pid, so the kill reaches the relay itself.
  const script = `umask 000 && exec "$0" run -A "$1" ${relayArgs(db).join(" ")}`;
  const child = new Deno.Command("sh", {
    args: ["-c", script, Deno.execPath(), SERVER],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let first = "";
    for (let reads = 0; reads < 100 && !first.includes("\n"); reads++) {
      const { value, done } = await withTimeout(stdout.read(), 20_000, "the listening line");
      if (done) break;
      first += value;
    }
    const port = Number(/:(\d+)\n/.exec(first)?.[1]);
    assert.ok(port > 0, first);
    const client = await connect({ port, identity: randomIdentity(), reconnect: false });
    await client.close();

    const mode = (path: string) => (Deno.statSync(path).mode ?? 0) & 0o777;
    assert.equal(mode(`${dir}/state`).toString(8), "700");
    assert.equal(mode(`${dir}/state/relay`).toString(8), "700");
    for (const suffix of ["", "-wal", "-shm", "-lock"]) {
      assert.equal(mode(`${db}${suffix}`).toString(8), "600", `alphanet.db${suffix}`);
    }
  } finally {
    child.kill("SIGTERM");
    const status = await withTimeout(child.status, STEP_MS, "the relay to exit");
    while (!(await stdout.read()).done) { /* drain */ }
    assert.equal(status.code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});
