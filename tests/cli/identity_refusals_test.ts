/**
 * Identity files the command line refuses, as real subprocesses against the
 * real relay: open to others, owned by another user, or damaged (in the
 * current format or the old one). Each is one line on stderr that names the
 * file and how to fix it, exit 1, and the file is left as it was.
 */

import assert from "node:assert/strict";
import { exportIdentity, generateIdentity } from "../../mod.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { assertOneLineError, relay, runCli } from "./_helpers.ts";

/** A secret as an identity file of the old format (protocol version 1) holds it. */
const SECRET = `${"0123456789abcdef".repeat(4)}\n`;
const DAMAGED = "restore it from a backup, or move it away to get a new address";

// Windows files have no Unix mode or owner: only the content is checked there.
const unix = Deno.build.os !== "windows";

/** Runs `whoami` against `server` with the identity file at `path`. */
function whoamiWith(server: ServerProcess, path: string): ReturnType<typeof runCli> {
  return runCli(["whoami", "--server", `127.0.0.1:${server.port}`, "--identity-file", path]);
}

Deno.test({
  name: "cli: an identity file others can read or write is refused with the chmod that fixes it",
  ignore: !unix,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
    const server = await relay();
    try {
      const cases: [number, string][] = [
        [0o644, "readable by others (mode 0644)"],
        [0o640, "readable by others (mode 0640)"],
        [0o604, "readable by others (mode 0604)"],
        [0o620, "writable by others (mode 0620)"],
        [0o601, "usable by others (mode 0601)"],
      ];
      for (const [mode, why] of cases) {
        await t.step(`mode ${mode.toString(8)}`, async () => {
          const path = `${dir}/open-${mode.toString(8)}.id`;
          await Deno.writeTextFile(path, SECRET);
          await Deno.chmod(path, mode);
          const result = await whoamiWith(server, path);
          assertOneLineError(
            result,
            1,
            `alphanet: cannot use identity file ${path}: it is ${why}; run: chmod 600 ${path}`,
          );
          assert.equal(await Deno.readTextFile(path), SECRET);
          assert.equal((await Deno.stat(path)).mode! & 0o777, mode);
        });
      }
      await t.step("the hint quotes a path the shell would split", async () => {
        const path = `${dir}/my identity`;
        await Deno.writeTextFile(path, SECRET, { mode: 0o600 });
        await Deno.chmod(path, 0o644);
        const result = await runCli(["whoami", "--identity-file", path]);
        assertOneLineError(
          result,
          1,
          `alphanet: cannot use identity file ${path}: it is readable by others (mode 0644); ` +
            `run: chmod 600 '${path}'`,
        );
      });
      await t.step("the file works once fixed as told", async () => {
        const path = `${dir}/open-644.id`;
        await Deno.chmod(path, 0o600);
        const result = await whoamiWith(server, path);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
      });
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "cli: an identity file owned by another user is refused with the chown that fixes it",
  ignore: !unix,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
    const server = await relay();
    try {
      // Who we are, without --allow-sys: the owner of a file we just made.
      await Deno.writeTextFile(`${dir}/probe`, "");
      const uid = (await Deno.stat(`${dir}/probe`)).uid;
      // Only root can give a file away; CI runs as root, so this runs there.
      await t.step({
        name: "a file of uid 65534 (nobody)",
        ignore: uid !== 0,
        fn: async () => {
          const path = `${dir}/nobody.id`;
          await Deno.writeTextFile(path, SECRET, { mode: 0o600 });
          await Deno.chown(path, 65534, null);
          const result = await whoamiWith(server, path);
          assertOneLineError(
            result,
            1,
            `alphanet: cannot use identity file ${path}: it is owned by another user ` +
              `(uid 65534); run: chown 0 ${path}, or run as that user`,
          );
          assert.equal((await Deno.stat(path)).uid, 65534);
          assert.equal(await Deno.readTextFile(path), SECRET);
        },
      });
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli: a damaged identity file of the old format is refused and left as it was", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const cases: [string, string | Uint8Array, string][] = [
      ["empty", "", "empty"],
      ["a newline only", "\n", "empty"],
      ["truncated", SECRET.slice(0, 40), "truncated to 40 of 64 hex digits"],
      ["truncated, then a newline", `${SECRET.slice(0, 63)}\n`, "truncated to 63 of 64 hex digits"],
      ["uppercase", SECRET.toUpperCase(), 'byte 11 is "A", not a lowercase hex digit'],
      ["a space", ` ${SECRET}`, "byte 1 is 0x20, not a lowercase hex digit"],
      ["CRLF", `${SECRET.slice(0, 64)}\r\n`, "longer than 64 hex digits and a newline"],
      ["two newlines", `${SECRET}\n`, "longer than 64 hex digits and a newline"],
      ["a second secret", SECRET + SECRET, "longer than 64 hex digits and a newline"],
      ["binary", new Uint8Array(64).fill(0xff), "byte 1 is 0xff, not a lowercase hex digit"],
      [
        "a hex digit replaced",
        `${SECRET.slice(0, 30)}g${SECRET.slice(31)}`,
        'byte 31 is "g", ' +
        "not a lowercase hex digit",
      ],
    ];
    for (const [name, content, why] of cases) {
      await t.step(name, async () => {
        const path = `${dir}/${name.replaceAll(/[^a-z]+/g, "-")}.id`;
        const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
        await Deno.writeFile(path, bytes, { mode: 0o600 });
        const result = await whoamiWith(server, path);
        assertOneLineError(
          result,
          1,
          `alphanet: cannot use identity file ${path}: it is damaged: ${why}; ${DAMAGED}`,
        );
        assert.deepEqual(await Deno.readFile(path), bytes);
      });
    }
    await t.step("without the final newline it is whole", async () => {
      const path = `${dir}/no-newline.id`;
      await Deno.writeTextFile(path, SECRET.slice(0, 64), { mode: 0o600 });
      const flags = ["--server", `127.0.0.1:${server.port}`];
      const bare = await runCli(["whoami", ...flags, "--identity-file", path]);
      assert.equal(bare.code, 0, bare.stderr);
      await Deno.writeTextFile(path, SECRET);
      const whole = await runCli(["whoami", ...flags, "--identity-file", path]);
      assert.equal(whole.code, 0, whole.stderr);
      assert.equal(whole.stdout, bare.stdout);
    });
    await t.step("a folder is not an identity file", async () => {
      const path = `${dir}/folder.id`;
      await Deno.mkdir(path, { mode: 0o700 });
      const result = await runCli(["whoami", "--identity-file", path]);
      assertOneLineError(
        result,
        1,
        `alphanet: cannot use identity file ${path}: it is not a regular file`,
      );
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a damaged identity file of the current format is refused and left as it was", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const text = await exportIdentity(await generateIdentity());
    const [prefix, type, publicKey, privateKey] = text.trimEnd().split(" ");
    const other = await exportIdentity(await generateIdentity());
    const change = (at: number): string =>
      text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
    const publicAt = prefix.length + type.length + 2;
    const privateAt = publicAt + publicKey.length + 1;
    const words = `not the 4 of "alphanet-identity-1 ed25519 PUBLIC PRIVATE"`;
    const cases: [string, string, string][] = [
      [
        "truncated",
        text.slice(0, 90),
        "its private key is not 32 bytes of base64url (43 characters of A-Z a-z 0-9 - _)",
      ],
      ["truncated to three words", `${prefix} ${type} ${publicKey}\n`, `it has 3 words, ${words}`],
      [
        "a changed character in the public key",
        change(publicAt + 7),
        "its public key does not match its private key",
      ],
      [
        "a changed character in the private key",
        change(privateAt + 7),
        "its public key does not match its private key",
      ],
      [
        "swapped keys",
        `${prefix} ${type} ${privateKey} ${publicKey}\n`,
        "its public key does not match its private key",
      ],
      ["an extra word", `${text.trimEnd()} more\n`, `it has 5 words, ${words}`],
      [
        "two identities",
        text + other,
        'it is more than the one line "alphanet-identity-1 ed25519 PUBLIC PRIVATE"',
      ],
      ["another key type", text.replace("ed25519", "rsa"), 'its key type is "rsa", not "ed25519"'],
      [
        "another format",
        text.replace("identity-1", "identity-9"),
        'it does not start with "alphanet-identity-1"',
      ],
      ["too long", text.trimEnd() + " x".repeat(600), "longer than one identity line"],
    ];
    for (const [name, content, why] of cases) {
      await t.step(name, async () => {
        const path = `${dir}/${name.replaceAll(/[^a-z]+/g, "-")}.id`;
        await Deno.writeTextFile(path, content, { mode: 0o600 });
        const result = await whoamiWith(server, path);
        assertOneLineError(
          result,
          1,
          `alphanet: cannot use identity file ${path}: it is damaged: ${why}; ${DAMAGED}`,
        );
        assert.equal(await Deno.readTextFile(path), content);
        // The private key never lands on stderr.
        assert.ok(!result.stderr.includes(privateKey.slice(0, 20)));
      });
    }
    await t.step("not UTF-8", async () => {
      const path = `${dir}/binary.id`;
      const bytes = new Uint8Array([
        ...new TextEncoder().encode("alphanet-identity-1 "),
        0xff,
        0xfe,
      ]);
      await Deno.writeFile(path, bytes, { mode: 0o600 });
      const result = await whoamiWith(server, path);
      assertOneLineError(
        result,
        1,
        `alphanet: cannot use identity file ${path}: it is damaged: not UTF-8 text; ${DAMAGED}`,
      );
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
