/**
 * The `url` option: a ws:// or wss:// URL at path "/", alone (never with
 * hostname, port or tls), with caCerts only for wss://. Every refusal is a
 * TypeError from connect() before any connection.
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import { resolveClientConfig } from "../../client/options.ts";

Deno.test("url: a ws:// or wss:// URL (string or URL) names the relay and leaves TCP settings unused", () => {
  const plain = resolveClientConfig({ url: "ws://127.0.0.1:8080" });
  assert.deepEqual(plain.websocket, { url: "ws://127.0.0.1:8080/", caCerts: undefined });
  assert.equal(plain.hostname, "127.0.0.1");
  assert.equal(plain.port, 8080);
  assert.equal(plain.tls, null);

  const secure = resolveClientConfig({
    url: new URL("wss://relay.example/?x=1"),
    caCerts: ["pem"],
  });
  assert.deepEqual(secure.websocket, { url: "wss://relay.example/?x=1", caCerts: ["pem"] });
  assert.equal(secure.port, 443);
  assert.equal(resolveClientConfig({ url: "ws://relay.example/" }).port, 80);
  assert.equal(resolveClientConfig({ url: "ws://[::1]:9/" }).hostname, "::1");
  assert.equal(resolveClientConfig({}).websocket, null);
});

Deno.test("url: with hostname, port or tls it is a TypeError that names them", async () => {
  for (
    const [options, named] of [
      [{ url: "ws://127.0.0.1:1/", hostname: "127.0.0.1" }, "hostname"],
      [{ url: "ws://127.0.0.1:1/", port: 1 }, "port"],
      [{ url: "wss://127.0.0.1:1/", tls: true }, "tls"],
      [{ url: "ws://127.0.0.1:1/", tls: false, port: 2 }, "port, tls"],
    ] as const
  ) {
    await assert.rejects(
      connect(options),
      new TypeError(
        `Cannot connect: url cannot be combined with ${named}: the URL names the relay ` +
          "(and wss:// is TLS)",
      ),
    );
  }
});

Deno.test("url: another scheme, another path, a fragment or no URL at all is a TypeError", () => {
  const refusals: [unknown, RegExp][] = [
    ["http://127.0.0.1:1/", /is not a ws:\/\/ or wss:\/\/ URL/],
    ["tcp://127.0.0.1:1", /is not a ws:\/\/ or wss:\/\/ URL/],
    [
      "ws://127.0.0.1:1/alphanet",
      /has the path "\/alphanet": the relay serves its WebSocket at "\/" only/,
    ],
    ["ws://127.0.0.1:1/#x", /has the path "\/#x"/],
    ["127.0.0.1:1", /is not a ws:\/\/ or wss:\/\/ URL|is not a URL/],
    ["not a url", /is not a URL \(expected ws:\/\/HOST:PORT\/ or wss:\/\/HOST:PORT\/\)/],
    [1337, /url is not a string or a URL/],
  ];
  for (const [url, message] of refusals) {
    assert.throws(
      () => resolveClientConfig({ url: url as string }),
      (error) => error instanceof TypeError && message.test(error.message),
      String(url),
    );
  }
});

Deno.test("url: caCerts only with wss://, and only as PEM strings", () => {
  assert.throws(
    () => resolveClientConfig({ url: "ws://127.0.0.1:1/", caCerts: ["pem"] }),
    new TypeError("Cannot connect: caCerts needs a wss:// url (or tls: true)"),
  );
  assert.throws(
    () => resolveClientConfig({ url: "wss://127.0.0.1:1/", caCerts: "pem" as unknown as string[] }),
    new TypeError("Cannot connect: caCerts is not an array of PEM strings"),
  );
});

Deno.test("url: a port outside 1..65535 is a RangeError, as for TCP", () => {
  assert.throws(() => resolveClientConfig({ url: "ws://127.0.0.1:0/" }), RangeError);
});
