/**
 * Relay-issued ids stop at 2^32 − 1 on the real relay: the link that used
 * its last id is closed with a reason, nobody else is disturbed, and a
 * rejection nobody handled costs a log line, not the relay.
 */

import assert from "node:assert/strict";
import { PacketType, Reason, reasonName } from "../protocol/mod.ts";
import { MAX_ISSUED_ID } from "../server/peer_book.ts";
import { relayTestHooks } from "../server/_testing.ts";
import { waitUntil } from "./_helpers/async.ts";
import { rawClient } from "./_helpers/raw_client.ts";
import { assertRelayServes, startRelay } from "./_helpers/relay_fixture.ts";

Deno.test("an owner whose ids reach 2^32 − 1 is closed with Internal; its requester gets Offline and keeps its link", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const owner = await rawClient(relay.port);
  const requester = await rawClient(relay.port);
  try {
    relayTestHooks.firstIssuedId = MAX_ISSUED_ID - 2;
    try {
      await owner.handshake();
      await requester.handshake();
    } finally {
      relayTestHooks.firstIssuedId = 0;
    }
    await requester.send({
      type: PacketType.SocketConnectionRequest,
      requestId: 7,
      connectionId: 0,
      source: requester.address,
      sourcePort: 50_000,
      destination: owner.address,
      destinationPort: 80,
      window: 16_384,
    });
    const asked = await owner.expect(PacketType.SocketConnectionRequest, "the connect");
    assert.equal(asked.requestId, MAX_ISSUED_ID - 1);
    assert.equal(asked.connectionId, MAX_ISSUED_ID - 1);
    await owner.send({
      type: PacketType.SocketConnectionResponse,
      requestId: asked.requestId,
      connectionId: asked.connectionId,
      accepted: true,
      window: 16_384,
    });
    const accepted = await requester.expect(PacketType.SocketConnectionResponse, "acceptance");
    assert.equal(accepted.connectionId, MAX_ISSUED_ID - 1);
    // The owner's last request id, then one too many.
    for (const requestId of [8, 9]) {
      await requester.send({
        type: PacketType.SocketStatusRequest,
        requestId,
        source: requester.address,
        destination: owner.address,
        destinationPort: 80,
      });
    }
    const last = await owner.expect(PacketType.SocketStatusRequest, "the last request id");
    assert.equal(last.requestId, MAX_ISSUED_ID);
    const error = await owner.expectError(Reason.Internal, "the owner out of ids");
    assert.match(error.message, /used every connection or request id/);
    // The requester: its connection ends, request 8 fails with the owner, 9 was refused.
    const seen = new Map<number, string>();
    for (let i = 0; i < 3; i++) {
      const packet = await requester.next();
      assert.ok(packet !== null);
      if (packet.type === PacketType.RequestFailed) {
        seen.set(packet.requestId, reasonName(packet.reason));
      } else {
        assert.equal(packet.type, PacketType.SocketClosed);
        assert.equal(packet.connectionId, MAX_ISSUED_ID - 1);
      }
    }
    assert.deepEqual(Object.fromEntries(seen), { 8: "Offline", 9: "Offline" });
    await requester.send({ type: PacketType.Ping, nonce: 5 });
    assert.equal((await requester.expect(PacketType.Pong, "the requester alive")).nonce, 5);
    await assertRelayServes(relay.port);
  } finally {
    await owner.close();
    await requester.close();
    await relay.close();
  }
});

Deno.test("a relay with guardRejections logs a rejection nobody handles, and keeps serving", async () => {
  const lines: string[] = [];
  const originalError = console.error;
  console.error = (...args: unknown[]) => void lines.push(args.join(" "));
  const relay = await startRelay({ db: ":memory:", logLevel: "error", guardRejections: true });
  try {
    void Promise.reject(new Error("a bug somewhere in the relay"));
    await waitUntil(
      () => lines.some((line) => line.includes("unhandled-rejection")),
      "the relay to log the unhandled rejection",
    );
    assert.ok(lines.some((line) => line.includes("a bug somewhere in the relay")));
    await assertRelayServes(relay.port);
  } finally {
    await relay.close();
    console.error = originalError;
  }
});
