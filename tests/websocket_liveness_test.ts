/**
 * Liveness over the WebSocket carrier is the stream's, as on TCP:
 * WebSocket Pings are answered but are not life (a client that sends only
 * them is closed at the peer time-out), and a frame of the stream must be
 * complete within the frame time-out whatever messages it spans.
 */

import assert from "node:assert/strict";
import { encode, type Packet, PacketType, Reason } from "../protocol/mod.ts";
import { delay } from "./_helpers/async.ts";
import { withWebSocketRelay } from "./_helpers/relay_fixture.ts";
import { binaryMessage, clientFrame, RawWebSocket, WsOpcode } from "./_helpers/websocket_raw.ts";

Deno.test("websocket liveness: a client that sends only WebSocket Pings gets its Pongs, and is closed with PeerTimeout all the same", async () => {
  await withWebSocketRelay(
    { keepaliveMs: 200, peerTimeoutMs: 600 },
    async (_relay, websocketPort) => {
      const ws = await RawWebSocket.open(websocketPort);
      let pinging = true;
      try {
        await ws.handshake();
        // Pings every 50 ms until the relay gives up: at most 200 of them, 10 s.
        const pinger = (async () => {
          for (let i = 0; i < 200 && pinging; i++) {
            await ws.write(clientFrame(WsOpcode.Ping, new Uint8Array([i])));
            await delay(50);
          }
        })().catch(() => {/* the relay closed the link */});
        let error: Packet | null = null;
        for (let packets = 0; packets < 64 && error === null; packets++) {
          const packet = await ws.next("the relay's Error");
          assert.ok(packet !== null, `closed without an Error: ${JSON.stringify(ws.closeFrame)}`);
          // The relay's own keepalive Pings go unanswered.
          if (packet.type === PacketType.Error) error = packet;
        }
        assert.ok(error !== null && error.type === PacketType.Error);
        assert.equal(error.reason, Reason.PeerTimeout, error.message);
        assert.match(error.message, /nothing heard for \d+ ms/);
        await ws.expectClose(4000 + Reason.PeerTimeout, error.message);
        assert.ok(ws.pongs.length >= 1, "no Pong for the Pings");
        pinging = false;
        await pinger;
      } finally {
        pinging = false;
        ws.close();
      }
    },
  );
});

Deno.test("websocket liveness: a frame left incomplete across messages is closed at the frame time-out", async () => {
  await withWebSocketRelay({ frameTimeoutMs: 300 }, async (_relay, websocketPort) => {
    const ws = await RawWebSocket.open(websocketPort);
    try {
      await ws.handshake();
      const ping = encode({ type: PacketType.Ping, nonce: 9 });
      // Three bytes of the frame in one message, two in another, then nothing.
      await ws.write(binaryMessage(ping.subarray(0, 3)));
      await ws.write(binaryMessage(ping.subarray(3, 5)));
      const error = await ws.expectError(Reason.PeerTimeout);
      assert.match(error.message, /a frame started \d+ ms ago is still incomplete/);
    } finally {
      ws.close();
    }
  });
});
