/**
 * Join tokens end to end: `server.ts tokens create|list|revoke` beside a
 * running `server.ts --join token`, and raw clients joining with and
 * without them. Each refusal has its own reason, and a refused join spends
 * nothing.
 */

import assert from "node:assert/strict";
import { generateIdentity, type Identity } from "../client/identity.ts";
import { PacketType, Reason } from "../protocol/mod.ts";
import { AddressPool } from "../server/address_pool.ts";
import { parseRelayFlags, USAGE } from "../server/flags.ts";
import { Registry } from "../server/registry.ts";
import { waitUntil } from "./_helpers/async.ts";
import { createToken, listTokens, tokensCommand } from "./_helpers/join_tokens.ts";
import { proofFor, rawClient, type RawIdentity } from "./_helpers/raw_client.ts";
import { startLoggedServer } from "./_helpers/server_process.ts";

/** A `--join token` relay on a registry file of its own, logging JSON. */
interface TokenRelay {
  readonly port: number;
  readonly db: string;
  /** Stops the relay (it must exit 0), removes its files and returns its log events. */
  stop(): Promise<Record<string, unknown>[]>;
}

/** Starts `server.ts --join token` on a registry file in a temp dir. */
async function tokenRelay(extra: string[] = []): Promise<TokenRelay> {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_tokens_" });
  const db = `${dir}/alphanet.db`;
  try {
    const server = await startLoggedServer([
      "--port",
      "0",
      "--db",
      db,
      "--join",
      "token",
      ...extra,
    ]);
    return {
      port: server.port,
      db,
      async stop(): Promise<Record<string, unknown>[]> {
        try {
          return await server.stop();
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/** Joins as `identity` (a fresh one by default) with `token`; returns the address. */
async function joins(port: number, token?: string, identity?: RawIdentity): Promise<number> {
  await using raw = await rawClient(port);
  return await raw.handshake(identity, { joinToken: token });
}

/** Joins as `identity` with `token` and expects the Error `reason`. */
async function refused(
  port: number,
  reason: Reason,
  token?: string,
  identity?: RawIdentity,
): Promise<string> {
  await using raw = await rawClient(port);
  await raw.prove(identity, { joinToken: token });
  return (await raw.expectError(reason, "a refused join")).message;
}

Deno.test("--join takes open or token, open by default, and --help says so", () => {
  const parsed = parseRelayFlags(["--join", "token"]);
  assert.ok(!parsed.help);
  assert.equal(parsed.options.join, "token");
  const open = parseRelayFlags([]);
  assert.ok(!open.help);
  assert.equal(open.options.join, undefined, "left to the default");
  assert.throws(
    () => parseRelayFlags(["--join", "closed"]),
    /bad --join "closed": expected one of open, token/,
  );
  assert.match(USAGE, /--join open\|token +who may register a new address: .* \(default open\)/);
});

Deno.test("a --join token relay: no token, a wrong, revoked, expired or used-up one are each refused with their own reason", async () => {
  const relay = await tokenRelay();
  try {
    assert.match(
      await refused(relay.port, Reason.JoinTokenRequired),
      /registers new clients only with a join token/,
    );
    await refused(relay.port, Reason.JoinTokenRequired, undefined, null);

    const good = await createToken(relay.db);
    // Another secret under a real id, and a token no registry ever made.
    const [, id, secret] = good.token.split(".");
    const otherSecret = (await createToken(relay.db)).token.split(".")[2];
    assert.notEqual(otherSecret, secret);
    await refused(relay.port, Reason.JoinTokenInvalid, `anj1.${id}.${otherSecret}`);
    await refused(relay.port, Reason.JoinTokenInvalid, `anj1.0123456789abcdef.${secret}`);

    const revoked = await createToken(relay.db);
    const revoke = await tokensCommand("revoke", revoked.id, "--db", relay.db);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(revoke.stdout, `revoked ${revoked.id}\n`);
    await refused(relay.port, Reason.JoinTokenInvalid, revoked.token);

    const expiring = await createToken(relay.db, "--expires", "0.001");
    const expiresAt = Date.parse(expiring.expiresAt!);
    assert.ok(expiresAt - Date.parse(expiring.createdAt) <= 1);
    await waitUntil(() => Date.now() >= expiresAt, "the token's expiry to pass");
    assert.match(
      await refused(relay.port, Reason.JoinTokenExpired, expiring.token),
      /join token has expired/,
    );

    const once = await createToken(relay.db, "--uses", "1");
    await joins(relay.port, once.token);
    assert.match(
      await refused(relay.port, Reason.JoinTokenUsedUp, once.token),
      /used as many times as it allows/,
    );

    // Without --uses a token admits one identity: a leaked copy of a used token admits no one.
    const byDefault = await createToken(relay.db);
    assert.equal(byDefault.maxUses, 1);
    await joins(relay.port, byDefault.token);
    await refused(relay.port, Reason.JoinTokenUsedUp, byDefault.token);
    const unlimited = await createToken(relay.db, "--uses", "unlimited");
    assert.equal(unlimited.maxUses, null);

    const tokens = await listTokens(relay.db);
    assert.equal(tokens.get(good.id)?.uses, 0, "no refusal spent a use of a good token");
    assert.equal(tokens.get(good.id)?.state, "active");
    assert.equal(tokens.get(revoked.id)?.state, "revoked");
    assert.equal(tokens.get(revoked.id)?.uses, 0);
    assert.equal(tokens.get(expiring.id)?.state, "expired");
    assert.equal(tokens.get(expiring.id)?.uses, 0);
    assert.deepEqual([tokens.get(once.id)?.uses, tokens.get(once.id)?.state], [1, "used-up"]);
  } finally {
    await relay.stop();
  }
});

Deno.test("a --join token relay admits a token holder, counts each new key against --uses, and lets a known one back without a token", async () => {
  const relay = await tokenRelay();
  try {
    const token = await createToken(relay.db, "--uses", "3");
    assert.deepEqual([token.uses, token.maxUses, token.expiresAt], [0, 3, null]);
    const identity: Identity = await generateIdentity();
    const address = await joins(relay.port, token.token, identity);
    assert.equal((await listTokens(relay.db)).get(token.id)?.uses, 1);
    assert.ok((await listTokens(relay.db)).get(token.id)?.lastUsedAt);

    // Known: no token needed, and one alongside is not spent.
    assert.equal(await joins(relay.port, undefined, identity), address);
    assert.equal(await joins(relay.port, token.token, identity), address);
    assert.equal((await listTokens(relay.db)).get(token.id)?.uses, 1);

    // A client without identity is a new key (its real IP) and pays too; then it is known.
    const byIp = await joins(relay.port, token.token, null);
    assert.equal(await joins(relay.port, undefined, null), byIp);
    await joins(relay.port, token.token);
    assert.equal((await listTokens(relay.db)).get(token.id)?.uses, 3);
    await refused(relay.port, Reason.JoinTokenUsedUp, token.token);
    assert.equal((await listTokens(relay.db)).get(token.id)?.uses, 3);
  } finally {
    const events = await relay.stop();
    const used = events.filter((event) => event.event === "token-used");
    assert.equal(used.length, 3, JSON.stringify(events));
    for (const event of used) {
      assert.equal(event.client, "127.0.0.1");
      assert.match(String(event.vip), /^\d+\.\d+\.\d+\.\d+$/);
      assert.match(String(event.token), /^[0-9a-f]{16}$/);
    }
    const reasons = events.filter((event) => event.event === "refused").map((e) => e.reason);
    assert.deepEqual(reasons, ["JoinTokenUsedUp"]);
  }
});

Deno.test("a join refused after the token's check spends nothing: a bad identity signature, the new-address allowance", async () => {
  const relay = await tokenRelay(["--max-new-identities-per-ip", "1"]);
  try {
    // Two uses: the allowance, not the token, must be what refuses the second join.
    const token = await createToken(relay.db, "--uses", "2");
    {
      await using raw = await rawClient(relay.port);
      const proof = await proofFor(await raw.greet(), await generateIdentity(), {
        joinToken: token.token,
      });
      proof.identity!.signature[0] ^= 1;
      await raw.send(proof);
      await raw.expectError(Reason.InvalidIdentity, "a bad identity signature with a good token");
    }
    assert.equal((await listTokens(relay.db)).get(token.id)?.uses, 0);
    await joins(relay.port, token.token);
    await refused(relay.port, Reason.RateLimited, token.token);
    assert.equal((await listTokens(relay.db)).get(token.id)?.uses, 1);
  } finally {
    await relay.stop();
  }
});

Deno.test("tokens create prints the token once, stores no secret, and logs an audit line; list and revoke work by id", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_tokens_" });
  const db = `${dir}/alphanet.db`;
  try {
    // The registry must exist (a relay made it): a typo in --db makes no new registry.
    const missing = await tokensCommand("create", "--db", db);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^alphanet relay: cannot open registry .*: no such file\n$/);
    Registry.open(db, AddressPool.default()).close();

    const created = await tokensCommand(
      "create",
      "--db",
      db,
      "--uses",
      "2",
      "--expires",
      "7d",
      "--log-format",
      "json",
    );
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^anj1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\n$/);
    const [, id, secret] = created.stdout.trim().split(".");
    const audit = JSON.parse(created.stderr.trim());
    assert.equal(audit.event, "admin-token-create");
    assert.equal(audit.token, id);
    assert.equal(audit.maxUses, 2);
    assert.ok(Math.abs(Date.parse(audit.expiresAt) - (Date.now() + 7 * 86_400_000)) < 60_000);
    assert.equal(audit.db, db);
    assert.equal(created.stderr.includes(secret), false, "the secret is never logged");

    const listed = await tokensCommand("list", "--db", db);
    assert.equal(listed.code, 0, listed.stderr);
    const [header, row] = listed.stdout.trimEnd().split("\n");
    assert.match(header, /^ID\s+USES\s+MAX USES\s+EXPIRES\s+STATE\s+CREATED\s+LAST USED$/);
    assert.match(row, new RegExp(`^${id}\\s+0\\s+2\\s+\\S+Z\\s+active\\s+\\S+Z\\s+-$`));
    assert.equal(listed.stdout.includes(secret), false, "list never shows the secret");
    const json = await listTokens(db);
    assert.deepEqual(Object.keys(json.get(id)!).sort(), [
      "createdAt",
      "expiresAt",
      "id",
      "lastUsedAt",
      "maxUses",
      "revokedAt",
      "state",
      "uses",
    ]);

    const revoked = await tokensCommand("revoke", id, "--db", db, "--json", "--log-format", "json");
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.deepEqual(JSON.parse(revoked.stdout), { revoked: id });
    const revokeAudit = JSON.parse(revoked.stderr.trim());
    assert.deepEqual([revokeAudit.event, revokeAudit.token], ["admin-token-revoke", id]);
    const again = await tokensCommand("revoke", id, "--db", db);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is revoked already/);
    const unknown = await tokensCommand("revoke", "0123456789abcdef", "--db", db);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no join token has id 0123456789abcdef/);
    assert.equal((await listTokens(db)).get(id)?.state, "revoked");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokens usage errors are one line with exit 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /tokens: expected create, list or revoke/],
    [["mint"], /tokens: unknown action "mint"/],
    [["create", "--uses", "0"], /bad --uses "0": expected a whole number above 0 or "unlimited"/],
    [["create", "--uses", "two"], /bad --uses "two"/],
    [["create", "--expires", "0"], /bad --expires "0": expected a duration above 0/],
    [["create", "--expires", "soon"], /bad --expires "soon"/],
    [["revoke"], /tokens revoke: bad token id ""/],
    [["revoke", "ABCDEF0123456789"], /bad token id "ABCDEF0123456789"/],
    [["list", "--uses", "2"], /tokens list: --uses is for create/],
    [["list", "extra"], /tokens list: unexpected argument "extra"/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(nothing)", async () => {
      const run = await tokensCommand(...args, "--db", "/nonexistent/alphanet.db");
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stdout, "");
      assert.match(run.stderr, message);
      assert.match(run.stderr, /\(see tokens --help\)\n$/);
      assert.equal(run.stderr.trimEnd().split("\n").length, 1);
    });
  }
  const help = await tokensCommand("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /tokens create \[--uses N\] \[--expires DURATION\]/);
});

Deno.test("a token's text read on the wire: the client sends its id and a signature, never the secret", async () => {
  const relay = await tokenRelay();
  try {
    const token = await createToken(relay.db);
    await using raw = await rawClient(relay.port);
    const proof = await raw.prove(undefined, { joinToken: token.token });
    assert.deepEqual(
      Array.from(proof.joinToken!.id, (b) => b.toString(16).padStart(2, "0")).join(""),
      token.id,
    );
    await raw.expect(PacketType.VirtualIP, "VirtualIP");
  } finally {
    await relay.stop();
  }
});
