/**
 * Every relay limit, hit on purpose, answers with its own reason code, and
 * disturbs nothing else: a well-behaved pair of clients keeps echoing
 * before, during and after, and the relay still admits new clients.
 */

import assert from "node:assert/strict";
import { type AlphaNetClient, type ClientOptions, connect, type VirtualConn } from "../mod.ts";
import { encode, type Packet, PacketType, Reason, reasonName } from "../protocol/mod.ts";
import type { RelayOptions } from "../server.ts";
import { STEP_MS, waitUntil, withTimeout } from "./_helpers/async.ts";
import { pseudoRandomBytes, randomIdentity, sha256hex } from "./_helpers/bytes.ts";
import { type EchoPair, startEchoPair } from "./_helpers/echo_pair.ts";
import { addressOf, bareHandshake, RawClient, rawClient } from "./_helpers/raw_client.ts";
import { assertRelayServes, startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";
import { sendBacklog, statusRequests } from "./_helpers/slow_consumer.ts";
import { readAll } from "./_helpers/streams.ts";

/** An address no client owns (TEST-NET-1, outside every pool). */
const NOBODY = 0xc0000201;

/**
 * Runs `body` on a fresh relay with `options` and an echo pair that must
 * echo before and after it; then a fresh client must still be admitted.
 */
async function withLimit(
  options: RelayOptions,
  body: (relay: TestRelay, pair: EchoPair) => Promise<void>,
): Promise<void> {
  const relay = await startRelay({ db: ":memory:", ...options });
  try {
    const pair = await startEchoPair(relay.port);
    try {
      await pair.assertEchoes("before the limit is hit");
      await body(relay, pair);
      await pair.assertEchoes("after the limit was hit");
    } finally {
      await pair.close();
    }
    await assertRelayServes(relay.port);
  } finally {
    await relay.close();
  }
}

/** Checks that the relay still serves `raw`: its Ping gets the Pong, as the next packet. */
async function assertAlive(raw: RawClient, nonce: number, what: string): Promise<void> {
  await raw.send({ type: PacketType.Ping, nonce });
  const pong = await raw.expect(PacketType.Pong, `${what}: the relay's Pong`);
  assert.equal(pong.nonce, nonce);
}

/** A connection request from `raw` to `destination`:80. */
function connectionRequest(
  raw: { address: number },
  requestId: number,
  destination: number,
  window = 16_384,
): Packet {
  return {
    type: PacketType.SocketConnectionRequest,
    requestId,
    connectionId: 0,
    source: raw.address,
    sourcePort: 50_000 + requestId,
    destination,
    destinationPort: 80,
    window,
  };
}

Deno.test("a link beyond maxClients gets Error(ServerFull), and the clients already in keep echoing", async () => {
  // The echo pair holds 2 links, the raw client the third.
  await withLimit({ maxClients: 3 }, async (relay, pair) => {
    const third = await rawClient(relay.port);
    try {
      await third.handshake();
      const extra = await rawClient(relay.port);
      try {
        await extra.expectError(Reason.ServerFull, "the link beyond maxClients");
      } finally {
        await extra.close();
      }
      await pair.assertEchoes("with the relay full");
      await assertAlive(third, 1, "the third client");
    } finally {
      await third.close();
    }
    // The freed slot admits a new client again.
    await waitUntil(() => relay.relay.linkCount === 2, "the relay to drop the third link");
  });
});

Deno.test("a connection beyond maxConnectionsPerClient fails with TooManyConnections, for requester and owner", async () => {
  await withLimit({ maxConnectionsPerClient: 2 }, async (relay, pair) => {
    const owner = await withTimeout(
      connect({ port: relay.port, identity: randomIdentity() }),
      STEP_MS,
      "the owner to join",
    );
    const requester = await rawClient(relay.port);
    const second = await rawClient(relay.port);
    const accepted: { close(): void; read(b: Uint8Array): Promise<number | null> }[] = [];
    try {
      const listener = owner.listen({ port: 80 });
      const destination = addressOf(owner);
      await requester.handshake();
      await second.handshake();
      // Two connections fill the requester's quota (and the owner's).
      const ids: number[] = [];
      for (const requestId of [1, 2]) {
        const accepting = listener.accept();
        await requester.send(connectionRequest(requester, requestId, destination));
        const answer = await requester.expect(
          PacketType.SocketConnectionResponse,
          `connection ${requestId}`,
        );
        assert.equal(answer.accepted, true);
        ids.push(answer.connectionId);
        accepted.push(await withTimeout(accepting, STEP_MS, `the owner to accept ${requestId}`));
      }
      // The requester's third is refused at request time.
      await requester.send(connectionRequest(requester, 3, destination));
      const refused = await requester.expect(PacketType.RequestFailed, "the third connection");
      assert.equal(refused.requestId, 3);
      assert.equal(reasonName(refused.reason), "TooManyConnections");
      await assertAlive(requester, 2, "the refused requester");

      // Another requester reaches the owner, whose own quota is full: the relay undoes the
      // owner's acceptance and the requester gets TooManyConnections.
      const accepting = listener.accept();
      await second.send(connectionRequest(second, 1, destination));
      const ownerRefused = await second.expect(PacketType.RequestFailed, "the owner's third");
      assert.equal(ownerRefused.requestId, 1);
      assert.equal(reasonName(ownerRefused.reason), "TooManyConnections");
      const undone = await withTimeout(accepting, STEP_MS, "the owner to accept its third");
      accepted.push(undone);
      const ended = await withTimeout(
        undone.read(new Uint8Array(1)).then((count) => count, (error) => error),
        STEP_MS,
        "the undone connection to end at the owner",
      );
      assert.ok(ended === null || ended instanceof Error, `the undone connection read ${ended}`);

      await pair.assertEchoes("with both quotas full");
      // Closing one connection frees a slot.
      await requester.send({
        type: PacketType.SocketClosed,
        connectionId: ids[0],
        reason: Reason.Normal,
      });
      const againAccepting = listener.accept();
      await requester.send(connectionRequest(requester, 4, destination));
      const again = await requester.expect(PacketType.SocketConnectionResponse, "after a close");
      assert.equal(again.accepted, true);
      accepted.push(await withTimeout(againAccepting, STEP_MS, "the owner to accept again"));
      listener.close();
    } finally {
      for (const conn of accepted) conn.close();
      await requester.close();
      await second.close();
      await owner.close();
    }
  });
});

Deno.test("a request beyond maxPendingPerClient fails with TooManyPending while the others stay pending", async () => {
  await withLimit({ maxPendingPerClient: 4 }, async (relay, pair) => {
    const mute = await rawClient(relay.port);
    const requester = await rawClient(relay.port);
    try {
      const muteAddress = await mute.handshake();
      await requester.handshake();
      await requester.send(...statusRequests(requester.address, muteAddress, 5));
      const refused = await requester.expect(PacketType.RequestFailed, "the fifth request");
      assert.equal(refused.requestId, 5);
      assert.equal(reasonName(refused.reason), "TooManyPending");
      for (let i = 0; i < 4; i++) {
        await mute.expect(PacketType.SocketStatusRequest, `forwarded request ${i + 1}`);
      }
      await assertAlive(requester, 3, "the requester at its limit");
      await pair.assertEchoes("with a requester at its pending limit");
      // The owner leaves: each pending request fails Offline, none is forgotten.
      await mute.close();
      const failed = new Set<number>();
      for (let i = 0; i < 4; i++) {
        const answer = await requester.expect(PacketType.RequestFailed, "pending requests to fail");
        assert.equal(reasonName(answer.reason), "Offline");
        failed.add(answer.requestId);
      }
      assert.deepEqual([...failed].sort(), [1, 2, 3, 4]);
    } finally {
      await mute.close();
      await requester.close();
    }
  });
});

Deno.test("requests beyond requestBurst fail with RateLimited, and the client stays connected", async () => {
  // One token a second: the ten requests below arrive in one read, well within a millisecond.
  await withLimit({ requestRate: 1, requestBurst: 5 }, async (relay, pair) => {
    const raw = await rawClient(relay.port);
    try {
      await raw.handshake();
      await raw.send(...statusRequests(raw.address, NOBODY, 10));
      const reasons: string[] = [];
      for (let id = 1; id <= 10; id++) {
        const answer = await raw.expect(PacketType.RequestFailed, `answer ${id}`);
        assert.equal(answer.requestId, id, "answers come in request order");
        reasons.push(reasonName(answer.reason));
      }
      assert.deepEqual(reasons, [
        ...Array(5).fill("Offline"),
        ...Array(5).fill("RateLimited"),
      ]);
      await assertAlive(raw, 4, "the rate-limited client");
      await pair.assertEchoes("with a client over its request rate");
    } finally {
      await raw.close();
    }
  });
});

/** A sender and a receiver joined to `relay`, with one virtual connection between them. */
interface Transfer {
  readonly sender: AlphaNetClient;
  readonly receiver: AlphaNetClient;
  readonly conn: VirtualConn;
  readonly inbound: VirtualConn;
}

/** Joins a sender (with `senderOptions`) and a receiver, connects them, runs `body`, cleans up. */
async function withTransfer(
  relay: TestRelay,
  senderOptions: ClientOptions,
  body: (transfer: Transfer) => Promise<void>,
): Promise<void> {
  const sender = await withTimeout(
    connect({ port: relay.port, identity: randomIdentity(), ...senderOptions }),
    STEP_MS,
    "the sender to join",
  );
  const receiver = await withTimeout(
    connect({ port: relay.port, identity: randomIdentity() }),
    STEP_MS,
    "the receiver to join",
  );
  try {
    const listener = receiver.listen({ port: 9 });
    const accepting = listener.accept();
    const conn = await withTimeout(
      sender.connect({ hostname: receiver.virtualIp, port: 9 }),
      STEP_MS,
      "the sender to connect",
    );
    const inbound = await withTimeout(accepting, STEP_MS, "the receiver to accept");
    listener.close();
    try {
      await body({ sender, receiver, conn, inbound });
    } finally {
      conn.close();
      inbound.close();
    }
  } finally {
    await sender.close();
    await receiver.close();
  }
}

Deno.test("maxBytesPerSec 1 MiB/s: 2 MiB take about a second and arrive intact, and other clients are not slowed", async () => {
  const MiB = 1024 * 1024;
  await withLimit({ maxBytesPerSec: MiB }, async (relay, pair) => {
    await withTransfer(relay, {}, async ({ conn, inbound }) => {
      const payload = pseudoRandomBytes(2 * MiB, 0xb17e5);
      const startedAt = performance.now();
      const received = readAll(inbound, 4 * MiB);
      const sent = conn.write(payload).then(() => conn.closeWrite());
      // Others are not held to the sender's rate: the pair echoes during the transfer.
      await pair.assertEchoes("while a client is throttled");
      const [bytes] = await withTimeout(
        Promise.all([received, sent]),
        10_000,
        "2 MiB at 1 MiB/s",
      );
      const elapsed = performance.now() - startedAt;
      assert.equal(bytes.length, payload.length, "nothing dropped");
      assert.equal(await sha256hex(bytes), await sha256hex(payload), "nothing altered");
      // The first MiB is the burst; the second takes a second, less one read's worth.
      assert.ok(elapsed >= 800, `2 MiB at 1 MiB/s took only ${Math.round(elapsed)} ms`);
    });
  });
});

Deno.test("a byte-limited client that keeps sending is slowed down, never closed for silence", async () => {
  // At 150 KB/s a full 128 KiB read puts the sender about 110 KB in debt: the relay then holds
  // its next read for ~750 ms, longer than peerTimeoutMs. The relay must not mistake its own
  // pause for the client's silence.
  const RATE = 150_000;
  await withLimit(
    { maxBytesPerSec: RATE, keepaliveMs: 100, peerTimeoutMs: 400 },
    async (relay) => {
      await withTransfer(
        relay,
        { reconnect: false },
        async ({ sender, receiver, conn, inbound }) => {
          const payload = pseudoRandomBytes(2 * RATE, 0x5107);
          const received = readAll(inbound, 1024 * 1024).catch((error) => error);
          const sent = conn.write(payload).then(() => conn.closeWrite()).catch((error) => error);
          const [bytes, wrote] = await withTimeout(
            Promise.all([received, sent]),
            10_000,
            "300 KB at 150 KB/s",
          );
          assert.ok(!(wrote instanceof Error), `the sender's write failed: ${wrote}`);
          assert.ok(!(bytes instanceof Error), `the receiver's read failed: ${bytes}`);
          // The relay reads the sender's next frames once its debt is paid: a request after the
          // transfer is answered, and the sender was never dropped meanwhile.
          const status = await withTimeout(
            sender.status({ hostname: receiver.virtualIp, port: 9 }).catch((error) => error),
            STEP_MS,
            "the throttled sender's status request",
          );
          const closed = await Promise.race([sender.closed, Promise.resolve("still open")]);
          assert.equal(
            closed,
            "still open",
            `the relay dropped the throttled sender after ${bytes.length} of ` +
              `${payload.length} bytes: ${closed}`,
          );
          assert.equal(await sha256hex(bytes), await sha256hex(payload));
          assert.deepEqual(status, { online: true, listening: false });
        },
      );
    },
  );
});

Deno.test("a client that never reads is closed with SlowConsumer once maxQueuedControlBytes pile up", async () => {
  const MiB = 1024 * 1024;
  await withLimit({ maxQueuedControlBytes: 4096 }, async (relay, pair) => {
    // The slow client: a bare TCP link that joins, opens one connection, then stops reading.
    const slow = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
    slow.setNoDelay(true);
    let slowRaw: RawClient | undefined;
    const feeder = await rawClient(relay.port);
    const requester = await rawClient(relay.port);
    try {
      const feederAddress = await feeder.handshake();
      await requester.handshake();
      const slowAddress = await bareHandshake(slow);
      // The slow client opens a connection to the feeder with the largest window.
      await writeAll(
        slow,
        encodeFrames([connectionRequest({ address: slowAddress }, 1, feederAddress, 16 * MiB)]),
      );
      const request = await feeder.expect(PacketType.SocketConnectionRequest, "slow's request");
      await feeder.send({
        type: PacketType.SocketConnectionResponse,
        requestId: request.requestId,
        connectionId: request.connectionId,
        accepted: true,
        window: 16_384,
      });
      // 15 MiB of data, within the slow client's 16 MiB credit, fill the kernel's buffers
      // towards it (about 4 MiB on Linux loopback); the rest waits in the relay, as credit
      // allows. Control frames queued behind it then pile up.
      await sendBacklog(feeder, request.connectionId);
      await assertAlive(feeder, 1, "the feeder after its data");
      // 250 status requests of 19 bytes each to the slow client: more than 4096 bytes.
      await requester.send(...statusRequests(requester.address, slowAddress, 250));
      // The relay gives up on the slow client: its connection and requests end.
      const closed = await feeder.expect(PacketType.SocketClosed, "the slow client's end to close");
      assert.equal(closed.connectionId, request.connectionId);
      assert.equal(reasonName(closed.reason), "PeerDisconnected");
      // Read what the relay managed to send the slow client (it flushes for up to a second).
      slowRaw = RawClient.adopt(slow);
      const seen = new Map<string, number>();
      let error: Packet | null = null;
      for (let i = 0; i < 4096 && error === null; i++) {
        const packet = await slowRaw.next(STEP_MS, "the slow client's backlog");
        assert.ok(packet !== null, `the backlog ended without an Error frame: ${[...seen]}`);
        const name = `0x${packet.type.toString(16)}`;
        seen.set(name, (seen.get(name) ?? 0) + 1);
        if (packet.type === PacketType.Error) error = packet;
      }
      assert.ok(error !== null && error.type === PacketType.Error);
      assert.equal(reasonName(error.reason), "SlowConsumer", error.message);
      await slowRaw.expectEof("the relay to close the slow client's link");
      // Every status request got an answer: pending ones failed Offline when the slow client left.
      const answered = new Set<number>();
      for (let i = 0; i < 250; i++) {
        const answer = await requester.expect(PacketType.RequestFailed, "the requests to fail");
        assert.equal(reasonName(answer.reason), "Offline");
        answered.add(answer.requestId);
      }
      assert.equal(answered.size, 250);
      await assertAlive(requester, 2, "the requester");
      await assertAlive(feeder, 3, "the feeder");
      await pair.assertEchoes("after the slow consumer was dropped");
    } finally {
      if (slowRaw) await slowRaw.close();
      else slow.close();
      await feeder.close();
      await requester.close();
    }
  });
});

/** Encodes packets into one buffer. */
function encodeFrames(packets: Packet[]): Uint8Array {
  const frames = packets.map((packet) => encode(packet));
  const all = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
  let offset = 0;
  for (const frame of frames) {
    all.set(frame, offset);
    offset += frame.length;
  }
  return all;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  for (let writes = 0; writes <= bytes.length && written < bytes.length; writes++) {
    written += await conn.write(bytes.subarray(written));
  }
  assert.equal(written, bytes.length);
}
