/**
 * `whoami` and the identity file, as real subprocesses against the real
 * relay: the same file keeps the address; the file is created 0600 and its
 * missing folders 0700, holding an exported identity; a file of the old
 * format (a version 1 secret) still works and is never rewritten.
 */

import assert from "node:assert/strict";
import { importIdentity } from "../../mod.ts";
import { as, relay, runCli } from "./_helpers.ts";

/** A new identity file's content: `exportIdentity()` text. */
const IDENTITY_TEXT = /^alphanet-identity-1 ed25519 [A-Za-z0-9_-]{43} [A-Za-z0-9_-]{43}\n$/;

/**
 * Runs `fn` with a fresh temporary folder and a real relay, then stops the
 * relay and removes the folder whatever happened.
 */
async function withRelayAndDir(
  fn: (server: Awaited<ReturnType<typeof relay>>, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    await fn(server, dir);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `whoami` with `args` (and `env`), asserts it exits 0 and returns what it printed. */
async function whoami(args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await runCli(["whoami", ...args], env);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

Deno.test("cli: whoami keeps its address with the same identity file, created mode 0600", async () => {
  await withRelayAndDir(async (server, dir) => {
    const first = await whoami(as(server, dir, "me"));
    assert.match(first, /^\d+\.\d+\.\d+\.\d+\n$/);
    const info = await Deno.stat(`${dir}/me.id`);
    assert.equal(info.mode! & 0o777, 0o600);
    const text = await Deno.readTextFile(`${dir}/me.id`);
    assert.match(text, IDENTITY_TEXT);
    await importIdentity(text); // Intact: both keys agree.
    // The same file again, the relay given through the environment this time.
    const second = await whoami(["--identity-file", `${dir}/me.id`], {
      ALPHANET_SERVER: `127.0.0.1:${server.port}`,
    });
    assert.equal(second, first);
    assert.equal(await Deno.readTextFile(`${dir}/me.id`), text);
    const other = await whoami(as(server, dir, "other"));
    assert.notEqual(other, first);
  });
});

Deno.test("cli: an identity file in missing folders creates them 0700, the file 0600", async () => {
  await withRelayAndDir(async (server, dir) => {
    const path = `${dir}/home/.alphanet/web`;
    const first = await whoami(["--server", `127.0.0.1:${server.port}`, "--identity-file", path]);
    for (const folder of [`${dir}/home`, `${dir}/home/.alphanet`]) {
      const info = await Deno.stat(folder);
      assert.ok(info.isDirectory);
      assert.equal(info.mode! & 0o777, 0o700, folder);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    // "~/" is the home folder even where the shell did not expand it (--identity-file=~/...).
    const again = await whoami(
      ["--server", `127.0.0.1:${server.port}`, "--identity-file=~/.alphanet/web"],
      { HOME: `${dir}/home` },
    );
    assert.equal(again, first);
  });
});

Deno.test("cli: an identity file of the old format (64 hex digits) keeps working and is not rewritten", async () => {
  await withRelayAndDir(async (server, dir) => {
    const path = `${dir}/old.id`;
    const secret = `${"0123456789abcdef".repeat(4)}\n`;
    await Deno.writeTextFile(path, secret, { mode: 0o600 });
    const first = await whoami(as(server, dir, "old"));
    assert.match(first, /^\d+\.\d+\.\d+\.\d+\n$/);
    assert.equal(await whoami(as(server, dir, "old")), first);
    // Without its newline it is the same secret, so the same address.
    await Deno.writeTextFile(path, secret.trimEnd());
    assert.equal(await whoami(as(server, dir, "old")), first);
    assert.equal(await Deno.readTextFile(path), secret.trimEnd());
    // Another secret is another address.
    await Deno.writeTextFile(`${dir}/other.id`, `${"f".repeat(64)}\n`, { mode: 0o600 });
    assert.notEqual(await whoami(as(server, dir, "other")), first);
  });
});

Deno.test("cli: an identity file written with CRLF or without its newline keeps its address", async () => {
  await withRelayAndDir(async (server, dir) => {
    const first = await whoami(as(server, dir, "me"));
    const path = `${dir}/me.id`;
    const line = (await Deno.readTextFile(path)).trimEnd();
    for (const text of [`${line}\r\n`, line]) {
      await Deno.writeTextFile(path, text);
      assert.equal(await whoami(as(server, dir, "me")), first);
    }
  });
});
