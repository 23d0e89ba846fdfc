/**
 * Never trust the wire: a raw client breaks the protocol in every way the
 * relay must catch. Each case gets the right Error frame and a closed link,
 * and the relay keeps serving everyone else.
 */

import assert from "node:assert/strict";
import {
  type AlphaNetClient,
  connect,
  HostUnreachable,
  type VirtualConn,
  type VirtualListener,
} from "../mod.ts";
import {
  MAX_WINDOW_BYTES,
  type Packet,
  PacketType,
  PROTOCOL_VERSION,
  Reason,
} from "../protocol/mod.ts";
import type { VirtualConnImpl } from "../client/virtual_conn_impl.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { randomIdentity, text, utf8 } from "./_helpers/bytes.ts";
import { addressOf, type RawClient, rawClient, rawConnect } from "./_helpers/raw_client.ts";
import { assertRelayServes, startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";
import { readAll, readExactly } from "./_helpers/streams.ts";

/** Runs `body` on a fresh relay with a raw client, then checks the relay still serves. */
async function withRaw(
  body: (raw: RawClient, relay: TestRelay) => Promise<void>,
): Promise<void> {
  const relay = await startRelay({ db: ":memory:" });
  try {
    const raw = await rawClient(relay.port);
    try {
      await body(raw, relay);
    } finally {
      await raw.close();
    }
    await assertRelayServes(relay.port);
  } finally {
    await relay.close();
  }
}

function join(port: number, options: { window?: number } = {}): Promise<AlphaNetClient> {
  return withTimeout(
    connect({ port, identity: randomIdentity(), ...options }),
    STEP_MS,
    "client to join",
  );
}

function header(length: number, type: number): Uint8Array {
  const frame = new Uint8Array(5);
  new DataView(frame.buffer).setUint32(0, length);
  frame[4] = type;
  return frame;
}

Deno.test("a status request with a forged source closes that client with SpoofedAddress, others keep echoing", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const a = await join(relay.port);
  const b = await join(relay.port);
  let raw: RawClient | undefined;
  try {
    const listener = b.listen({ port: 7 });
    const served = (async () => {
      const conn = await listener.accept();
      try {
        const buffer = new Uint8Array(1024);
        for (let i = 0; i < 1024; i++) {
          const count = await conn.read(buffer);
          if (count === null) return;
          await conn.write(buffer.slice(0, count));
        }
      } finally {
        conn.close();
      }
    })();
    const conn = await withTimeout(a.connect({ hostname: b.virtualIp, port: 7 }), STEP_MS, "dial");
    try {
      await conn.write(utf8("before"));
      assert.equal(text(await withTimeout(readExactly(conn, 6), STEP_MS, "echo 1")), "before");

      raw = await rawClient(relay.port);
      await raw.handshake();
      await raw.send({
        type: PacketType.SocketStatusRequest,
        requestId: 1,
        source: addressOf(a), // not the raw client's address
        destination: addressOf(b),
        destinationPort: 7,
      });
      await raw.expectError(Reason.SpoofedAddress, "spoofed source");

      await conn.write(utf8("after!"));
      assert.equal(text(await withTimeout(readExactly(conn, 6), STEP_MS, "echo 2")), "after!");
      await conn.closeWrite();
      assert.equal((await withTimeout(readAll(conn), STEP_MS, "echo end")).length, 0);
      await withTimeout(served, STEP_MS, "echo server");
    } finally {
      conn.close();
      listener.close();
    }
    await assertRelayServes(relay.port);
  } finally {
    await raw?.close();
    await a.close();
    await b.close();
    await relay.close();
  }
});

