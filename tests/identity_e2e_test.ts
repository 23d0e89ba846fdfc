/**
 * Signed identities and join tokens end to end: the client library against
 * the real relay (`server.ts` as a subprocess). An Identity, exported and
 * imported again, keeps its address across relay restarts on the same
 * `--db`; the relay's id (`AlphaNetClient.relayId`) stays the same across
 * reconnects and restarts, and changes with the registry; at a relay run
 * with `--join token` a new identity needs a token and a registered one none.
 */

import assert from "node:assert/strict";
import {
  type AlphaNetClient,
  type ClientOptions,
  connect,
  exportIdentity,
  generateIdentity,
  importIdentity,
  JoinTokenError,
  Reason,
} from "../mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { runDeno } from "./_helpers/run_deno.ts";
import { SERVER, type ServerProcess, startServer } from "./_helpers/server_process.ts";

/** The relay on `port` (0: any) with the registry file `db`. */
function relay(db: string, port = 0, ...flags: string[]): Promise<ServerProcess> {
  return startServer(["--port", String(port), "--db", db, "--log-level", "warn", ...flags]);
}

function join(port: number, options: ClientOptions): Promise<AlphaNetClient> {
  return withTimeout(connect({ port, ...options }), STEP_MS, "a client to join");
}

/** Joins with `options`, returns the virtual IP and relay id, and leaves. */
async function whoami(port: number, options: ClientOptions): Promise<[string, string]> {
  await using net = await join(port, { reconnect: false, ...options });
  return [net.virtualIp, net.relayId];
}

Deno.test("identity e2e: an Identity keeps its address across restarts on the same --db, and relayId stays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_identity_" });
  const db = `${dir}/relay.db`;
  let server = await relay(db);
  const port = server.port;
  let live: AlphaNetClient | null = null;
  try {
    const alice = await generateIdentity();
    const saved = await exportIdentity(alice);
    const [aliceIp, relayId] = await whoami(port, { identity: alice });
    assert.match(relayId, /^[0-9a-f]{64}$/);
    const [bobIp, bobRelay] = await whoami(port, { identity: await generateIdentity() });
    assert.notEqual(bobIp, aliceIp, "two identities, two addresses");
    assert.equal(bobRelay, relayId, "one relay, one id on every link");
    const secret = "a secret that derives a key pair";
    const [secretIp] = await whoami(port, { identity: secret });
    assert.ok(secretIp !== aliceIp && secretIp !== bobIp);
    const [anonymousIp, anonymousRelay] = await whoami(port, {});
    assert.equal(anonymousRelay, relayId);
    assert.ok(![aliceIp, bobIp, secretIp].includes(anonymousIp));

    // A live client rides the restart out: it reconnects to the same relay id, the same address.
    live = await join(port, {
      identity: await importIdentity(saved),
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    assert.equal(live.virtualIp, aliceIp);
    const back = new Promise<void>((resolve) =>
      live!.addEventListener("statechange", (event) => event.state === "connected" && resolve())
    );
    await server.stop();
    server = await relay(db, port);
    await withTimeout(back, STEP_MS, "the client to reconnect after the restart");
    assert.equal(live.virtualIp, aliceIp);
    assert.equal(live.relayId, relayId);
    await live.close();
    live = null;

    // After the restart: the imported identity, the secret, each the address it had.
    assert.deepEqual(await whoami(port, { identity: await importIdentity(saved) }), [
      aliceIp,
      relayId,
    ]);
    assert.deepEqual(await whoami(port, { identity: secret }), [secretIp, relayId]);
    // Another registry is another relay: another id.
    await server.stop();
    server = await relay(`${dir}/other.db`);
    const [, otherRelay] = await whoami(server.port, { identity: alice });
    assert.match(otherRelay, /^[0-9a-f]{64}$/);
    assert.notEqual(otherRelay, relayId);
  } finally {
    await live?.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("identity e2e: a relay with --db :memory: has a new id at every start", async () => {
  let server = await relay(":memory:");
  try {
    const identity = await generateIdentity();
    const [, first] = await whoami(server.port, { identity });
    const [, again] = await whoami(server.port, { identity });
    assert.equal(again, first);
    await server.stop();
    server = await relay(":memory:");
    const [, second] = await whoami(server.port, { identity });
    assert.notEqual(second, first);
  } finally {
    await server.stop();
  }
});

Deno.test("identity e2e: at a --join token relay a new identity needs a valid token; a registered one none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_identity_" });
  const db = `${dir}/relay.db`;
  const server = await relay(db, 0, "--join", "token");
  try {
    const made = await runDeno(
      ["run", "-A", SERVER, "tokens", "create", "--uses", "1", "--db", db],
      { signal: AbortSignal.timeout(30_000) },
    );
    assert.equal(made.code, 0, made.stderr);
    const joinToken = made.stdout.trim();
    const identity = await generateIdentity();
    const refused = async (options: ClientOptions, reason: Reason): Promise<void> => {
      const error = await join(server.port, { reconnect: false, ...options }).then(
        (net) => net.close().then(() => null),
        (e) => e,
      );
      assert.ok(error instanceof JoinTokenError, String(error));
      assert.equal(error.reason, reason);
    };
    await refused({ identity }, Reason.JoinTokenRequired);
    await refused({}, Reason.JoinTokenRequired); // A real IP is a new key too.
    // A token of the right form that this relay never made.
    const [prefix, id] = joinToken.split(".");
    await refused(
      { identity, joinToken: `${prefix}.${id}.${"A".repeat(43)}` },
      Reason.JoinTokenInvalid,
    );
    await refused(
      { identity, joinToken: `${prefix}.0000000000000000.${"A".repeat(43)}` },
      Reason.JoinTokenInvalid,
    );

    const [address] = await whoami(server.port, { identity, joinToken });
    // Registered: joins without a token, and with its spent one.
    assert.equal((await whoami(server.port, { identity }))[0], address);
    assert.equal((await whoami(server.port, { identity, joinToken }))[0], address);
    // One use only: another new identity is refused, the refusal spends nothing.
    await refused({ identity: await generateIdentity(), joinToken }, Reason.JoinTokenUsedUp);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
