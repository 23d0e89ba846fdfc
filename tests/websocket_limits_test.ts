/**
 * WebSocket links count against the relay's link limits exactly as TCP
 * links do, from the moment they are accepted; a WebSocket link turned away
 * gets the reason as a WebSocket client can read it: the upgrade, then
 * Error(ServerFull) and close 4022 with the same text.
 */

import assert from "node:assert/strict";
import { connect, generateIdentity } from "../mod.ts";
import { PacketType, Reason, reasonName } from "../protocol/mod.ts";
import { STEP_MS, waitUntil, withTimeout } from "./_helpers/async.ts";
import { rawClient } from "./_helpers/raw_client.ts";
import { withWebSocketRelay } from "./_helpers/relay_fixture.ts";
import { WebSocketLink } from "./_helpers/websocket_link.ts";
import { RawWebSocket } from "./_helpers/websocket_raw.ts";

const SERVER_FULL_CLOSE = 4000 + Reason.ServerFull;

/** Reads all a link gets until the relay closes it. */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buffer = new Uint8Array(4096);
  for (let reads = 0; reads < 64; reads++) {
    const count = await withTimeout(conn.read(buffer), STEP_MS, "the relay to close the link");
    if (count === null) break;
    chunks.push(new TextDecoder().decode(buffer.subarray(0, count)));
  }
  return chunks.join("");
}

Deno.test("websocket limits: a WebSocket link takes the source IP's only slot; the next WebSocket link gets Error(ServerFull) and close 4022, a TCP one Error(ServerFull)", async () => {
  await withWebSocketRelay({ maxLinksPerIp: 1 }, async (relay, websocketPort) => {
    const first = await RawWebSocket.open(websocketPort);
    try {
      await first.handshake();
      const second = await RawWebSocket.open(websocketPort);
      try {
        const error = await second.expectError(Reason.ServerFull);
        assert.match(error.message, /your IP holds 1 links/);
        assert.equal(second.closeFrame?.code, SERVER_FULL_CLOSE);
      } finally {
        second.close();
      }
      const tcp = await rawClient(relay.port);
      try {
        await tcp.expectError(Reason.ServerFull, "the TCP link beyond the IP's limit");
      } finally {
        await tcp.close();
      }
      assert.equal(relay.relay.linkCount, 1);
    } finally {
      first.close();
    }
    // The slot is free again once the WebSocket link is gone.
    await waitUntil(() => relay.relay.linkCount === 0, "the WebSocket link to be gone");
    const client = await connect({ port: relay.port, identity: await generateIdentity() });
    await client.close();
  });
});

Deno.test("websocket limits: a full relay turns a WebSocket away so that Deno's WebSocket reads the Error frame and close 4022 with the reason", async () => {
  await withWebSocketRelay({ maxClients: 1 }, async (relay, websocketPort) => {
    const tcp = await rawClient(relay.port);
    try {
      await tcp.handshake();
      const link = await WebSocketLink.open(`ws://127.0.0.1:${websocketPort}/`);
      const error = await link.expect(PacketType.Error, "the turned-away link's Error");
      assert.equal(reasonName(error.reason), "ServerFull");
      assert.match(error.message, /as many clients as it allows/);
      const event = await withTimeout(link.closed, STEP_MS, "the close");
      assert.equal(event.code, SERVER_FULL_CLOSE);
      assert.equal(event.reason, error.message);
    } finally {
      await tcp.close();
    }
  });
});

Deno.test("websocket limits: a full relay evicts a WebSocket link still before its upgrade (HTTP 503 saying why) to let a new client join", async () => {
  await withWebSocketRelay({ maxClients: 1 }, async (relay, websocketPort) => {
    const waiting = await Deno.connect({ hostname: "127.0.0.1", port: websocketPort });
    try {
      await waitUntil(() => relay.relay.linkCount === 1, "the relay to be full");
      const answer = readToEnd(waiting);
      const newcomer = await withTimeout(
        connect({ port: relay.port, identity: await generateIdentity(), reconnect: false }),
        STEP_MS,
        "a new client to join the full relay",
      );
      await newcomer.close();
      const response = await answer;
      assert.match(response, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(
        response,
        /\r\n\r\nCannot join: the relay is full and your link had not completed its handshake\n$/,
      );
    } finally {
      waiting.close();
    }
  });
});

Deno.test("websocket limits: a turned-away WebSocket link that never sends its request gets 503 at the refusal's deadline", async () => {
  await withWebSocketRelay({ maxLinksPerIp: 1 }, async (_relay, websocketPort) => {
    const first = await RawWebSocket.open(websocketPort);
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: websocketPort });
    try {
      await first.handshake();
      const response = await readToEnd(silent);
      assert.match(response, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(response, /your IP holds 1 links/);
    } finally {
      silent.close();
      first.close();
    }
  });
});
