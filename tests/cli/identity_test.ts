/**
 * `whoami` and the identity file, as real subprocesses against the real
 * relay: the same file keeps the address; the file is created 0600 and its
 * missing folders 0700.
 */

import assert from "node:assert/strict";
import { as, relay, runCli } from "./_helpers.ts";

Deno.test("cli: whoami keeps its address with the same identity file, created mode 0600", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const first = await runCli(["whoami", ...as(server, dir, "me")]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
    const info = await Deno.stat(`${dir}/me.id`);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(`${dir}/me.id`), /^[0-9a-f]{64}\n$/);
    // The same file again, the relay given through the environment this time.
    const second = await runCli(["whoami", "--identity-file", `${dir}/me.id`], {
      ALPHANET_SERVER: `127.0.0.1:${server.port}`,
    });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    const other = await runCli(["whoami", ...as(server, dir, "other")]);
    assert.equal(other.code, 0, other.stderr);
    assert.notEqual(other.stdout, first.stdout);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: an identity file in missing folders creates them 0700, the file 0600", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const path = `${dir}/home/.alphanet/web`;
    const first = await runCli([
      "whoami",
      "--server",
      `127.0.0.1:${server.port}`,
      "--identity-file",
      path,
    ]);
    assert.equal(first.code, 0, first.stderr);
    for (const folder of [`${dir}/home`, `${dir}/home/.alphanet`]) {
      const info = await Deno.stat(folder);
      assert.ok(info.isDirectory);
      assert.equal(info.mode! & 0o777, 0o700, folder);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    // "~/" is the home folder even where the shell did not expand it (--identity-file=~/...).
    const again = await runCli(
      ["whoami", "--server", `127.0.0.1:${server.port}`, "--identity-file=~/.alphanet/web"],
      { HOME: `${dir}/home` },
    );
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, first.stdout);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
