/**
 * TLS between the client and the relay: the real `server.ts` as a
 * subprocess with the test certificate of tests/testdata/tls/, clients in
 * this process, loopback only.
 */

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { resolveClientConfig } from "../client/options.ts";
import { withTimeout } from "./_helpers/async.ts";
import { pseudoRandomBytes, randomIdentity, sha256hex } from "./_helpers/bytes.ts";
import { recordStates } from "./_helpers/client_states.ts";
import { runDeno } from "./_helpers/run_deno.ts";
import { SERVER, startServer } from "./_helpers/server_process.ts";
import { readAll } from "./_helpers/streams.ts";
import { CA_FILE, CERT_FILE, KEY_FILE, startTlsServer, testCa } from "./_helpers/tls.ts";

/** The relay's Hello time-out in these tests, in seconds: the mismatches must fail well within it. */
const HELLO_TIMEOUT_S = 10;
/** How soon a mismatch must fail: a fifth of the Hello time-out (it takes milliseconds). */
const MISMATCH_BOUND_MS = HELLO_TIMEOUT_S * 1000 / 5;

/** Runs `join` and returns what it rejected with and how long that took. */
async function failure(join: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await withTimeout(join(), HELLO_TIMEOUT_S * 1000 * 2, "the join to fail");
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error("the join succeeded");
}

