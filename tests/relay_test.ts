/**
 * Relay integration: virtual IP assignment, permanence across restarts,
 * takeover, handshake refusals, pool exhaustion. Real TCP on 127.0.0.1.
 */

import assert from "node:assert/strict";
import { type AlphaNetClient, connect, RelayError, type VirtualConn } from "../mod.ts";
import { formatIpv4, PacketType, parseIpv4, PROTOCOL_VERSION, Reason } from "../protocol/mod.ts";
import { Relay } from "../server.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { randomIdentity, text, utf8 } from "./_helpers/bytes.ts";
import { rawClient } from "./_helpers/raw_client.ts";
import { assertRelayServes, startRelay } from "./_helpers/relay_fixture.ts";
import { readAll } from "./_helpers/streams.ts";

function join(port: number, identity?: string): Promise<AlphaNetClient> {
  return withTimeout(connect({ port, identity }), STEP_MS, "client to join the relay");
}

/** Echoes one message from `from` to a listener of `to` and back. */
async function assertEcho(from: AlphaNetClient, to: AlphaNetClient, port: number): Promise<void> {
  const listener = to.listen({ port });
  try {
    const served = (async () => {
      const conn = await listener.accept();
      try {
        const got = await readAll(conn);
        await conn.write(got);
      } finally {
        conn.close();
      }
    })();
    let conn: VirtualConn | undefined;
    try {
      conn = await withTimeout(
        from.connect({ hostname: to.virtualIp, port }),
        STEP_MS,
        "connect for echo",
      );
      const message = `echo ${from.virtualIp} -> ${to.virtualIp}`;
      await conn.write(utf8(message));
      await conn.closeWrite();
      assert.equal(text(await withTimeout(readAll(conn), STEP_MS, "echo reply")), message);
    } finally {
      conn?.close();
      await withTimeout(served, STEP_MS, "echo server to finish");
    }
  } finally {
    listener.close();
  }
}

Deno.test("assigned virtual IPs come from the configured pool", async () => {
  const relay = await startRelay({ vipRange: "10.77.0.0/16", db: ":memory:" });
  const clients: AlphaNetClient[] = [];
  try {
    const first = parseIpv4("10.77.0.1")!;
    const last = parseIpv4("10.77.255.254")!;
    for (let i = 0; i < 5; i++) clients.push(await join(relay.port, randomIdentity()));
    for (const client of clients) {
      const address = parseIpv4(client.virtualIp);
      assert.ok(address !== null, `not a dotted quad: ${client.virtualIp}`);
      assert.ok(
        address >= first && address <= last,
        `${client.virtualIp} is outside 10.77.0.1..10.77.255.254`,
      );
    }
  } finally {
    for (const client of clients) await client.close();
    await relay.close();
  }
});

Deno.test("distinct identities get distinct virtual IPs", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const clients: AlphaNetClient[] = [];
  try {
    for (let i = 0; i < 8; i++) clients.push(await join(relay.port, randomIdentity()));
    const addresses = new Set(clients.map((client) => client.virtualIp));
    assert.equal(addresses.size, clients.length, `duplicates in ${[...addresses]}`);
  } finally {
    for (const client of clients) await client.close();
    await relay.close();
  }
});

Deno.test("an identity keeps its virtual IP after the relay restarts on the same db file", async () => {
  const first = await startRelay();
  const identity = randomIdentity();
  let restarted: Relay | undefined;
  try {
    const before = await join(first.port, identity);
    const other = await join(first.port, randomIdentity());
    const address = before.virtualIp;
    const otherAddress = other.virtualIp;
    await before.close();
    await other.close();
    await first.relay.close();

    restarted = await Relay.start({
      hostname: "127.0.0.1",
      port: 0,
      db: first.db,
      logLevel: "silent",
    });
    // The other identity joins first this time, so order cannot explain a match.
    const otherAfter = await join(restarted.addr.port, randomIdentity());
    const after = await join(restarted.addr.port, identity);
    try {
      assert.equal(after.virtualIp, address);
      assert.notEqual(otherAfter.virtualIp, address);
      assert.notEqual(otherAfter.virtualIp, otherAddress);
    } finally {
      await after.close();
      await otherAfter.close();
    }
  } finally {
    await restarted?.close();
    await first.close();
  }
});

