/**
 * `--join-token` and `$ALPHANET_JOIN_TOKEN`, as real subprocesses against the
 * real relay: the flag wins over the variable; a malformed token is a usage
 * error that never repeats the token; at a relay run with `--join token` a
 * new identity needs a token, a registered one does not, and each refusal is
 * one line that says what to do.
 */

import assert from "node:assert/strict";
import { runDeno } from "../_helpers/run_deno.ts";
import { SERVER, startServer } from "../_helpers/server_process.ts";
import { as, assertOneLineError, relay, runCli } from "./_helpers.ts";

/** A well-formed token no relay made: accepted by the command line, refused by a token relay. */
const STRANGER = `anj1.0123456789abcdef.${"A".repeat(43)}`;
/** The start of a malformed token's secret: must never be printed. */
const SECRET_PART = "SECRETSECRETSECRET";

/** Makes a join token in the registry `db` with `server.ts tokens create`; returns its text. */
async function createToken(db: string, ...flags: string[]): Promise<string> {
  const made = await runDeno(["run", "-A", SERVER, "tokens", "create", "--db", db, ...flags], {
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(made.code, 0, made.stderr);
  const token = made.stdout.trim();
  assert.match(token, /^anj1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
  return token;
}

Deno.test("cli: --help explains --join-token and $ALPHANET_JOIN_TOKEN", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--join-token TOKEN {5}join token \(anj1\.ID\.SECRET\)/);
  assert.match(
    help.stdout,
    /needed only to\s+register a new identity at a relay run\s+with --join token/,
  );
  assert.match(help.stdout, /\$ALPHANET_JOIN_TOKEN \(the flag wins/);
  const whoami = await runCli(["whoami", "--help"]);
  assert.match(whoami.stdout, /--join-token TOKEN/);
});

Deno.test("cli: a malformed join token is a usage error naming where it came from, never echoed", async () => {
  const bad = `anj1.0123456789abcdef.${SECRET_PART}`;
  const [flag, env, missing] = await Promise.all([
    runCli(["whoami", "--join-token", bad]),
    runCli(["whoami"], { ALPHANET_JOIN_TOKEN: bad }),
    runCli(["whoami", "--join-token"]),
  ]);
  const why = "has a secret that is not 32 bytes of base64url (it is damaged); " +
    "copy it again from the relay's operator";
  assertOneLineError(
    flag,
    2,
    `alphanet: bad --join-token: the join token ${why} (see whoami --help)`,
  );
  assertOneLineError(
    env,
    2,
    `alphanet: bad ALPHANET_JOIN_TOKEN: the join token ${why} (see whoami --help)`,
  );
  for (const result of [flag, env]) assert.ok(!result.stderr.includes(SECRET_PART));
  assertOneLineError(missing, 2, "alphanet: missing value of --join-token (see whoami --help)");
});

Deno.test("cli: --join-token wins over $ALPHANET_JOIN_TOKEN; an empty variable is unset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const server = await relay();
  try {
    const bad = `anj1.${SECRET_PART}`;
    // A bad variable under a good flag is never read: the flag's token is the one used.
    const flagWins = await runCli(["whoami", ...as(server, dir, "a"), "--join-token", STRANGER], {
      ALPHANET_JOIN_TOKEN: bad,
    });
    assert.equal(flagWins.code, 0, flagWins.stderr);
    // A bad flag over a good variable is refused: the flag is what counts.
    const badFlag = await runCli(["whoami", ...as(server, dir, "a"), "--join-token", bad], {
      ALPHANET_JOIN_TOKEN: STRANGER,
    });
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /^alphanet: bad --join-token: /);
    const empty = await runCli(["whoami", ...as(server, dir, "a")], { ALPHANET_JOIN_TOKEN: "" });
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, flagWins.stdout);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: at a --join token relay a new identity needs a token; once registered it needs none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_cli_" });
  const db = `${dir}/relay.db`;
  const server = await startServer([
    "--port",
    "0",
    "--db",
    db,
    "--log-level",
    "warn",
    "--join",
    "token",
  ]);
  try {
    const where = `127.0.0.1:${server.port}`;
    const token = await createToken(db, "--uses", "1");
    const required = await runCli(["whoami", ...as(server, dir, "new")]);
    assertOneLineError(
      required,
      1,
      `alphanet: cannot join relay at ${where}: the relay registers a new identity only with ` +
        "a join token (JoinTokenRequired): get one from its operator and give it with " +
        "--join-token TOKEN or $ALPHANET_JOIN_TOKEN",
    );
    const stranger = await runCli(["whoami", ...as(server, dir, "new"), "--join-token", STRANGER]);
    assertOneLineError(
      stranger,
      1,
      `alphanet: cannot join relay at ${where}: the relay refused the join token ` +
        "(JoinTokenInvalid: unknown, revoked or mistyped): check it, or get a new one from the " +
        "relay's operator",
    );
    // The variable carries the token too.
    const joined = await runCli(["whoami", ...as(server, dir, "new")], {
      ALPHANET_JOIN_TOKEN: token,
    });
    assert.equal(joined.code, 0, joined.stderr);
    assert.match(joined.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
    // Registered: no token needed, and a spent one does not matter.
    const again = await runCli(["whoami", ...as(server, dir, "new")]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, joined.stdout);
    const spent = await runCli(["whoami", ...as(server, dir, "new"), "--join-token", token]);
    assert.equal(spent.code, 0, spent.stderr);
    assert.equal(spent.stdout, joined.stdout);
    // The token had one use: another new identity is refused.
    const usedUp = await runCli(["whoami", ...as(server, dir, "second"), "--join-token", token]);
    assertOneLineError(
      usedUp,
      1,
      `alphanet: cannot join relay at ${where}: the join token is used up (JoinTokenUsedUp): ` +
        "get a new one from the relay's operator",
    );
    // The token's secret never lands on stderr.
    for (const result of [required, stranger, usedUp]) {
      assert.ok(!result.stderr.includes(token.split(".")[2]));
    }
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
