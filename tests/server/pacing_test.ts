import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import { ClientPacing, type PacingConfig } from "../../server/pacing.ts";
import { FakePeer } from "./_fake_peer.ts";

/** Long enough that a stalled test machine cannot turn an expected ping into a time-out. */
const KEEPALIVE_MS = 10_000;
const PEER_TIMEOUT_MS = 30_000;
const FRAME_TIMEOUT_MS = 5_000;

const CONFIG: PacingConfig = {
  keepaliveMs: KEEPALIVE_MS,
  peerTimeoutMs: PEER_TIMEOUT_MS,
  frameTimeoutMs: FRAME_TIMEOUT_MS,
  requestRate: 10,
  requestBurst: 2,
  maxBytesPerSec: 0,
};

/** The clock the deterministic tests start at: any whole number of ms will do. */
const T0 = 1_000_000;

/** A pacing whose clock starts at {@linkcode T0}. */
function paced(overrides: Partial<PacingConfig> = {}): { pacing: ClientPacing; link: FakePeer } {
  const link = new FakePeer();
  return { pacing: new ClientPacing({ ...CONFIG, ...overrides }, link, T0), link };
}

Deno.test("ClientPacing pings a client quiet for the keepalive, once per interval", () => {
  const { pacing, link } = paced();
  pacing.checkLiveness(T0 + KEEPALIVE_MS - 1);
  assert.deepEqual(link.take(), []);
  pacing.checkLiveness(T0 + KEEPALIVE_MS);
  pacing.checkLiveness(T0 + KEEPALIVE_MS * 1.5);
  assert.deepEqual(link.take(), [{ type: PacketType.Ping, nonce: 1 }]);
  pacing.checkLiveness(T0 + KEEPALIVE_MS * 2);
  assert.deepEqual(link.take(), [{ type: PacketType.Ping, nonce: 2 }]);
  assert.equal(link.closedWith, null);
});

Deno.test("ClientPacing closes a client silent for the peer time-out (PeerTimeout)", () => {
  const { pacing, link } = paced();
  pacing.checkLiveness(T0 + PEER_TIMEOUT_MS - 1);
  assert.equal(link.closedWith === null, true, "still alive a millisecond before the time-out");
  pacing.checkLiveness(T0 + PEER_TIMEOUT_MS);
  assert.equal(link.closedWith?.reason, Reason.PeerTimeout);
  assert.equal(link.closedWith?.message, `nothing heard for ${PEER_TIMEOUT_MS} ms`);
});

Deno.test("ClientPacing counts any read as life", () => {
  const { pacing, link } = paced();
  // Heard from a keepalive later: at the peer time-out it is quiet, not silent.
  pacing.afterRead(10, T0 + KEEPALIVE_MS);
  pacing.checkLiveness(T0 + PEER_TIMEOUT_MS);
  assert.deepEqual(link.take(), [{ type: PacketType.Ping, nonce: 1 }]);
  assert.equal(link.closedWith, null);
});

Deno.test("ClientPacing refills request tokens at requestRate up to requestBurst", () => {
  const { pacing } = paced();
  assert.deepEqual([1, 2, 3].map(() => pacing.takeRequestToken(T0)), [true, true, false]);
  assert.equal(pacing.takeRequestToken(T0 + 50), false); // half a token at 10 a second
  assert.equal(pacing.takeRequestToken(T0 + 100), true);
  assert.deepEqual([1, 2, 3].map(() => pacing.takeRequestToken(T0 + 10_000)), [true, true, false]);
});

Deno.test("ClientPacing pauses reads over the byte cap, is not silent meanwhile, and stop() ends the pause", async () => {
  const { pacing, link } = paced({ maxBytesPerSec: 1000 });
  assert.equal(pacing.afterRead(600, T0), undefined);
  const pause = pacing.afterRead(600, T0); // 200 bytes of debt: a 200 ms pause
  assert.ok(pause instanceof Promise);
  pacing.checkLiveness(T0 + 10 * PEER_TIMEOUT_MS);
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

Deno.test("ClientPacing closes a client whose frame takes longer than the frame time-out, however it trickles", () => {
  const { pacing, link } = paced();
  pacing.afterRead(3, T0, "started");
  for (let t = T0 + 1000; t < T0 + FRAME_TIMEOUT_MS; t += 1000) {
    pacing.afterRead(1, t, "continued"); // a byte a second: heard from, but the frame drags on
    pacing.checkLiveness(t);
  }
  assert.equal(link.closedWith === null, true, "still open within the frame time-out");
  pacing.checkLiveness(T0 + FRAME_TIMEOUT_MS);
  assert.equal(link.closedWith?.reason, Reason.PeerTimeout);
  assert.equal(
    link.closedWith?.message,
    `a frame started ${FRAME_TIMEOUT_MS} ms ago is still incomplete`,
  );
});

Deno.test("ClientPacing restarts the frame clock with each new frame and stops it between frames", () => {
  const { pacing, link } = paced();
  // A bulk sender whose reads always end inside a frame: each read completes one, starts another.
  for (let t = T0; t <= T0 + 3 * FRAME_TIMEOUT_MS; t += 1000) {
    pacing.afterRead(65_536, t, "started");
    pacing.checkLiveness(t);
  }
  pacing.afterRead(10, T0 + 3 * FRAME_TIMEOUT_MS + 1, "between");
  pacing.checkLiveness(T0 + 4 * FRAME_TIMEOUT_MS);
  assert.equal(link.closedWith, null);
});
