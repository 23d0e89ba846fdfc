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

Deno.test("cli: whoami keeps its address with the same identity file, created mode 0600", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const first = await runCli(["whoami", ...as(server, dir, "me")]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
    const info = await Deno.stat(`${dir}/me.id`);
    assert.equal(info.mode! & 0o777, 0o600);
    const text = await Deno.readTextFile(`${dir}/me.id`);
    assert.match(text, IDENTITY_TEXT);
    await importIdentity(text); // Intact: both keys agree.
    // The same file again, the relay given through the environment this time.
    const second = await runCli(["whoami", "--identity-file", `${dir}/me.id`], {
      ALPHANET_SERVER: `127.0.0.1:${server.port}`,
    });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    assert.equal(await Deno.readTextFile(`${dir}/me.id`), text);
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

Deno.test("cli: an identity file of the old format (64 hex digits) keeps working and is not rewritten", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const path = `${dir}/old.id`;
    const secret = `${"0123456789abcdef".repeat(4)}\n`;
    await Deno.writeTextFile(path, secret, { mode: 0o600 });
    const first = await runCli(["whoami", ...as(server, dir, "old")]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
    const second = await runCli(["whoami", ...as(server, dir, "old")]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    // Without its newline it is the same secret, so the same address.
    await Deno.writeTextFile(path, secret.trimEnd());
    const bare = await runCli(["whoami", ...as(server, dir, "old")]);
    assert.equal(bare.code, 0, bare.stderr);
    assert.equal(bare.stdout, first.stdout);
    assert.equal(await Deno.readTextFile(path), secret.trimEnd());
    // Another secret is another address.
    await Deno.writeTextFile(`${dir}/other.id`, `${"f".repeat(64)}\n`, { mode: 0o600 });
    const other = await runCli(["whoami", ...as(server, dir, "other")]);
    assert.equal(other.code, 0, other.stderr);
    assert.notEqual(other.stdout, first.stdout);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: an identity file written with CRLF or without its newline keeps its address", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const first = await runCli(["whoami", ...as(server, dir, "me")]);
    assert.equal(first.code, 0, first.stderr);
    const path = `${dir}/me.id`;
    const line = (await Deno.readTextFile(path)).trimEnd();
    for (const text of [`${line}\r\n`, line]) {
      await Deno.writeTextFile(path, text);
      const again = await runCli(["whoami", ...as(server, dir, "me")]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, first.stdout);
    }
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
