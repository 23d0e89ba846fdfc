/**
 * Flow control seen on the wire: a raw client on one side counts every
 * byte and every credit grant the real client on the other side produces.
 */

import assert from "node:assert/strict";
import { type AlphaNetClient, connect, type VirtualConn } from "../mod.ts";
import { formatIpv4, PacketType, type SocketConnectionResponsePacket } from "../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { concatBytes, pseudoRandomBytes, randomIdentity } from "./_helpers/bytes.ts";
import { addressOf, type RawClient, rawClient } from "./_helpers/raw_client.ts";
import { startRelay } from "./_helpers/relay_fixture.ts";
import { readExactly } from "./_helpers/streams.ts";

const RAW_WINDOW = 16 * 1024;

/**
 * A handshaken raw client opens a connection to `receiver`'s new listener on
 * port 9 with a bare connection request (skipping the status step),
 * announcing a 16 KiB window; returns the relay's answer and the accepted end.
 */
async function rawConnectTo(
  raw: RawClient,
  receiver: AlphaNetClient,
): Promise<{ answer: SocketConnectionResponsePacket; inbound: VirtualConn }> {
  const listener = receiver.listen({ port: 9 });
  await raw.send({
    type: PacketType.SocketConnectionRequest,
    requestId: 1,
    connectionId: 0,
    source: raw.address,
    sourcePort: 50_000,
    destination: addressOf(receiver),
    destinationPort: 9,
    window: RAW_WINDOW,
  });
  const answer = await raw.expect(PacketType.SocketConnectionResponse, "connection response");
  const inbound = await withTimeout(listener.accept(), STEP_MS, "accept");
  listener.close();
  return { answer, inbound };
}

Deno.test("a real sender never has more bytes in flight than the raw receiver granted", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const raw = await rawClient(relay.port);
  const sender = await connect({ port: relay.port, identity: randomIdentity() });
  try {
    const rawAddress = await raw.handshake();
    const rawIp = formatIpv4(rawAddress);
    // The raw client plays the listening owner: answer the status, accept with a 16 KiB window.
    const connecting = sender.connect({ hostname: rawIp, port: 7 });
    const status = await raw.expect(PacketType.SocketStatusRequest, "status request");
    assert.equal(status.source, addressOf(sender), "the relay stamps the sender's address");
    await raw.send({
      type: PacketType.SocketStatusResponse,
      requestId: status.requestId,
      listening: true,
    });
    const request = await raw.expect(PacketType.SocketConnectionRequest, "connection request");
    await raw.send({
      type: PacketType.SocketConnectionResponse,
      requestId: request.requestId,
      connectionId: request.connectionId,
      accepted: true,
      window: RAW_WINDOW,
    });
    const conn = await withTimeout(connecting, STEP_MS, "connect");
    const total = 100 * 1024;
    const payload = pseudoRandomBytes(total, 11);
    const writing = conn.write(payload);
    let granted = RAW_WINDOW;
    let received = 0;
    const seen: Uint8Array[] = [];
    // Each grant lets exactly that much more through; bounded by total / grant steps.
    for (let frames = 0; received < total && frames < 1000; frames++) {
      const data = await raw.expect(PacketType.ArbitraryData, `data after ${received} bytes`);
      assert.equal(data.connectionId, request.connectionId);
      received += data.payload.length;
      seen.push(data.payload);
      assert.ok(received <= granted, `received ${received} bytes with only ${granted} granted`);
      if (received === granted && received < total) {
        const increment = 8 * 1024;
        granted += increment;
        await raw.send({
          type: PacketType.WindowUpdate,
          connectionId: request.connectionId,
          increment,
        });
      }
    }
    assert.equal(received, total);
    assert.equal(await withTimeout(writing, STEP_MS, "the write to finish"), total);
    assert.deepEqual(concatBytes(seen), payload);
    conn.close();
  } finally {
    await sender.close();
    await raw.close();
    await relay.close();
  }
});

Deno.test("a real receiver batches its credit grants: one per half window read, not one per read", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const raw = await rawClient(relay.port);
  const window = 64 * 1024;
  const receiver = await connect({
    port: relay.port,
    identity: randomIdentity(),
    window,
    maxWindow: window,
  });
  try {
    await raw.handshake();
    const { answer, inbound } = await rawConnectTo(raw, receiver);
    assert.equal(answer.accepted, true);
    assert.equal(answer.window, window);
    const total = 1024 * 1024;
    const chunk = 4 * 1024;
    let credit = answer.window;
    let sent = 0;
    const increments: number[] = [];
    // The application reads in 1 KiB pieces while the raw sender keeps within credit.
    const reading = (async () => {
      let read = 0;
      while (read < total) read += (await readExactly(inbound, 1024)).length;
      return read;
    })();
    for (let steps = 0; sent < total && steps < 10_000; steps++) {
      if (credit >= chunk) {
        await raw.send({
          type: PacketType.ArbitraryData,
          connectionId: answer.connectionId,
          payload: new Uint8Array(chunk).fill(steps & 0xff),
        });
        credit -= chunk;
        sent += chunk;
        continue;
      }
      const update = await raw.expect(PacketType.WindowUpdate, `credit after ${sent} bytes`);
      assert.equal(update.connectionId, answer.connectionId);
      increments.push(update.increment);
      credit += update.increment;
    }
    assert.equal(await withTimeout(reading, STEP_MS, "the receiver to read everything"), total);
    assert.ok(increments.length > 0, "the receiver grants credit");
    for (const increment of increments) {
      assert.ok(increment >= window / 2, `a grant of ${increment} bytes is below half the window`);
    }
    // 1024 reads of 1 KiB; batching at half a window allows at most total / (window / 2) grants.
    assert.ok(
      increments.length <= total / (window / 2),
      `${increments.length} grants for ${total} bytes`,
    );
    // A fixed window grants back exactly what was read, never more.
    assert.ok(increments.reduce((sum, n) => sum + n, 0) <= total);
    inbound.close();
  } finally {
    await receiver.close();
    await raw.close();
    await relay.close();
  }
});