Deno.test("a second client without identity from the same real IP takes over the first", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const first = await join(relay.port);
  let second: AlphaNetClient | undefined;
  try {
    second = await join(relay.port);
    const ended = await withTimeout(first.closed, STEP_MS, "first client to be replaced");
    assert.ok(ended instanceof RelayError, `expected RelayError, got ${ended}`);
    assert.equal(ended.reason, Reason.Replaced);
    assert.equal(ended.reasonName, "Replaced");
    assert.equal(second.virtualIp, first.virtualIp);
    // The newcomer is the one online at that address.
    const status = await withTimeout(
      second.status({ hostname: second.virtualIp, port: 9 }),
      STEP_MS,
      "status of the newcomer",
    );
    assert.deepEqual(status, { online: true, listening: false });
  } finally {
    await first.close();
    await second?.close();
    await relay.close();
  }
});

Deno.test("clients with different identities from the same real IP both stay online", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const a = await join(relay.port, randomIdentity());
  const b = await join(relay.port, randomIdentity());
  try {
    assert.notEqual(a.virtualIp, b.virtualIp);
    // A Replaced error would reach a client before any later answer on its link.
    const aSeesB = await withTimeout(a.status({ hostname: b.virtualIp, port: 1 }), STEP_MS, "a→b");
    const bSeesA = await withTimeout(b.status({ hostname: a.virtualIp, port: 1 }), STEP_MS, "b→a");
    assert.deepEqual(aSeesB, { online: true, listening: false });
    assert.deepEqual(bSeesA, { online: true, listening: false });
    const pending = Symbol("pending");
    assert.equal(await Promise.race([a.closed, Promise.resolve(pending)]), pending);
    assert.equal(await Promise.race([b.closed, Promise.resolve(pending)]), pending);
    await assertEcho(a, b, 7);
  } finally {
    await a.close();
    await b.close();
    await relay.close();
  }
});

Deno.test("the relay refuses a Hello of another protocol version with UnsupportedVersion", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const raw = await rawClient(relay.port);
  try {
    await raw.send({ type: PacketType.Hello, version: 99 });
    const error = await raw.expectError(Reason.UnsupportedVersion, "version 99 refusal");
    assert.match(error.message, /99/);
    await assertRelayServes(relay.port);
  } finally {
    await raw.close();
    await relay.close();
  }
});

Deno.test("the relay refuses a version 2 Hello with bytes after its version as Malformed", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const raw = await rawClient(relay.port);
  try {
    // Version 2 in a version 1 layout: an identityLength and 10 identity bytes behind it.
    const identity = utf8("ten-bytes!");
    const frame = new Uint8Array(5 + 4 + identity.length);
    const view = new DataView(frame.buffer);
    view.setUint32(0, 4 + identity.length);
    view.setUint8(4, PacketType.Hello);
    view.setUint16(5, PROTOCOL_VERSION);
    view.setUint16(7, identity.length);
    frame.set(identity, 9);
    await raw.write(frame);
    await raw.expectError(Reason.Malformed, "a version 2 Hello of 14 bytes");
    await assertRelayServes(relay.port);
  } finally {
    await raw.close();
    await relay.close();
  }
});

Deno.test("an exhausted pool refuses a third identity and keeps serving the first two", async () => {
  const relay = await startRelay({ vipRange: "10.9.9.0/30", db: ":memory:" });
  const a = await join(relay.port, randomIdentity());
  const b = await join(relay.port, randomIdentity());
  try {
    assert.deepEqual(new Set([a.virtualIp, b.virtualIp]), new Set(["10.9.9.1", "10.9.9.2"]));
    await assert.rejects(
      withTimeout(connect({ port: relay.port, identity: randomIdentity() }), STEP_MS, "third"),
      (error: unknown) => {
        assert.ok(error instanceof RelayError, `expected RelayError, got ${error}`);
        assert.equal(error.reasonName, "PoolExhausted");
        return true;
      },
    );
    await assertEcho(a, b, 80);
    await assertEcho(b, a, 81);
    assert.equal(relay.relay.onlineCount, 2);
  } finally {
    await a.close();
    await b.close();
    await relay.close();
  }
});

Deno.test("a client's Error frame closes its link quietly and frees its address", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const raw = await rawClient(relay.port);
  const observer = await connect({ port: relay.port, identity: randomIdentity() });
  try {
    const address = await raw.handshake();
    const where = { hostname: formatIpv4(address), port: 1 };
    const asking = observer.status(where);
    const asked = await raw.expect(PacketType.SocketStatusRequest, "the observer's status request");
    await raw.send({
      type: PacketType.SocketStatusResponse,
      requestId: asked.requestId,
      listening: false,
    });
    assert.deepEqual(await asking, { online: true, listening: false });
    await raw.send({ type: PacketType.Error, reason: Reason.Normal, message: "bye" });
    await raw.expectEof("the relay to close the link without answering");
    assert.equal((await observer.status(where)).online, false);
  } finally {
    await observer.close();
    await raw.close();
    await relay.close();
  }
});
