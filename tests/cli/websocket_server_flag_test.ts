/**
 * `--server` (and $ALPHANET_SERVER) as a relay's WebSocket URL: `ws://HOST:PORT/`
 * or `wss://HOST:PORT/` joins over WebSocket; any other scheme or path, or
 * `--tls` with a URL, is a usage error; `--ca-cert` goes with `wss://`. A
 * WebSocket relay that cannot be reached is one runtime error line saying
 * what to check.
 */

import assert from "node:assert/strict";
import { commonOptions } from "../../cli/args.ts";
import { UsageError } from "../../flags/usage_error.ts";
import { assertOneLineError, freePort, literal, runCli } from "./_helpers.ts";

Deno.test("cli args: --server ws:// and wss:// name a WebSocket relay, normalized, its host and port kept", () => {
  const plain = commonOptions({ server: "ws://127.0.0.1:8080" });
  assert.equal(plain.websocket, "ws://127.0.0.1:8080/");
  assert.deepEqual(plain.server, { hostname: "127.0.0.1", port: 8080 });
  assert.equal(plain.tls, false);

  const secure = commonOptions({ server: "wss://relay.example/", "ca-cert": "ca.pem" });
  assert.equal(secure.websocket, "wss://relay.example/");
  assert.deepEqual(secure.server, { hostname: "relay.example", port: 443 });
  assert.equal(secure.caCertFile, "ca.pem");

  assert.deepEqual(commonOptions({ server: "ws://[::1]:9/" }).server, { hostname: "::1", port: 9 });
  assert.equal(commonOptions({ server: "127.0.0.1:1337" }).websocket, null);
});

Deno.test("cli args: another scheme or path, --tls with a URL, --ca-cert with ws:// are usage errors", () => {
  const refusals: [Parameters<typeof commonOptions>[0], string][] = [
    [
      { server: "http://127.0.0.1:1/" },
      'bad --server "http://127.0.0.1:1/": expected HOST:PORT, ws://HOST:PORT/ or wss://HOST:PORT/',
    ],
    [
      { server: "ws://127.0.0.1:1/alphanet" },
      'bad --server "ws://127.0.0.1:1/alphanet": a relay serves its WebSocket at the path / only ' +
      "(ws://HOST:PORT/)",
    ],
    [
      { server: "ws://user:pw@127.0.0.1:1/" },
      'bad --server "ws://user:pw@127.0.0.1:1/": a relay\'s URL takes no user name or password',
    ],
    [
      { server: "ws://127.0.0.1:1/", tls: true },
      "--tls is for a HOST:PORT relay; over WebSocket the URL says it: use wss://127.0.0.1:1/",
    ],
    [
      { server: "wss://127.0.0.1:1/", tls: true },
      "--tls is for a HOST:PORT relay; over WebSocket the URL says it: use wss://127.0.0.1:1/",
    ],
    [
      { server: "ws://127.0.0.1:1/", "ca-cert": "ca.pem" },
      "--ca-cert needs a wss:// relay (TLS); this one is ws://",
    ],
  ];
  for (const [values, message] of refusals) {
    assert.throws(() => commonOptions(values), new UsageError(message), JSON.stringify(values));
  }
});

Deno.test("cli: whoami --server ws:// with nothing there is one line naming the URL and what to check", async () => {
  const url = `ws://127.0.0.1:${freePort()}/`;
  assertOneLineError(
    await runCli(["whoami", "--no-identity", "--server", url]),
    1,
    new RegExp(
      `^alphanet: cannot join relay at ${literal(url)}: no WebSocket connection to ${
        literal(url)
      }.*: the relay is unreachable, or this is not its WebSocket endpoint ` +
        literal("(server.ts --websocket-port)") + "$",
    ),
  );
});

Deno.test("cli: $ALPHANET_SERVER takes a WebSocket URL too, and --tls with it is a usage error", async () => {
  const url = `ws://127.0.0.1:${freePort()}/`;
  assertOneLineError(
    await runCli(["whoami", "--no-identity", "--tls"], { ALPHANET_SERVER: url }),
    2,
    `alphanet: --tls is for a HOST:PORT relay; over WebSocket the URL says it: use wss://${
      url.slice(5)
    } (see whoami --help)`,
  );
  assertOneLineError(
    await runCli(["whoami", "--no-identity", "--server", "ftp://127.0.0.1:1/"]),
    2,
    'alphanet: bad --server "ftp://127.0.0.1:1/": expected HOST:PORT, ws://HOST:PORT/ or ' +
      "wss://HOST:PORT/ (see whoami --help)",
  );
});
