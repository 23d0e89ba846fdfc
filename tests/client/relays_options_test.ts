/**
 * The `relays` option: each entry parsed strictly (HOST:PORT, HOST, [IPV6]:PORT,
 * [IPV6]), the list checked (1..32 entries, none twice, never with hostname,
 * port or url), and the order of a pass. Every refusal comes from connect()
 * before any connection.
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import { resolveClientConfig } from "../../client/options.ts";
import { MAX_RELAYS, parseRelayEntry, passOrder } from "../../client/relays.ts";

Deno.test("relays: entries of every accepted form become hosts, ports and names", async (t) => {
  for (
    const [entry, hostname, port, name] of [
      ["127.0.0.1:7000", "127.0.0.1", 7000, "127.0.0.1:7000"],
      ["relay.example", "relay.example", 1337, "relay.example:1337"],
      ["relay.example:1", "relay.example", 1, "relay.example:1"],
      ["[::1]:9000", "::1", 9000, "[::1]:9000"],
      ["[fe80::1]", "fe80::1", 1337, "[fe80::1]:1337"],
    ] as const
  ) {
    await t.step(entry, () => {
      assert.deepEqual({ ...parseRelayEntry(entry) }, { hostname, port, name });
    });
  }
});

Deno.test("relays: a bad entry is a TypeError, a bad port a RangeError, both naming the entry", async (t) => {
  for (
    const [entry, error] of [
      ["127.0.0.1:0", RangeError],
      ["127.0.0.1:65536", RangeError],
      ["127.0.0.1:", RangeError],
      ["127.0.0.1:80x", RangeError],
      ["127.0.0.1:+80", RangeError],
      ["[::1]:1e3", RangeError],
      ["::1", TypeError],
      ["::1:1337", TypeError],
      ["[127.0.0.1]:80", TypeError],
      [":1337", TypeError],
      ["", TypeError],
      [" host:1", TypeError],
      ["ws://127.0.0.1:1/", TypeError],
      ["user@host:1", TypeError],
      [1337, TypeError],
    ] as const
  ) {
    await t.step(String(entry), async () => {
      await assert.rejects(connect({ relays: [entry as string] }), (thrown: Error) => {
        assert.ok(thrown instanceof error, `${thrown.name}: ${thrown.message}`);
        assert.match(thrown.message, /^Cannot connect: relays entry /);
        return true;
      });
    });
  }
});

Deno.test("relays: the list is 1..32 entries, none twice, an array, alone", async () => {
  await assert.rejects(
    connect({ relays: [] }),
    new RangeError(`Cannot connect: relays has 0 entries, not 1..${MAX_RELAYS}`),
  );
  const many = Array.from({ length: MAX_RELAYS + 1 }, (_, i) => `127.0.0.1:${i + 1}`);
  await assert.rejects(connect({ relays: many }), RangeError);
  await assert.rejects(
    connect({ relays: ["127.0.0.1:1", "Localhost:2", "localhost:2"] }),
    new TypeError("Cannot connect: relays lists localhost:2 twice"),
  );
  await assert.rejects(
    connect({ relays: "127.0.0.1:1" as unknown as string[] }),
    /relays is not an array/,
  );
  for (
    const [options, named] of [
      [{ relays: ["127.0.0.1:1"], hostname: "127.0.0.1" }, "hostname"],
      [{ relays: ["127.0.0.1:1"], port: 1 }, "port"],
      [{ relays: ["127.0.0.1:1"], url: "ws://127.0.0.1:1/", port: 2 }, "port, url"],
    ] as const
  ) {
    await assert.rejects(
      connect(options),
      (thrown: Error) =>
        thrown instanceof TypeError &&
        thrown.message.startsWith(`Cannot connect: relays cannot be combined with ${named}:`),
    );
  }
});

Deno.test("relays: the config lists them in order, the first as hostname and port; tls applies to all", () => {
  const config = resolveClientConfig({
    relays: ["10.0.0.1:1", "[::1]", "relay.example:3"],
    tls: true,
  });
  assert.deepEqual(config.relays.map((relay) => relay.name), [
    "10.0.0.1:1",
    "[::1]:1337",
    "relay.example:3",
  ]);
  assert.equal(config.hostname, "10.0.0.1");
  assert.equal(config.port, 1);
  assert.deepEqual(config.tls, { caCerts: undefined });
  // Without the option the one relay is hostname and port.
  assert.deepEqual(resolveClientConfig({ port: 9 }).relays.map((relay) => relay.name), [
    "127.0.0.1:9",
  ]);
  assert.deepEqual(resolveClientConfig({ url: "ws://[::1]:8/" }).relays.map((r) => r.name), [
    "[::1]:8",
  ]);
});

Deno.test("passOrder() starts after the relay the link was on and wraps around", () => {
  assert.deepEqual(passOrder(1, null), [0]);
  assert.deepEqual(passOrder(1, 0), [0]);
  assert.deepEqual(passOrder(3, null), [0, 1, 2]);
  assert.deepEqual(passOrder(3, 0), [1, 2, 0]);
  assert.deepEqual(passOrder(3, 2), [0, 1, 2]);
  assert.deepEqual(passOrder(4, 1), [2, 3, 0, 1]);
});
