/**
 * Flow control end to end with real clients: write() waits for credit, a
 * stalled reader holds up nothing else, large transfers stay byte-exact.
 */

import assert from "node:assert/strict";
import { type AlphaNetClient, connect, type VirtualConn } from "../mod.ts";
import { DEFAULT_WINDOW_BYTES } from "../protocol/mod.ts";
import { Relay } from "../server.ts";
import { withTimeout as withDeadline } from "./_helpers/async.ts";
import { pseudoRandomBytes as pattern, sha256hex as sha256 } from "./_helpers/bytes.ts";
import { readAll as readToEnd, readExactly } from "./_helpers/streams.ts";

/** Waits for `promise`, failing with `what` after `ms`. */
function withTimeout<T>(promise: Promise<T>, what: string, ms = TEST_TIMEOUT_MS): Promise<T> {
  return withDeadline(promise, ms, what);
}

const TEST_TIMEOUT_MS = 30_000;

interface Pair {
  readonly relay: Relay;
  readonly alice: AlphaNetClient;
  readonly bob: AlphaNetClient;
  [Symbol.asyncDispose](): Promise<void>;
}

async function startPair(): Promise<Pair> {
  const relay = await Relay.start({
    hostname: "127.0.0.1",
    port: 0,
    db: ":memory:",
    logLevel: "silent",
  });
  const alice = await connect({ port: relay.addr.port, identity: "flow-alice-identity-0001" });
  const bob = await connect({ port: relay.addr.port, identity: "flow-bob-identity-000002" });
  return {
    relay,
    alice,
    bob,
    async [Symbol.asyncDispose](): Promise<void> {
      await alice.close();
      await bob.close();
      await relay.close();
    },
  };
}

/** Opens a connection from alice to bob and returns both ends. */
async function openConnection(pair: Pair, port: number): Promise<[VirtualConn, VirtualConn]> {
  const listener = pair.bob.listen({ port });
  const [outbound, inbound] = await Promise.all([
    pair.alice.connect({ hostname: pair.bob.virtualIp, port }),
    listener.accept(),
  ]);
  listener.close();
  return [outbound, inbound];
}

/** Resolves after a message has gone alice → relay → bob → relay → alice on a fresh connection. */
async function roundTrip(pair: Pair, port: number): Promise<void> {
  const [outbound, inbound] = await openConnection(pair, port);
  await outbound.write(Uint8Array.of(1));
  const buffer = new Uint8Array(1);
  assert.equal(await inbound.read(buffer), 1);
  await inbound.write(Uint8Array.of(2));
  assert.equal(await outbound.read(buffer), 1);
  outbound.close();
  inbound.close();
}

Deno.test("write() resolves within the window and waits, without failing, while the peer does not read", async () => {
  await using pair = await startPair();
  const [outbound, inbound] = await openConnection(pair, 80);
  const window = DEFAULT_WINDOW_BYTES;
  // A whole window fits in the initial credit.
  assert.equal(await withTimeout(outbound.write(pattern(window, 1)), "first window"), window);
  let settled = false;
  const blocked = outbound.write(pattern(1024, 2)).finally(() => settled = true);
  // A full round trip through the relay on another connection: had any credit been granted
  // (or the write failed), it would have settled by now.
  await withTimeout(roundTrip(pair, 81), "round trip");
  assert.equal(settled, false, "write() must wait for credit while the peer does not read");
  // Reading half the window grants credit; the blocked write then completes.
  await withTimeout(readExactly(inbound, window / 2), "reading half a window");
  assert.equal(await withTimeout(blocked, "blocked write"), 1024);
  const rest = await withTimeout(readExactly(inbound, window / 2 + 1024), "the rest");
  assert.equal(rest.length, window / 2 + 1024);
  outbound.close();
  inbound.close();
});

Deno.test("a stalled reader holds up no other connection between the same two clients", async () => {
  await using pair = await startPair();
  const [stalledOut, stalledIn] = await openConnection(pair, 80);
  // Fill the stalled connection's window and leave one more write waiting on it.
  await withTimeout(stalledOut.write(pattern(DEFAULT_WINDOW_BYTES, 3)), "fill window");
  const stuck = stalledOut.write(pattern(4096, 4));
  const [busyOut, busyIn] = await openConnection(pair, 81);
  const size = 32 * 1024 * 1024;
  const payload = pattern(size, 5);
  const [received] = await withTimeout(
    Promise.all([
      readToEnd(busyIn),
      busyOut.write(payload).then(() => busyOut.closeWrite()),
    ]),
    "32 MiB beside a stalled connection",
  );
  assert.equal(received.length, size);
  assert.equal(await sha256(received), await sha256(payload));
  // The stalled connection is intact: draining it releases the waiting write.
  const drained = await withTimeout(
    readExactly(stalledIn, DEFAULT_WINDOW_BYTES + 4096),
    "drain stalled",
  );
  assert.equal(await withTimeout(stuck, "stuck write"), 4096);
  assert.deepEqual(drained.subarray(DEFAULT_WINDOW_BYTES), pattern(4096, 4));
  for (const conn of [stalledOut, stalledIn, busyOut, busyIn]) conn.close();
});

Deno.test("64 MiB each way at once arrives byte-exact, by hash, in both directions", async () => {
  await using pair = await startPair();
  const [outbound, inbound] = await openConnection(pair, 80);
  const size = 64 * 1024 * 1024;
  const fromAlice = pattern(size, 6);
  const fromBob = pattern(size, 7);
  const [atBob, atAlice] = await withTimeout(
    Promise.all([
      readToEnd(inbound),
      readToEnd(outbound),
      outbound.write(fromAlice).then(() => outbound.closeWrite()),
      inbound.write(fromBob).then(() => inbound.closeWrite()),
    ]),
    "64 MiB each way",
    60_000,
  );
  assert.equal(atBob.length, size);
  assert.equal(atAlice.length, size);
  assert.equal(await sha256(atBob), await sha256(fromAlice));
  assert.equal(await sha256(atAlice), await sha256(fromBob));
  outbound.close();
  inbound.close();
});

Deno.test("a larger window lets more bytes through before the first grant", async () => {
  const relay = await Relay.start({
    hostname: "127.0.0.1",
    port: 0,
    db: ":memory:",
    logLevel: "silent",
  });
  const window = 4 * 1024 * 1024;
  const alice = await connect({ port: relay.addr.port, identity: "flow-alice-identity-0001" });
  const bob = await connect({
    port: relay.addr.port,
    identity: "flow-bob-identity-000002",
    window,
  });
  try {
    const listener = bob.listen({ port: 80 });
    const [outbound, inbound] = await Promise.all([
      alice.connect({ hostname: bob.virtualIp, port: 80 }),
      listener.accept(),
    ]);
    // Bob announced 4 MiB: alice may write all of it before bob reads a byte.
    assert.equal(
      await withTimeout(outbound.write(pattern(window, 8)), "4 MiB within credit"),
      window,
    );
    const received = await withTimeout(readExactly(inbound, window), "read 4 MiB");
    assert.deepEqual(received.subarray(0, 16), pattern(16, 8));
    outbound.close();
    inbound.close();
    listener.close();
  } finally {
    await alice.close();
    await bob.close();
    await relay.close();
  }
});
