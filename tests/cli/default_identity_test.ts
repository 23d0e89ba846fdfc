/**
 * The identity a command joins with when not given `--identity-file`, as real
 * subprocesses against the real relay: a default file in the user's config
 * folder (created 0600 in 0700 folders, then reused), or none with
 * `--no-identity`.
 */

import assert from "node:assert/strict";
import { runDeno } from "../_helpers/run_deno.ts";
import { assertOneLineError, CLI, relay, runCli } from "./_helpers.ts";

/** Where the command line keeps its default identity under `home` on this OS. */
function defaultFile(home: string): { folders: string[]; file: string } {
  const app = Deno.build.os === "darwin"
    ? `${home}/Library/Application Support/alphanet`
    : `${home}/.config/alphanet`;
  return { folders: [app.slice(0, app.lastIndexOf("/")), app], file: `${app}/identity` };
}

// Windows keeps it under %APPDATA% and has no Unix modes to check.
const unix = Deno.build.os !== "windows";

Deno.test({
  name: "cli: without --identity-file a default file is created 0600 in 0700 folders and reused",
  ignore: !unix,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
    const server = await relay();
    try {
      const home = `${dir}/home`;
      // An empty $XDG_CONFIG_HOME is unset for the spec: ~/.config is used.
      const env = { HOME: home, XDG_CONFIG_HOME: "" };
      const flags = ["--server", `127.0.0.1:${server.port}`];
      const first = await runCli(["whoami", ...flags], env);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
      const { folders, file } = defaultFile(home);
      for (const folder of folders) {
        assert.equal((await Deno.stat(folder)).mode! & 0o777, 0o700, folder);
      }
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      const identity = await Deno.readTextFile(file);
      assert.match(
        identity,
        /^alphanet-identity-1 ed25519 [A-Za-z0-9_-]{43} [A-Za-z0-9_-]{43}\n$/,
      );
      // No file of the temporary name it is written under is left beside it.
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(folders[1]))).map((entry) => entry.name),
        ["identity"],
      );

      const second = await runCli(["whoami", ...flags], env);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout, first.stdout);
      assert.equal(await Deno.readTextFile(file), identity);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "cli: $XDG_CONFIG_HOME holds the default identity file on Linux and the BSDs",
  ignore: !unix || Deno.build.os === "darwin",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
    const server = await relay();
    try {
      const env = { HOME: `${dir}/home`, XDG_CONFIG_HOME: `${dir}/config` };
      const flags = ["--server", `127.0.0.1:${server.port}`];
      const first = await runCli(["whoami", ...flags], env);
      assert.equal(first.code, 0, first.stderr);
      const file = `${dir}/config/alphanet/identity`;
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      // Deno itself may keep its cache under $HOME; the config folder is what matters.
      await assert.rejects(Deno.stat(`${dir}/home/.config`), Deno.errors.NotFound);
      // The same file given by path is the same identity, so the same address.
      const given = await runCli(["whoami", ...flags, "--identity-file", file], env);
      assert.equal(given.code, 0, given.stderr);
      assert.equal(given.stdout, first.stdout);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "cli: --no-identity joins keyed by the real IP and creates no file",
  ignore: !unix,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
    const server = await relay();
    try {
      const env = { HOME: `${dir}/home`, XDG_CONFIG_HOME: "" };
      const flags = ["--server", `127.0.0.1:${server.port}`];
      const first = await runCli(["whoami", "--no-identity", ...flags], env);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
      // Before the command too, as every global flag.
      const second = await runCli(["--no-identity", "whoami", ...flags], env);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout, first.stdout);
      await assert.rejects(Deno.stat(defaultFile(`${dir}/home`).file), Deno.errors.NotFound);

      const keyed = await runCli(["whoami", ...flags], env);
      assert.equal(keyed.code, 0, keyed.stderr);
      assert.notEqual(keyed.stdout, first.stdout);

      const both = await runCli(["whoami", "--no-identity", "--identity-file", `${dir}/x`]);
      assertOneLineError(
        both,
        2,
        "alphanet: --no-identity cannot be used with --identity-file (see whoami --help)",
      );
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli: --help explains the default identity file and --no-identity", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Without it every command uses one default file:/);
  assert.match(help.stdout, /give each long-running command\s+its own file/);
  assert.match(help.stdout, /--no-identity {10}join without an identity/);
  assert.match(help.stdout, /anyone behind the same NAT can take the\s+address/);
});

Deno.test({
  name: "cli: the default identity file works with the cli task's permissions (no --allow-sys)",
  ignore: !unix,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
    const server = await relay();
    try {
      const env = { HOME: `${dir}/home`, XDG_CONFIG_HOME: "" };
      const permissions = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];
      const run = () =>
        runDeno(
          ["run", ...permissions, CLI, "whoami", "--server", `127.0.0.1:${server.port}`],
          { env, signal: AbortSignal.timeout(30_000) },
        );
      const first = await run();
      assert.equal(first.code, 0, first.stderr);
      const second = await run();
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout, first.stdout);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli: --no-identity at a relay run with --ip-identities off is one line that says why", async () => {
  const server = await relay("--ip-identities", "off");
  try {
    const result = await runCli([
      "whoami",
      "--no-identity",
      "--server",
      `127.0.0.1:${server.port}`,
    ]);
    assertOneLineError(
      result,
      1,
      `alphanet: cannot join relay at 127.0.0.1:${server.port}: the relay refused the identity ` +
        "(InvalidIdentity): its proof did not verify, or the relay admits no client without one " +
        "(drop --no-identity)",
    );
  } finally {
    await server.stop();
  }
});