Deno.test("TLS relay: two TLS clients with the test CA query status and move 4 MiB each way, byte-exact", async () => {
  const server = await startTlsServer();
  const tls = { port: server.port, tls: true, caCerts: [testCa()] };
  try {
    await using alice = await connect({ ...tls, identity: randomIdentity() });
    await using bob = await connect({ ...tls, identity: randomIdentity() });
    using listener = bob.listen({ port: 443 });
    assert.deepEqual(await alice.status({ hostname: bob.virtualIp, port: 443 }), {
      online: true,
      listening: true,
    });
    const size = 4 * 1024 * 1024;
    const fromAlice = pseudoRandomBytes(size, 11);
    const fromBob = pseudoRandomBytes(size, 12);
    const bobSide = (async () => {
      using conn = await listener.accept();
      const [received] = await Promise.all([
        readAll(conn),
        conn.write(fromBob).then(() => conn.closeWrite()),
      ]);
      return received;
    })();
    using conn = await alice.connect({ hostname: bob.virtualIp, port: 443 });
    const [aliceReceived] = await Promise.all([
      readAll(conn),
      conn.write(fromAlice).then(() => conn.closeWrite()),
    ]);
    const bobReceived = await bobSide;
    assert.equal(aliceReceived.length, size);
    assert.equal(bobReceived.length, size);
    assert.equal(await sha256hex(aliceReceived), await sha256hex(fromBob));
    assert.equal(await sha256hex(bobReceived), await sha256hex(fromAlice));
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("TLS relay: a client reconnects over TLS to a restarted relay and keeps its address", async () => {
  const dir = await Deno.makeTempDir();
  const db = ["--db", `${dir}/alphanet.db`];
  let server = await startTlsServer(db);
  const port = server.port;
  try {
    await using net = await connect({
      port,
      tls: true,
      caCerts: [testCa()],
      identity: randomIdentity(),
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    const address = net.virtualIp;
    const states = recordStates(net);
    assert.equal(await server.stop(), 0);
    await states.next("reconnecting");
    server = await startTlsServer([...db, "--port", String(port)]);
    await states.next("connected", "reconnected over TLS", 15_000);
    assert.equal(net.virtualIp, address);
    assert.deepEqual(await net.status({ hostname: address, port: 1 }), {
      online: true,
      listening: false,
    });
  } finally {
    assert.equal(await server.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS relay: a plain client fails at once, told that the relay speaks TLS", async () => {
  const server = await startTlsServer(["--hello-timeout", String(HELLO_TIMEOUT_S)]);
  try {
    const { error, ms } = await failure(() =>
      connect({ port: server.port, identity: randomIdentity(), reconnect: false })
    );
    assert.ok(error instanceof Deno.errors.InvalidData, String(error));
    assert.equal(error.message, "the relay speaks TLS (use --tls / tls: true)");
    assert.ok(ms < MISMATCH_BOUND_MS, `failed after ${ms} ms`);
    // The relay is unharmed: a TLS client still joins.
    await using net = await connect({ port: server.port, tls: true, caCerts: [testCa()] });
    assert.equal(net.state, "connected");
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("plain relay: a TLS client fails at once, told that the relay may not speak TLS", async () => {
  const server = await startServer([
    "--port",
    "0",
    "--db",
    ":memory:",
    "--log-level",
    "warn",
    "--hello-timeout",
    String(HELLO_TIMEOUT_S),
  ]);
  try {
    const { error, ms } = await failure(() =>
      connect({ port: server.port, tls: true, caCerts: [testCa()], reconnect: false })
    );
    assert.ok(error instanceof Deno.errors.InvalidData, String(error));
    assert.equal(error.message, "TLS handshake failed: the relay may not speak TLS (drop --tls)");
    assert.ok(ms < MISMATCH_BOUND_MS, `failed after ${ms} ms`);
    await using net = await connect({ port: server.port });
    assert.equal(net.state, "connected");
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("TLS relay: a TLS client without the test CA fails on the certificate", async () => {
  const server = await startTlsServer();
  try {
    const { error } = await failure(() => connect({ port: server.port, tls: true }));
    assert.ok(error instanceof Deno.errors.InvalidData, String(error));
    assert.equal(error.message, "TLS handshake failed: invalid peer certificate: UnknownIssuer");
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("connect() takes caCerts only with tls: true, and only as PEM strings", () => {
  assert.equal(resolveClientConfig({}).tls, null);
  assert.deepEqual(resolveClientConfig({ tls: true }).tls, { caCerts: undefined });
  assert.deepEqual(resolveClientConfig({ tls: true, caCerts: ["pem"] }).tls, {
    caCerts: ["pem"],
  });
  assert.throws(
    () => resolveClientConfig({ caCerts: ["pem"] }),
    new TypeError("Cannot connect: caCerts needs tls: true"),
  );
  assert.throws(
    () => resolveClientConfig({ tls: true, caCerts: "pem" as unknown as string[] }),
    new TypeError("Cannot connect: caCerts is not an array of PEM strings"),
  );
});

/** Runs `server.ts args` on a free loopback port to its exit. */
function runServer(args: string[]): ReturnType<typeof runDeno> {
  return runDeno(
    ["run", "-A", SERVER, "--hostname", "127.0.0.1", "--port", "0", "--db", ":memory:", ...args],
    { signal: AbortSignal.timeout(20_000) },
  );
}

Deno.test("server.ts: --tls-cert and --tls-key go together; bad files are one line at start", async (t) => {
  await t.step("--tls-cert alone is a usage error", async () => {
    const run = await runServer(["--tls-cert", CERT_FILE]);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, "alphanet relay: --tls-cert needs --tls-key (see --help)\n");
  });
  await t.step("--tls-key alone is a usage error", async () => {
    const run = await runServer(["--tls-key", KEY_FILE]);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, "alphanet relay: --tls-key needs --tls-cert (see --help)\n");
  });
  await t.step("a missing key file", async () => {
    const missing = `${CERT_FILE}.missing`;
    const run = await runServer(["--tls-cert", CERT_FILE, "--tls-key", missing]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      new RegExp(`^alphanet relay: cannot read --tls-key ${missing}: no such file[^\n]*\n$`, "i"),
    );
  });
  await t.step("a file that holds no certificate", async () => {
    const run = await runServer(["--tls-cert", KEY_FILE, "--tls-key", KEY_FILE]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^alphanet relay: cannot start: cannot use the TLS certificate and key: [^\n]+\n$/,
    );
  });
  await t.step("a key that is not the certificate's", async () => {
    const run = await runServer(["--tls-cert", CA_FILE, "--tls-key", KEY_FILE]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^alphanet relay: cannot start: cannot use the TLS certificate and key: [^\n]+\n$/,
    );
  });
});
