/**
 * Control frames the relay owes a client are never lost behind data or
 * floods: merged credit grants on the real relay, and the SlowConsumer
 * Error that arrives before the link closes.
 */

import assert from "node:assert/strict";
import {
  decode,
  encode,
  FRAME_HEADER_BYTES,
  type Packet,
  PacketType,
  Reason,
  reasonName,
} from "../protocol/mod.ts";
import { FIXED_BODY_BYTES } from "../protocol/layout.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { concatBytes } from "./_helpers/bytes.ts";
import { bareHandshake, RawClient, rawClient } from "./_helpers/raw_client.ts";
import { assertRelayServes, startRelay } from "./_helpers/relay_fixture.ts";
import { sendBacklog, statusRequests } from "./_helpers/slow_consumer.ts";

const MiB = 1024 * 1024;

/** Opens a connection from `requester` to `owner` by hand; returns both ends' ids. */
async function open(
  requester: RawClient,
  owner: RawClient,
  windows: { requester: number; owner: number },
): Promise<{ requesterId: number; ownerId: number }> {
  await requester.send({
    type: PacketType.SocketConnectionRequest,
    requestId: 1,
    connectionId: 0,
    source: requester.address,
    sourcePort: 50_000,
    destination: owner.address,
    destinationPort: 80,
    window: windows.requester,
  });
  const asked = await owner.expect(PacketType.SocketConnectionRequest, "the connection request");
  await owner.send({
    type: PacketType.SocketConnectionResponse,
    requestId: asked.requestId,
    connectionId: asked.connectionId,
    accepted: true,
    window: windows.owner,
  });
  const answer = await requester.expect(PacketType.SocketConnectionResponse, "the acceptance");
  return { requesterId: answer.connectionId, ownerId: asked.connectionId };
}

Deno.test("1,000,000 one-byte WindowUpdates reach a reading client merged, exact, and never close it", async () => {
  const GRANTS = 1_000_000;
  const relay = await startRelay({ db: ":memory:" });
  const sender = await rawClient(relay.port);
  const granter = await rawClient(relay.port);
  try {
    await sender.handshake();
    await granter.handshake();
    const { ownerId } = await open(sender, granter, { requester: 16_384, owner: 16_384 });
    // Legal: the sender's credit ends at 16,384 + 1,000,000, far below 16 MiB outstanding.
    const one = encode({ type: PacketType.WindowUpdate, connectionId: ownerId, increment: 1 });
    const flood = concatBytes(Array.from({ length: GRANTS }, () => one));
    const writing = granter.write(flood);
    let granted = 0;
    let frames = 0;
    for (let i = 0; i < GRANTS && granted < GRANTS; i++) {
      const packet = await sender.next(STEP_MS, `grants (${granted} so far)`);
      assert.ok(packet !== null, `the sender's link ended after ${granted} bytes of grants`);
      assert.equal(packet.type, PacketType.WindowUpdate, JSON.stringify(packet));
      if (packet.type === PacketType.WindowUpdate) granted += packet.increment;
      frames++;
    }
    await writing;
    assert.equal(granted, GRANTS, "every granted byte arrives, none twice");
    assert.ok(frames < GRANTS / 100, `${frames} WindowUpdate frames for ${GRANTS} grants`);
    await sender.send({ type: PacketType.Ping, nonce: 1 });
    assert.equal((await sender.expect(PacketType.Pong, "the sender still served")).nonce, 1);
    await granter.send({ type: PacketType.Ping, nonce: 2 });
    assert.equal((await granter.expect(PacketType.Pong, "the granter still served")).nonce, 2);
  } finally {
    await sender.close();
    await granter.close();
    await relay.close();
  }
});

Deno.test("a client that stops reading, then reads, gets Error(SlowConsumer) ahead of its queued data, then EOF", async () => {
  const relay = await startRelay({ db: ":memory:", maxQueuedControlBytes: 4096 });
  // The slow client is a bare socket until it starts reading: nothing reads it meanwhile.
  const slowConn = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
  let slow: RawClient | undefined;
  const feeder = await rawClient(relay.port);
  const requester = await rawClient(relay.port);
  try {
    await feeder.handshake();
    await requester.handshake();
    const slowAddress = await bareHandshake(slowConn);
    await writeAll(
      slowConn,
      encode({
        type: PacketType.SocketConnectionRequest,
        requestId: 1,
        connectionId: 0,
        source: slowAddress,
        sourcePort: 50_000,
        destination: feeder.address,
        destinationPort: 80,
        window: 16 * MiB,
      }),
    );
    const asked = await feeder.expect(
      PacketType.SocketConnectionRequest,
      "the slow client's connect",
    );
    await feeder.send({
      type: PacketType.SocketConnectionResponse,
      requestId: asked.requestId,
      connectionId: asked.connectionId,
      accepted: true,
      window: 16_384,
    });
    await readOne(slowConn, PacketType.SocketConnectionResponse);
    // Nearly 16 MiB of data within the slow client's credit: more than the kernel holds.
    const sent = await sendBacklog(feeder, asked.connectionId);
    // Then control frames to the slow client: 250 status requests of 19 bytes, beyond 4,096 bytes.
    await requester.send(...statusRequests(requester.address, slowAddress, 250));
    const closed = await feeder.expect(PacketType.SocketClosed, "the slow client's end to close");
    assert.equal(reasonName(closed.reason), "PeerDisconnected");
    // Now it reads: data the relay had already written, then the reason, then the end.
    slow = RawClient.adopt(slowConn);
    let received = 0;
    let error: Packet | null = null;
    for (let i = 0; i < 4096 && error === null; i++) {
      const packet = await slow.next(STEP_MS, "the slow client's backlog");
      assert.ok(packet !== null, `the link ended without an Error frame after ${received} bytes`);
      if (packet.type === PacketType.ArbitraryData) received += packet.payload.length;
      else if (packet.type === PacketType.Error) error = packet;
    }
    assert.ok(error !== null && error.type === PacketType.Error, "an Error frame arrived");
    assert.equal(reasonName(error.reason), reasonName(Reason.SlowConsumer), error.message);
    await slow.expectEof("the relay to close the link right after the Error frame");
    assert.ok(received < sent, `the Error came after all ${sent} bytes: it did not overtake`);
    await assertRelayServes(relay.port);
  } finally {
    if (slow) await slow.close();
    else slowConn.close();
    await feeder.close();
    await requester.close();
    await relay.close();
  }
});

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  for (let writes = 0; writes <= bytes.length && written < bytes.length; writes++) {
    written += await conn.write(bytes.subarray(written));
  }
  assert.equal(written, bytes.length);
}

/** Reads exactly one frame of `type` (fixed size) and nothing more. */
async function readOne<T extends Packet["type"]>(
  conn: Deno.Conn,
  type: T,
): Promise<Extract<Packet, { type: T }>> {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + FIXED_BODY_BYTES[type]);
  let filled = 0;
  for (let reads = 0; reads < frame.length && filled < frame.length; reads++) {
    const count = await withTimeout(conn.read(frame.subarray(filled)), STEP_MS, `frame ${type}`);
    assert.ok(count !== null, `the relay closed the link before frame ${type}`);
    filled += count;
  }
  const decoded = decode(frame);
  assert.ok(decoded !== null, `frame ${type} incomplete`);
  const packet = decoded.packet;
  assert.equal(packet.type, type);
  return packet as Extract<Packet, { type: T }>;
}
