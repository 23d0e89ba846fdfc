/**
 * A frame that has started must complete within the frame time-out on the
 * real relay: bytes trickled into it do not keep the link alive, while a
 * client that sends whole frames, however rarely, stays.
 */

import assert from "node:assert/strict";
import { FRAME_HEADER_BYTES, MAX_FRAME_BODY_BYTES, PacketType, Reason } from "../protocol/mod.ts";
import { delay } from "./_helpers/async.ts";
import { startEchoPair } from "./_helpers/echo_pair.ts";
import { rawClient } from "./_helpers/raw_client.ts";
import { startRelay } from "./_helpers/relay_fixture.ts";

const FRAME_TIMEOUT_MS = 400;
/** How often the trickler sends its next byte: far inside every other time-out. */
const TRICKLE_MS = 20;

Deno.test("a client trickling one byte at a time into a frame is closed with PeerTimeout after --frame-timeout", async () => {
  const relay = await startRelay({
    db: ":memory:",
    frameTimeoutMs: FRAME_TIMEOUT_MS,
    keepaliveMs: 10_000,
    peerTimeoutMs: 30_000,
  });
  const pair = await startEchoPair(relay.port);
  const trickler = await rawClient(relay.port);
  try {
    await trickler.handshake();
    // The header of the largest ArbitraryData frame, then its body a byte at a time.
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    new DataView(header.buffer).setUint32(0, MAX_FRAME_BODY_BYTES);
    header[FRAME_HEADER_BYTES - 1] = PacketType.ArbitraryData;
    const startedAt = performance.now();
    let ended = false;
    const ending = trickler.expectError(Reason.PeerTimeout, "the trickling client's close")
      .finally(() => ended = true);
    await trickler.write(header);
    // Bounded: the relay must end it long before the frame could complete.
    for (let i = 0; i < MAX_FRAME_BODY_BYTES && !ended; i++) {
      try {
        await trickler.write(Uint8Array.of(i));
      } catch {
        break; // the relay closed the link under our write
      }
      await delay(TRICKLE_MS);
    }
    const error = await ending;
    const elapsed = performance.now() - startedAt;
    assert.match(error.message, /frame started \d+ ms ago is still incomplete/);
    assert.ok(elapsed >= FRAME_TIMEOUT_MS - 1, `closed after ${Math.round(elapsed)} ms`);
    await pair.assertEchoes("after the trickler was closed");
  } finally {
    await trickler.close();
    await pair.close();
    await relay.close();
  }
});

Deno.test("whole frames keep a link alive past many frame time-outs", async () => {
  const relay = await startRelay({
    db: ":memory:",
    frameTimeoutMs: 100,
    keepaliveMs: 10_000,
    peerTimeoutMs: 30_000,
  });
  const client = await rawClient(relay.port);
  try {
    await client.handshake();
    // Each Ping is whole in one write; the answers prove the link outlived 5 frame time-outs.
    for (let nonce = 1; nonce <= 5; nonce++) {
      await client.send({ type: PacketType.Ping, nonce });
      assert.equal((await client.expect(PacketType.Pong, `Pong ${nonce}`)).nonce, nonce);
      await delay(100);
    }
  } finally {
    await client.close();
    await relay.close();
  }
});
