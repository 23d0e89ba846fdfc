/**
 * The command line's --tls and --ca-cert against the real relay serving TLS
 * with the test certificate of tests/testdata/tls/.
 */

import assert from "node:assert/strict";
import { parseIpv4 } from "../../protocol/mod.ts";
import { CA_FILE, startTlsServer } from "../_helpers/tls.ts";
import { assertOneLineError, relay, runCli } from "./_helpers.ts";

Deno.test("cli: whoami --tls --ca-cert joins a TLS relay, the flags before or after the command", async () => {
  const server = await startTlsServer();
  const dir = await Deno.makeTempDir();
  try {
    const where = `127.0.0.1:${server.port}`;
    const identity = ["--identity-file", `${dir}/tls.id`];
    const after = await runCli([
      "whoami",
      "--server",
      where,
      ...identity,
      "--tls",
      "--ca-cert",
      CA_FILE,
    ]);
    assert.equal(after.code, 0, after.stderr);
    const vip = after.stdout.trim();
    assert.notEqual(parseIpv4(vip), null, after.stdout);
    const before = await runCli([
      "--tls",
      "--ca-cert",
      CA_FILE,
      "--server",
      where,
      ...identity,
      "whoami",
    ]);
    assert.equal(before.code, 0, before.stderr);
    assert.equal(before.stdout.trim(), vip);
  } finally {
    assert.equal(await server.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: TLS mismatches and a missing CA are one line naming the cause", async (t) => {
  const tlsServer = await startTlsServer();
  const plainServer = await relay();
  try {
    const tlsAt = `127.0.0.1:${tlsServer.port}`;
    const plainAt = `127.0.0.1:${plainServer.port}`;
    await t.step("a plain client at a TLS relay", async () => {
      assertOneLineError(
        await runCli(["whoami", "--server", tlsAt]),
        1,
        `alphanet: cannot join relay at ${tlsAt}: the relay speaks TLS (use --tls / tls: true)`,
      );
    });
    await t.step("a TLS client at a plain relay", async () => {
      assertOneLineError(
        await runCli(["whoami", "--server", plainAt, "--tls", "--ca-cert", CA_FILE]),
        1,
        `alphanet: cannot join relay at ${plainAt}: TLS handshake failed: the relay may not speak TLS (drop --tls)`,
      );
    });
    await t.step("a TLS client without the CA", async () => {
      assertOneLineError(
        await runCli(["whoami", "--server", tlsAt, "--tls"]),
        1,
        `alphanet: cannot join relay at ${tlsAt}: TLS handshake failed: invalid peer certificate: UnknownIssuer`,
      );
    });
    await t.step("--ca-cert without --tls", async () => {
      assertOneLineError(
        await runCli(["whoami", "--server", tlsAt, "--ca-cert", CA_FILE]),
        2,
        "alphanet: --ca-cert needs --tls (see whoami --help)",
      );
    });
    await t.step("an unreadable --ca-cert", async () => {
      const missing = `${CA_FILE}.missing`;
      assertOneLineError(
        await runCli(["whoami", "--server", tlsAt, "--tls", "--ca-cert", missing]),
        1,
        new RegExp(`^alphanet: cannot read --ca-cert ${missing}: no such file`, "i"),
      );
    });
  } finally {
    assert.equal(await tlsServer.stop(), 0);
    assert.equal(await plainServer.stop(), 0);
  }
});
