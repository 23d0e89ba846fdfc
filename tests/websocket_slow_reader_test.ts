/**
 * A WebSocket client that stops reading is held and closed as a slow TCP
 * reader is: the relay reads and writes its WebSocket only as it would its
 * TCP socket, so data into it stays within the credit it granted (relay
 * memory bounded while a sender offers 256 MiB), and control frames piling
 * up close it with SlowConsumer, told by its Error frame and close 4017.
 */

import assert from "node:assert/strict";
import { connect, generateIdentity } from "../mod.ts";
import { type Packet, PacketType, Reason, reasonName } from "../protocol/mod.ts";
import { delay, STEP_MS, waitUntil, withTimeout } from "./_helpers/async.ts";
import { addressOf, type RawClient, rawClient } from "./_helpers/raw_client.ts";
import { assertRelayServes, startRelay } from "./_helpers/relay_fixture.ts";
import { rssKiB } from "./_helpers/server_process.ts";
import { sendBacklog, statusRequests } from "./_helpers/slow_consumer.ts";
import { RawWebSocket } from "./_helpers/websocket_raw.ts";
import { startWebSocketRelayProcess } from "./_helpers/websocket_server.ts";

const MiB = 1024 * 1024;

/** A connection request from `from` to `destination`:80 announcing `window`. */
function connectionRequest(from: number, destination: number, window: number): Packet {
  return {
    type: PacketType.SocketConnectionRequest,
    requestId: 1,
    connectionId: 0,
    source: from,
    sourcePort: 50_000,
    destination,
    destinationPort: 80,
    window,
  };
}

/** A counter's value in the relay's /metrics text. */
async function metric(admin: string, name: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const match = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  assert.ok(match, `no ${name} in /metrics`);
  return Number(match[1]);
}

Deno.test("websocket slow reader: relay RSS stays bounded while a TCP client pushes 256 MiB at a WebSocket client that never reads", async () => {
  const server = await startWebSocketRelayProcess(["--log-level", "silent", "--admin-port", "0"]);
  const admin = server.admin!;
  const alice = await connect({ port: server.port, identity: await generateIdentity() });
  const slow = await RawWebSocket.open(server.websocketPort);
  try {
    await slow.handshake();
    const listener = alice.listen({ port: 80 });
    const accepting = listener.accept();
    // The WebSocket client announces 4 MiB, then never reads again.
    const window = 4 * MiB;
    await slow.send(connectionRequest(slow.address, addressOf(alice), window));
    await slow.expect(PacketType.SocketConnectionResponse, "the acceptance");
    const inbound = await withTimeout(accepting, STEP_MS, "alice to accept");
    listener.close();
    const baseline = await rssKiB(server.pid);
    let settled = false;
    const sending = inbound.write(new Uint8Array(256 * MiB)).then(
      () => settled = true,
      () => settled = true,
    );
    // The relay forwards all the credit the reader granted, then holds the sender.
    let relayed = 0;
    for (let polls = 0; polls < 200 && relayed < window; polls++) {
      relayed = await metric(admin, "alphanet_relayed_bytes_total");
      if (relayed < window) await delay(25);
    }
    assert.ok(relayed >= window, `only ${relayed} bytes relayed`);
    // Held: no more than the window, plus the 16 KiB top-ups of data the kernel took at once.
    let stable = 0;
    for (let polls = 0; polls < 200 && stable < 5; polls++) {
      await delay(25);
      const now = await metric(admin, "alphanet_relayed_bytes_total");
      stable = now === relayed ? stable + 1 : 0;
      relayed = now;
    }
    assert.equal(stable, 5, "the relay kept forwarding into a reader that does not read");
    assert.ok(relayed < 32 * MiB, `${relayed} bytes relayed into a reader that does not read`);
    assert.equal(settled, false, "the sender's 256 MiB went through without a reader");
    const growthKiB = (await rssKiB(server.pid)) - baseline;
    // Unbounded buffering would hold most of 256 MiB; 16 MiB leaves room for allocator noise.
    assert.ok(growthKiB < 16 * 1024, `relay RSS grew by ${growthKiB} KiB`);
    slow.close();
    await withTimeout(sending, STEP_MS, "the sender's write to fail once the reader is gone");
    inbound.close();
  } finally {
    slow.close();
    await alice.close();
    const { code } = await server.stop();
    assert.equal(code, 0);
  }
});

Deno.test("websocket slow reader: a WebSocket client that never reads is closed with SlowConsumer once control frames pile up, told by Error and close 4017", async () => {
  const relay = await startRelay({ db: ":memory:", websocketPort: 0, maxQueuedControlBytes: 4096 });
  const slow = await RawWebSocket.open(relay.relay.websocketAddr!.port);
  let feeder: RawClient | undefined;
  let requester: RawClient | undefined;
  try {
    feeder = await rawClient(relay.port);
    requester = await rawClient(relay.port);
    const feederAddress = await feeder.handshake();
    await requester.handshake();
    const slowAddress = await slow.handshake();
    // The slow client opens a connection to the feeder with the largest window, then stops reading.
    await slow.send(connectionRequest(slowAddress, feederAddress, 16 * MiB));
    const request = await feeder.expect(PacketType.SocketConnectionRequest, "slow's request");
    await feeder.send({
      type: PacketType.SocketConnectionResponse,
      requestId: request.requestId,
      connectionId: request.connectionId,
      accepted: true,
      window: 16_384,
    });
    // 15 MiB within its credit fill the kernel's buffers towards it and wait in the relay.
    await sendBacklog(feeder, request.connectionId);
    // 250 status requests to the slow client: their 19-byte frames pass 4096 queued bytes.
    await requester.send(...statusRequests(requester.address, slowAddress, 250));
    const closed = await feeder.expect(PacketType.SocketClosed, "the slow client's end to close");
    assert.equal(reasonName(closed.reason), "PeerDisconnected");
    // The slow client reads its backlog: after the data the relay managed to send, the reason.
    const seen = new Map<number, number>();
    let error: Packet | null = null;
    for (let i = 0; i < 4096 && error === null; i++) {
      const packet = await slow.next("the slow client's backlog");
      assert.ok(packet !== null, `the backlog ended without an Error frame: ${[...seen]}`);
      seen.set(packet.type, (seen.get(packet.type) ?? 0) + 1);
      if (packet.type === PacketType.Error) error = packet;
    }
    assert.ok(error !== null && error.type === PacketType.Error);
    assert.equal(reasonName(error.reason), "SlowConsumer", error.message);
    await slow.expectClose(4000 + Reason.SlowConsumer, error.message);
    // Every status request was answered: pending ones failed Offline when the slow client left.
    const asked: RawClient = requester;
    for (let i = 0; i < 250; i++) {
      const answer = await asked.expect(PacketType.RequestFailed, "the requests to fail");
      assert.equal(reasonName(answer.reason), "Offline");
    }
    await waitUntil(() => relay.relay.linkCount === 2, "the slow client's link to be gone");
    await assertRelayServes(relay.port);
  } finally {
    slow.close();
    await feeder?.close();
    await requester?.close();
    await relay.close();
  }
});
