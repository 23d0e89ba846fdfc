import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import { ClientPacing, type PacingConfig } from "../../server/pacing.ts";
import { FakePeer } from "./_fake_peer.ts";

/** Long enough that a stalled test machine cannot turn an expected ping into a time-out. */
const KEEPALIVE_MS = 10_000;
const PEER_TIMEOUT_MS = 30_000;

const CONFIG: PacingConfig = {
  keepaliveMs: KEEPALIVE_MS,
  peerTimeoutMs: PEER_TIMEOUT_MS,
  requestRate: 10,
  requestBurst: 2,
  maxBytesPerSec: 0,
};

/** A pacing whose clock started at or after the returned `start`, and no later than `now`. */
function paced(overrides: Partial<PacingConfig> = {}): {
  pacing: ClientPacing;
  link: FakePeer;
  start: number;
} {
  const link = new FakePeer();
  const start = performance.now();
  return { pacing: new ClientPacing({ ...CONFIG, ...overrides }, link), link, start };
}

Deno.test("ClientPacing pings a client quiet for the keepalive, once per interval", () => {
  const { pacing, link, start } = paced();
  pacing.checkLiveness(start + KEEPALIVE_MS - 1);
  assert.deepEqual(link.take(), []);
  // The clock started no earlier than `start`, so by `now` at least a keepalive has passed.
  // A whole number of ms: `now + KEEPALIVE_MS - now` is then exactly KEEPALIVE_MS, not 9999.99….
  const now = Math.ceil(performance.now()) + KEEPALIVE_MS;
  pacing.checkLiveness(now);
  pacing.checkLiveness(now + KEEPALIVE_MS / 2);
  assert.deepEqual(link.take(), [{ type: PacketType.Ping, nonce: 1 }]);
  pacing.checkLiveness(now + KEEPALIVE_MS);
  assert.deepEqual(link.take(), [{ type: PacketType.Ping, nonce: 2 }]);
  assert.equal(link.closedWith, null);
});

Deno.test("ClientPacing closes a client silent for the peer time-out (PeerTimeout)", () => {
  const { pacing, link } = paced();
  pacing.checkLiveness(performance.now() + PEER_TIMEOUT_MS);
  assert.equal(link.closedWith?.reason, Reason.PeerTimeout);
  assert.match(link.closedWith?.message ?? "", /^nothing heard for \d+ ms$/);
});

Deno.test("ClientPacing counts any read as life", () => {
  const { pacing, link } = paced();
  const later = performance.now() + PEER_TIMEOUT_MS - KEEPALIVE_MS;
  // The read happens now, less than the peer time-out before `later`: quiet, not silent.
  pacing.afterRead(10);
  pacing.checkLiveness(later);
  assert.deepEqual(link.take(), [{ type: PacketType.Ping, nonce: 1 }]);
  assert.equal(link.closedWith, null);
});

Deno.test("ClientPacing refills request tokens at requestRate up to requestBurst", () => {
  const { pacing } = paced();
  const t = 1_000_000;
  assert.deepEqual([1, 2, 3].map(() => pacing.takeRequestToken(t)), [true, true, false]);
  assert.equal(pacing.takeRequestToken(t + 50), false); // half a token at 10 a second
  assert.equal(pacing.takeRequestToken(t + 100), true);
  assert.deepEqual([1, 2, 3].map(() => pacing.takeRequestToken(t + 10_000)), [true, true, false]);
});

Deno.test("ClientPacing pauses reads over the byte cap, is not silent meanwhile, and stop() ends the pause", async () => {
  const { pacing, link } = paced({ maxBytesPerSec: 1000 });
  assert.equal(pacing.afterRead(600), undefined);
  const pause = pacing.afterRead(600); // 200 bytes of debt: a 200 ms pause
  assert.ok(pause instanceof Promise);
  pacing.checkLiveness(performance.now() + 10 * PEER_TIMEOUT_MS);
  assert.equal(link.closedWith, null);
  assert.deepEqual(link.take(), []);
  pacing.stop();
  await pause;
  assert.equal(pacing.afterRead(10_000), undefined); // a closing link pauses no more
});

Deno.test("ClientPacing resumes a paused read by itself once back within the cap", async () => {
  const { pacing } = paced({ maxBytesPerSec: 1_000_000 });
  const pause = pacing.afterRead(1_000_001); // one byte of debt: a microsecond's pause
  assert.ok(pause instanceof Promise);
  await pause;
  pacing.stop();
});