Deno.test("the relay answers each protocol violation with the right Error and closes the link", async (t) => {
  const cases: {
    name: string;
    handshake: boolean;
    send: (raw: RawClient) => Packet | Uint8Array;
    reason: number;
  }[] = [
    {
      name: "ArbitraryData on a connection id never issued is UnknownId",
      handshake: true,
      send: () => ({ type: PacketType.ArbitraryData, connectionId: 1234, payload: utf8("hi") }),
      reason: Reason.UnknownId,
    },
    {
      name: "a connection request with a nonzero connection id is UnexpectedPacket",
      handshake: true,
      send: (raw) => ({
        type: PacketType.SocketConnectionRequest,
        requestId: 1,
        connectionId: 5,
        source: raw.address,
        sourcePort: 50_000,
        destination: raw.address,
        destinationPort: 80,
        window: 16_384,
      }),
      reason: Reason.UnexpectedPacket,
    },
    {
      name: "an EchoRequest with a forged source is SpoofedAddress",
      handshake: true,
      send: (raw) => ({
        type: PacketType.EchoRequest,
        requestId: 1,
        source: (raw.address + 1) >>> 0,
        destination: raw.address,
      }),
      reason: Reason.SpoofedAddress,
    },
    {
      name: "an EchoReply to a request id never issued is UnknownId",
      handshake: true,
      send: () => ({ type: PacketType.EchoReply, requestId: 99 }),
      reason: Reason.UnknownId,
    },
    {
      name: "a second Hello is UnexpectedPacket",
      handshake: true,
      send: () => ({ type: PacketType.Hello, version: PROTOCOL_VERSION }),
      reason: Reason.UnexpectedPacket,
    },
    {
      name: "a Proof once open is UnexpectedPacket",
      handshake: true,
      send: () => ({ type: PacketType.Proof, identity: null, joinToken: null, legacyClaim: null }),
      reason: Reason.UnexpectedPacket,
    },
    {
      name: "a Challenge from a client is UnexpectedPacket",
      handshake: true,
      send: () => ({
        type: PacketType.Challenge,
        relayId: new Uint8Array(32),
        nonce: new Uint8Array(32),
      }),
      reason: Reason.UnexpectedPacket,
    },
    {
      name: "a Proof before Hello is UnexpectedPacket",
      handshake: false,
      send: () => ({ type: PacketType.Proof, identity: null, joinToken: null, legacyClaim: null }),
      reason: Reason.UnexpectedPacket,
    },
    {
      name: "a SocketStatusResponse to a request id never issued is UnknownId",
      handshake: true,
      send: () => ({ type: PacketType.SocketStatusResponse, requestId: 77, listening: true }),
      reason: Reason.UnknownId,
    },
    {
      name: "a data packet before Hello is UnexpectedPacket",
      handshake: false,
      send: () => ({ type: PacketType.ArbitraryData, connectionId: 1, payload: utf8("early") }),
      reason: Reason.UnexpectedPacket,
    },
    {
      name: "garbage bytes of unknown type 0xEE are Malformed",
      handshake: true,
      send: () => Uint8Array.of(0, 0, 0, 3, 0xee, 0xde, 0xad, 0xbe),
      reason: Reason.Malformed,
    },
    {
      name: "a frame header announcing a 1 GiB body is Malformed without the body",
      handshake: true,
      send: () => header(1024 * 1024 * 1024, PacketType.ArbitraryData),
      reason: Reason.Malformed,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await withRaw(async (raw) => {
        if (c.handshake) await raw.handshake();
        const sent = c.send(raw);
        await (sent instanceof Uint8Array ? raw.write(sent) : raw.send(sent));
        await raw.expectError(c.reason, c.name);
      });
    });
  }
});

Deno.test("a raw client naming another client's connection id is closed with UnknownId and injects nothing", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const a = await join(relay.port);
  const b = await join(relay.port);
  let raw: RawClient | undefined;
  try {
    const listener = b.listen({ port: 8 });
    const accepting = listener.accept();
    const aEnd = await withTimeout(a.connect({ hostname: b.virtualIp, port: 8 }), STEP_MS, "dial");
    const bEnd = await withTimeout(accepting, STEP_MS, "accept");
    listener.close();
    try {
      await aEnd.write(utf8("warm-up"));
      assert.equal(text(await withTimeout(readExactly(bEnd, 7), STEP_MS, "warm-up")), "warm-up");

      raw = await rawClient(relay.port);
      await raw.handshake();
      const stolenId = (aEnd as VirtualConnImpl).id;
      assert.ok(stolenId >= 1, "a's end has a real id to steal");
      await raw.send({
        type: PacketType.ArbitraryData,
        connectionId: stolenId,
        payload: utf8("INJECTED"),
      });
      await raw.expectError(Reason.UnknownId, "foreign connection id");

      const sentinel = utf8("sentinel-after-injection");
      await aEnd.write(sentinel);
      await aEnd.closeWrite();
      const rest = await withTimeout(readAll(bEnd), STEP_MS, "b's bytes after the injection");
      assert.equal(text(rest), "sentinel-after-injection");
    } finally {
      aEnd.close();
      bEnd.close();
    }
    await assertRelayServes(relay.port);
  } finally {
    await raw?.close();
    await a.close();
    await b.close();
    await relay.close();
  }
});

Deno.test("sending more than the accepted window without a WindowUpdate is FlowControl", async () => {
  await withRaw(async (raw, relay) => {
    const owner = await join(relay.port);
    try {
      const listener = owner.listen({ port: 9 });
      await raw.handshake();
      const { connectionId, window, ownerEnd } = await rawConnect(raw, owner, listener, 9);
      listener.close();
      try {
        assert.equal(window, 256 * 1024, "the owner's default window");
        // The owner does not read, so no credit comes back. Send window + 1 bytes in one go.
        const frames: Packet[] = [];
        let left = window + 1;
        for (let i = 0; left > 0 && i < 64; i++) {
          const size = Math.min(left, 65_535);
          frames.push({
            type: PacketType.ArbitraryData,
            connectionId,
            payload: new Uint8Array(size).fill(i + 1),
          });
          left -= size;
        }
        assert.equal(left, 0);
        await raw.send(...frames);
        await raw.expectError(Reason.FlowControl, "window exceeded");
        // The owner got every frame before the violating one, not a byte of that one.
        const last = frames.at(-1) as { payload: Uint8Array };
        const got = await withTimeout(readAll(ownerEnd), STEP_MS, "owner's reads to end");
        assert.equal(got.length, window + 1 - last.payload.length);
      } finally {
        ownerEnd.close();
      }
    } finally {
      await owner.close();
    }
  });
});

