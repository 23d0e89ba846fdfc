/**
 * The relay's WebSocket carrier end to end, on a real relay: a WebSocket
 * client is a full peer (the same handshake, the same frames as TCP, a
 * frame may span messages and a message hold several), and WebSocket and
 * TCP clients reach each other. Clients: the tests' hand-built WebSocket
 * (exact bytes) and Deno's own `WebSocket` (an implementation not ours).
 */

import assert from "node:assert/strict";
import { connect, generateIdentity } from "../mod.ts";
import { encode, type Packet, PacketType, Reason, reasonName } from "../protocol/mod.ts";
import { STEP_MS, waitUntil, withTimeout } from "./_helpers/async.ts";
import { concatBytes, pseudoRandomBytes, sha256hex } from "./_helpers/bytes.ts";
import { addressOf, proofFor, rawClient } from "./_helpers/raw_client.ts";
import { assertRelayServes, startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";
import { WebSocketLink } from "./_helpers/websocket_link.ts";
import {
  binaryMessage,
  clientFrame,
  RawWebSocket,
  SAMPLE_ACCEPT,
  upgradeHead,
  WsOpcode,
} from "./_helpers/websocket_raw.ts";

const MiB = 1024 * 1024;

/** A relay with its WebSocket carrier on a free port. */
async function withWebSocketRelay(
  test: (relay: TestRelay, websocketPort: number) => Promise<void>,
): Promise<void> {
  const relay = await startRelay({ websocketPort: 0 });
  try {
    const websocketPort = relay.relay.websocketAddr?.port;
    assert.ok(websocketPort !== undefined && websocketPort > 0);
    await test(relay, websocketPort);
  } finally {
    await relay.close();
  }
}

Deno.test("websocket carrier: a hand-built WebSocket client upgrades with alphanet, does the version 2 handshake and gets a VirtualIP", async () => {
  await withWebSocketRelay(async (relay, websocketPort) => {
    // A client offering compression gets none: the relay never answers an extension.
    const ws = await RawWebSocket.open(websocketPort, {
      protocol: "chat, alphanet",
      headers: { "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits" },
    });
    try {
      const { headers } = ws.response;
      assert.equal(headers.get("upgrade"), "websocket");
      assert.equal(headers.get("connection"), "Upgrade");
      assert.equal(headers.get("sec-websocket-accept"), SAMPLE_ACCEPT);
      assert.equal(headers.get("sec-websocket-protocol"), "alphanet");
      assert.equal(headers.has("sec-websocket-extensions"), false);
      const address = await ws.handshake();
      assert.ok(address !== 0);
      assert.equal(relay.relay.onlineCount, 1);
      // A TCP client's status request reaches the WebSocket client, and its answer comes back.
      const tcp = await connect({ port: relay.port, identity: await generateIdentity() });
      try {
        const asking = tcp.status({ hostname: formatAddress(address), port: 7 });
        const request = await ws.expect(PacketType.SocketStatusRequest, "the status request");
        assert.equal(request.destinationPort, 7);
        await ws.send({
          type: PacketType.SocketStatusResponse,
          requestId: request.requestId,
          listening: true,
        });
        assert.deepEqual(await asking, { online: true, listening: true });
      } finally {
        await tcp.close();
      }
    } finally {
      ws.close();
    }
  });
});

function formatAddress(address: number): string {
  return [24, 16, 8, 0].map((shift) => (address >>> shift) & 0xff).join(".");
}

Deno.test("websocket carrier: frames pipelined after the request head, split across messages and fragments, are one stream; Pings get Pongs", async () => {
  await withWebSocketRelay(async (_relay, websocketPort) => {
    // The upgrade request and the Hello in one write: the relay keeps the bytes after the head.
    const hello = encode({ type: PacketType.Hello, version: 2 });
    const ws = await RawWebSocket.open(websocketPort, { pipelined: binaryMessage(hello) });
    try {
      const challenge = await ws.expect(PacketType.Challenge, "Challenge");
      const proof = encode(await proofFor(challenge, undefined));
      // The Proof in three parts: a message of 1 byte, then a fragmented message with a Ping
      // between its fragments, and an empty fragment.
      await ws.write(concatBytes([
        binaryMessage(proof.subarray(0, 1)),
        clientFrame(WsOpcode.Binary, proof.subarray(1, 10), { fin: false }),
        clientFrame(WsOpcode.Ping, new TextEncoder().encode("are you there")),
        clientFrame(WsOpcode.Continuation, new Uint8Array(0), { fin: false }),
        clientFrame(WsOpcode.Continuation, proof.subarray(10)),
      ]));
      const answer = await ws.expect(PacketType.VirtualIP, "VirtualIP");
      assert.ok(answer.address !== 0);
      assert.deepEqual(ws.pongs.map((p) => new TextDecoder().decode(p)), ["are you there"]);
      // Two AlphaNET frames in one message, and one AlphaNET frame across two messages.
      const ping = (nonce: number) => encode({ type: PacketType.Ping, nonce });
      const third = ping(3);
      await ws.write(concatBytes([
        binaryMessage(concatBytes([ping(1), ping(2)])),
        binaryMessage(third.subarray(0, 4)),
        binaryMessage(third.subarray(4)),
      ]));
      for (const nonce of [1, 2, 3]) {
        const pong = await ws.expect(PacketType.Pong, `Pong ${nonce}`);
        assert.equal(pong.nonce, nonce);
      }
      // A flood of Pings: Pongs never pile up, and the latest one is answered.
      const pings: Uint8Array[] = [];
      for (let i = 0; i < 500; i++) {
        pings.push(clientFrame(WsOpcode.Ping, new TextEncoder().encode(`ping ${i}`)));
      }
      // A Pong from the client is ignored.
      pings.push(clientFrame(WsOpcode.Pong, new TextEncoder().encode("unsolicited")));
      await ws.write(concatBytes([...pings, binaryMessage(ping(4))]));
      const last = await ws.expect(PacketType.Pong, "Pong 4 after the Pings");
      assert.equal(last.nonce, 4);
      assert.ok(ws.pongs.length >= 2 && ws.pongs.length <= 501, `${ws.pongs.length} Pongs`);
      assert.equal(new TextDecoder().decode(ws.pongs.at(-1)), "ping 499");
    } finally {
      ws.close();
    }
  });
});

/**
 * Moves `toOwner` from a WebSocket client to a TCP client's listener and
 * `toRequester` back, over one virtual connection the WebSocket client opens
 * by hand, honouring the credit the relay gives it. Returns what each got.
 */
async function exchangeOverWebSocket(
  relay: TestRelay,
  websocketPort: number,
  toOwner: Uint8Array,
  toRequester: Uint8Array,
): Promise<{ atOwner: Uint8Array; atRequester: Uint8Array }> {
  const bob = await connect({ port: relay.port, identity: await generateIdentity() });
  const ws = await WebSocketLink.open(`ws://127.0.0.1:${websocketPort}/`);
  try {
    assert.equal(ws.socket.protocol, "alphanet");
    await ws.handshake();
    const listener = bob.listen({ port: 80 });
    const accepting = listener.accept();
    ws.send({
      type: PacketType.SocketConnectionRequest,
      requestId: 1,
      connectionId: 0,
      source: ws.address,
      sourcePort: 50_000,
      destination: addressOf(bob),
      destinationPort: 80,
      window: 16 * MiB,
    });
    const response = await ws.expect(PacketType.SocketConnectionResponse, "the acceptance");
    assert.equal(response.accepted, true);
    const bobEnd = await withTimeout(accepting, STEP_MS, "bob to accept");
    listener.close();
    const id = response.connectionId;
    // Bob reads everything and writes his part at the same time.
    const bobReads = (async () => {
      const chunks: Uint8Array[] = [];
      const buffer = new Uint8Array(64 * 1024);
      for (let got = 0, reads = 0; got < toOwner.length && reads < 100_000; reads++) {
        const count = await bobEnd.read(buffer);
        assert.ok(count !== null, "bob's stream ended early");
        chunks.push(buffer.slice(0, count));
        got += count;
      }
      return concatBytes(chunks);
    })();
    const bobWrites = bobEnd.write(toRequester);
    // The WebSocket client sends within its credit and grants what it reads.
    let credit = response.window;
    let sent = 0;
    const received: Uint8Array[] = [];
    let receivedBytes = 0;
    for (let steps = 0; steps < 100_000; steps++) {
      if (sent >= toOwner.length && receivedBytes >= toRequester.length) break;
      if (sent < toOwner.length && credit > 0) {
        const frames: Packet[] = [];
        for (let batch = 0; batch < 16 && credit > 0 && sent < toOwner.length; batch++) {
          const size = Math.min(credit, 65_535, toOwner.length - sent);
          frames.push({
            type: PacketType.ArbitraryData,
            connectionId: id,
            payload: toOwner.subarray(sent, sent + size),
          });
          sent += size;
          credit -= size;
        }
        ws.send(...frames);
        continue;
      }
      const packet = await ws.next("data or credit from the relay");
      assert.ok(packet !== null, "the WebSocket closed mid-transfer");
      if (packet.type === PacketType.WindowUpdate) {
        assert.equal(packet.connectionId, id);
        credit += packet.increment;
      } else if (packet.type === PacketType.ArbitraryData) {
        assert.equal(packet.connectionId, id);
        received.push(packet.payload);
        receivedBytes += packet.payload.length;
        ws.send({
          type: PacketType.WindowUpdate,
          connectionId: id,
          increment: packet.payload.length,
        });
      } else if (packet.type !== PacketType.Ping) {
        assert.fail(`unexpected ${JSON.stringify(packet)}`);
      }
    }
    const atOwner = await withTimeout(bobReads, STEP_MS, "bob to read everything");
    await withTimeout(bobWrites, STEP_MS, "bob's write to complete");
    ws.send({ type: PacketType.SocketClosed, connectionId: id, reason: Reason.Normal });
    bobEnd.close();
    assert.equal(ws.textMessages, 0);
    return { atOwner, atRequester: concatBytes(received) };
  } finally {
    const closed = await ws.close();
    assert.equal(closed.code, 1000);
    await bob.close();
  }
}

Deno.test("websocket carrier: Deno's WebSocket carrying AlphaNET frames and a TCP client exchange 1 MiB each way, byte-exact", async () => {
  await withWebSocketRelay(async (relay, websocketPort) => {
    const up = pseudoRandomBytes(MiB, 11);
    const down = pseudoRandomBytes(MiB, 12);
    const { atOwner, atRequester } = await exchangeOverWebSocket(relay, websocketPort, up, down);
    assert.equal(atOwner.length, up.length);
    assert.equal(await sha256hex(atOwner), await sha256hex(up));
    assert.equal(atRequester.length, down.length);
    assert.equal(await sha256hex(atRequester), await sha256hex(down));
    await assertRelayServes(relay.port);
  });
});

Deno.test("websocket carrier: a client's Close is answered with Close 1000, and its peer's connection ends with PeerDisconnected", async () => {
  await withWebSocketRelay(async (relay, websocketPort) => {
    const owner = await rawClient(relay.port);
    const ws = await RawWebSocket.open(websocketPort);
    try {
      const ownerAddress = await owner.handshake();
      await ws.handshake();
      await ws.send({
        type: PacketType.SocketConnectionRequest,
        requestId: 1,
        connectionId: 0,
        source: ws.address,
        sourcePort: 50_000,
        destination: ownerAddress,
        destinationPort: 80,
        window: 16_384,
      });
      const request = await owner.expect(PacketType.SocketConnectionRequest, "the request");
      await owner.send({
        type: PacketType.SocketConnectionResponse,
        requestId: request.requestId,
        connectionId: request.connectionId,
        accepted: true,
        window: 16_384,
      });
      await ws.expect(PacketType.SocketConnectionResponse, "the acceptance");
      await ws.write(clientFrame(WsOpcode.Close, new Uint8Array([0x03, 0xe8])));
      await ws.expectClose(1000, "", "the relay's answer to the client's Close");
      const closed = await owner.expect(PacketType.SocketClosed, "the owner's end to close");
      assert.equal(closed.connectionId, request.connectionId);
      assert.equal(reasonName(closed.reason), "PeerDisconnected");
      await waitUntil(() => relay.relay.onlineCount === 1, "the WebSocket client to be gone");
    } finally {
      ws.close();
      await owner.close();
    }
  });
});

Deno.test("websocket carrier: an AlphaNET violation is the same Error frame as on TCP, then close 4000 + reason with its text", async () => {
  await withWebSocketRelay(async (relay, websocketPort) => {
    const ws = await RawWebSocket.open(websocketPort);
    const tcp = await rawClient(relay.port);
    try {
      // The first frame is not a Hello: UnexpectedPacket on either carrier.
      await ws.send({ type: PacketType.Ping, nonce: 1 });
      await tcp.send({ type: PacketType.Ping, nonce: 1 });
      const overWs = await ws.expectError(Reason.UnexpectedPacket);
      const overTcp = await tcp.expectError(Reason.UnexpectedPacket);
      assert.equal(overWs.message, overTcp.message);
      assert.equal(ws.closeFrame?.code, 4003);
      assert.equal(ws.closeFrame?.reason, overWs.message);
    } finally {
      ws.close();
      await tcp.close();
    }
  });
});

Deno.test("websocket carrier: Deno's WebSocket sees a takeover as close 4007 (Replaced) with the relay's reason, after the Error frame", async () => {
  await withWebSocketRelay(async (_relay, websocketPort) => {
    const identity = await generateIdentity();
    const url = `ws://127.0.0.1:${websocketPort}/`;
    const first = await WebSocketLink.open(url);
    const second = await WebSocketLink.open(url);
    try {
      const address = await first.handshake(identity);
      assert.equal(await second.handshake(identity), address);
      const error = await first.expect(PacketType.Error, "the first link's Error");
      assert.equal(reasonName(error.reason), "Replaced");
      const event = await withTimeout(first.closed, STEP_MS, "the first link to close");
      assert.equal(event.code, 4000 + Reason.Replaced);
      assert.equal(event.reason, error.message);
    } finally {
      await first.close();
      await second.close();
    }
  });
});

Deno.test("websocket carrier: every link's frames go out as binary messages, one per batch", async () => {
  await withWebSocketRelay(async (_relay, websocketPort) => {
    const ws = await RawWebSocket.open(websocketPort);
    try {
      await ws.handshake();
      // Pings answered in one read turn leave in one write: one message with 64 Pongs.
      const pings: Packet[] = [];
      for (let nonce = 1; nonce <= 64; nonce++) pings.push({ type: PacketType.Ping, nonce });
      const before = ws.messages;
      await ws.send(...pings);
      for (let nonce = 1; nonce <= 64; nonce++) {
        assert.equal((await ws.expect(PacketType.Pong, `Pong ${nonce}`)).nonce, nonce);
      }
      assert.ok(ws.messages - before <= 2, `${ws.messages - before} messages for 64 Pongs`);
    } finally {
      ws.close();
    }
  });
});

Deno.test("websocket carrier: a request head that arrives a byte at a time is upgraded", async () => {
  await withWebSocketRelay(async (_relay, websocketPort) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: websocketPort });
    conn.setNoDelay(true);
    try {
      const head = new TextEncoder().encode(upgradeHead(websocketPort));
      for (let i = 0; i < head.length; i++) await conn.write(head.subarray(i, i + 1));
      let text = "";
      const buffer = new Uint8Array(1024);
      for (let reads = 0; reads < 64 && !text.includes("\r\n\r\n"); reads++) {
        const count = await withTimeout(conn.read(buffer), STEP_MS, "the 101");
        assert.ok(count !== null, `closed after ${JSON.stringify(text)}`);
        text += new TextDecoder().decode(buffer.subarray(0, count));
      }
      assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    } finally {
      conn.close();
    }
  });
});