Deno.test("a starved reader grows its window by doubling up to maxWindow, and no further", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const raw = await rawClient(relay.port);
  const window = 64 * 1024;
  const maxWindow = 512 * 1024;
  const receiver = await connect({
    port: relay.port,
    identity: randomIdentity(),
    window,
    maxWindow,
  });
  try {
    await raw.handshake();
    const { answer, inbound } = await rawConnectTo(raw, receiver);
    const total = 8 * 1024 * 1024;
    const { largestCredit, granted } = await streamToReader(raw, answer, inbound, total);
    assert.ok(largestCredit <= maxWindow, `credit ${largestCredit} beyond maxWindow ${maxWindow}`);
    // Grants beyond the bytes read are growth: some, so more credit than the first window
    // was ever on offer, and never more than maxWindow - window in all.
    assert.ok(largestCredit > window, `credit never exceeded the first window (${largestCredit})`);
    assert.ok(granted - total <= maxWindow - window, `grew by ${granted - total} bytes`);
    inbound.close();
  } finally {
    await receiver.close();
    await raw.close();
    await relay.close();
  }
});

/**
 * Streams `total` bytes on a raw sender's connection to a reader that reads
 * whatever arrives at once (so every grant finds it waiting), within credit.
 * Returns the largest grant (at least half the window the receiver reached,
 * more while it grows), the most credit the sender held, and all it was granted.
 */
async function streamToReader(
  raw: RawClient,
  answer: SocketConnectionResponsePacket,
  inbound: VirtualConn,
  total: number,
): Promise<{ largestGrant: number; largestCredit: number; granted: number }> {
  const reading = (async () => {
    const buffer = new Uint8Array(256 * 1024);
    let read = 0;
    while (read < total) {
      const count = await inbound.read(buffer);
      if (count === null) break;
      read += count;
    }
    return read;
  })();
  let credit = answer.window;
  let sent = 0;
  let largestGrant = 0;
  let largestCredit = credit;
  let granted = 0;
  for (let steps = 0; sent < total && steps < 100_000; steps++) {
    if (credit > 0) {
      const size = Math.min(credit, 65_535, total - sent);
      await raw.send({
        type: PacketType.ArbitraryData,
        connectionId: answer.connectionId,
        payload: new Uint8Array(size),
      });
      credit -= size;
      sent += size;
      continue;
    }
    const update = await raw.next(STEP_MS, `credit after ${sent} bytes`);
    assert.ok(update !== null, "the link ended");
    // The other connections' last grants and closes may still come in: not this one's credit.
    if (update.type === PacketType.SocketClosed && update.connectionId !== answer.connectionId) {
      continue;
    }
    assert.equal(update.type, PacketType.WindowUpdate, JSON.stringify(update));
    if (update.connectionId !== answer.connectionId) continue;
    credit += update.increment;
    granted += update.increment;
    largestGrant = Math.max(largestGrant, update.increment);
    largestCredit = Math.max(largestCredit, credit);
  }
  assert.equal(await withTimeout(reading, STEP_MS, "the receiver to read everything"), total);
  return { largestGrant, largestCredit, granted };
}

Deno.test("a client's connections share one window growth allowance, given back when a connection closes", async () => {
  const relay = await startRelay({ db: ":memory:" });
  const raw = await rawClient(relay.port);
  const receiver = await connect({ port: relay.port, identity: randomIdentity() });
  const MiB = 1024 * 1024;
  try {
    await raw.handshake();
    // Defaults: window 256 KiB, maxWindow 4 MiB, 4 MiB of growth for all connections together.
    // All three first: afterwards the raw link also carries other connections' grants.
    const first = await rawConnectTo(raw, receiver);
    const second = await rawConnectTo(raw, receiver);
    const third = await rawConnectTo(raw, receiver);
    assert.equal(first.answer.window, 256 * 1024);
    // Growing from 2 to 4 MiB, one grant gives back 1 MiB read and 2 MiB of growth.
    const firstGrant =
      (await streamToReader(raw, first.answer, first.inbound, 8 * MiB)).largestGrant;
    assert.ok(firstGrant >= 3 * MiB, `one stream grows to maxWindow (grant ${firstGrant})`);
    // 256 KiB of the allowance is left: the second window stops at 512 KiB.
    const secondGrant =
      (await streamToReader(raw, second.answer, second.inbound, 8 * MiB)).largestGrant;
    assert.ok(secondGrant <= 512 * 1024, `the second grew past the allowance (${secondGrant})`);
    first.inbound.close();
    second.inbound.close();
    const thirdGrant =
      (await streamToReader(raw, third.answer, third.inbound, 8 * MiB)).largestGrant;
    assert.ok(thirdGrant >= 3 * MiB, `closed connections gave their growth back (${thirdGrant})`);
    third.inbound.close();
  } finally {
    await receiver.close();
    await raw.close();
    await relay.close();
  }
});