Deno.test("a receiver may grow its window, but credit beyond MAX_WINDOW_BYTES is FlowControl", async () => {
  await withRaw(async (raw, relay) => {
    const owner = await join(relay.port);
    try {
      const listener = owner.listen({ port: 10 });
      await raw.handshake();
      const { connectionId, ownerEnd } = await rawConnect(raw, owner, listener, 10);
      listener.close();
      try {
        // The raw side announced 16 KiB. Growing its window to exactly the maximum is legal:
        // the owner may then send more than 16 KiB before any further grant.
        await raw.send({
          type: PacketType.WindowUpdate,
          connectionId,
          increment: MAX_WINDOW_BYTES - 16_384,
        });
        const big = new Uint8Array(64 * 1024).fill(3);
        await withTimeout(ownerEnd.write(big), STEP_MS, "a write beyond the announced 16 KiB");
        let received = 0;
        for (let frames = 0; received < big.length && frames < 64; frames++) {
          const data = await raw.expect(PacketType.ArbitraryData, "the owner's bytes");
          received += data.payload.length;
        }
        assert.equal(received, big.length);
        // One byte more than the maximum outstanding is a violation.
        await raw.send({
          type: PacketType.WindowUpdate,
          connectionId,
          increment: big.length + 1,
        });
        await raw.expectError(Reason.FlowControl, "credit beyond the maximum window");
        const rest = await withTimeout(readAll(ownerEnd), STEP_MS, "owner's reads to end");
        assert.equal(rest.length, 0);
      } finally {
        ownerEnd.close();
      }
    } finally {
      await owner.close();
    }
  });
});

Deno.test("concurrent connection requests cannot push a requester past maxConnectionsPerClient", async () => {
  const relay = await startRelay({ db: ":memory:", maxConnectionsPerClient: 2 });
  const requester = await join(relay.port);
  const owners: AlphaNetClient[] = [];
  const listeners: VirtualListener[] = [];
  const opened: VirtualConn[] = [];
  try {
    // Three owners with no connections each, so only the requester's limit can refuse.
    for (let i = 0; i < 3; i++) {
      const owner = await join(relay.port);
      owners.push(owner);
      listeners.push(owner.listen({ port: 80 }));
    }
    const results = await withTimeout(
      Promise.allSettled(
        owners.map((owner) => requester.connect({ hostname: owner.virtualIp, port: 80 })),
      ),
      STEP_MS,
      "three concurrent connects",
    );
    for (const result of results) if (result.status === "fulfilled") opened.push(result.value);
    assert.ok(
      opened.length <= 2,
      `the requester holds ${opened.length} connections with maxConnectionsPerClient 2`,
    );
  } finally {
    for (const conn of opened) conn.close();
    for (const listener of listeners) listener.close();
    await requester.close();
    for (const owner of owners) await owner.close();
    await relay.close();
  }
});

Deno.test("an owner accepting with the wrong connection id is closed, and the requester is answered at once", async () => {
  await withRaw(async (raw, relay) => {
    const requester = await join(relay.port);
    try {
      const owner = await raw.handshake();
      const ownerIp = [owner >>> 24, (owner >>> 16) & 255, (owner >>> 8) & 255, owner & 255].join(
        ".",
      );
      const connecting = requester.connect({ hostname: ownerIp, port: 80 });
      const status = await raw.expect(PacketType.SocketStatusRequest, "status request");
      await raw.send({
        type: PacketType.SocketStatusResponse,
        requestId: status.requestId,
        listening: true,
      });
      const request = await raw.expect(PacketType.SocketConnectionRequest, "connection request");
      await raw.send({
        type: PacketType.SocketConnectionResponse,
        requestId: request.requestId,
        connectionId: request.connectionId + 1,
        accepted: true,
        window: 16_384,
      });
      await raw.expectError(Reason.UnexpectedPacket, "a mismatched connection id");
      // RequestFailed(Offline) arrives now, not after the client's own 15 s time-out.
      await assert.rejects(
        withTimeout(connecting, STEP_MS, "the requester's answer"),
        HostUnreachable,
      );
    } finally {
      await requester.close();
    }
  });
});
