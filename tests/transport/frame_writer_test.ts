/**
 * FrameWriter over a sink the test controls: batching, ordering, and the
 * control-byte count the relay's slow-consumer rule relies on.
 */

import assert from "node:assert/strict";
import { FrameDecoder, type Packet, PacketType, Reason } from "../../protocol/mod.ts";
import { BATCH_BUFFER_BYTES, type ByteSink, FrameWriter } from "../../transport/frame_writer.ts";

/** A sink whose writes complete only when the test says so. */
class GatedSink implements ByteSink {
  readonly writes: Uint8Array[] = [];
  #pending: (() => void)[] = [];
  #failNext: Error | null = null;

  write(bytes: Uint8Array): Promise<number> {
    this.writes.push(bytes.slice());
    if (this.#failNext) return Promise.reject(this.#failNext);
    return new Promise((resolve) => this.#pending.push(() => resolve(bytes.length)));
  }

  /** Completes every write in flight; returns how many. */
  release(): number {
    const pending = this.#pending.splice(0);
    for (const complete of pending) complete();
    return pending.length;
  }

  failWith(error: Error): void {
    this.#failNext = error;
  }
}

function decodeAll(chunks: Uint8Array[]): Packet[] {
  const decoder = new FrameDecoder();
  const packets: Packet[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk, (packet) => {
      packets.push(
        packet.type === PacketType.ArbitraryData
          ? { ...packet, payload: packet.payload.slice() }
          : packet,
      );
    });
  }
  return packets;
}

/** Lets queued microtasks and settled promises run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Releases writes until the writer is drained; bounded by the number of batches. */
async function drain(sink: GatedSink, writer: FrameWriter): Promise<void> {
  for (let round = 0; round < 1000 && writer.queuedBytes > 0; round++) {
    await settle();
    sink.release();
  }
  await writer.drained();
}

Deno.test("FrameWriter sends every frame queued in one turn in a single write", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  for (let nonce = 0; nonce < 20; nonce++) writer.writePacket({ type: PacketType.Ping, nonce });
  await settle();
  assert.equal(sink.writes.length, 1);
  await drain(sink, writer);
  assert.deepEqual(decodeAll(sink.writes).map((p) => (p as { nonce: number }).nonce), [
    ...Array(20).keys(),
  ]);
});

Deno.test("FrameWriter counts control bytes apart from data, until they are written", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const payload = new Uint8Array(60_000).fill(7);
  for (let i = 0; i < 30; i++) writer.writeData(1, payload); // ~1.8 MiB of data
  const closed: Packet = { type: PacketType.SocketClosed, connectionId: 1, reason: Reason.Normal };
  writer.writePacket(closed);
  assert.ok(writer.queuedBytes > 1024 * 1024);
  assert.equal(writer.queuedControlBytes, 10, "only the SocketClosed frame is control");
  await drain(sink, writer);
  assert.equal(writer.queuedBytes, 0);
  assert.equal(writer.queuedControlBytes, 0);
});

Deno.test("FrameWriter keeps a deep queue in order, in writes of at most one pooled buffer", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const sent: number[] = [];
  for (let i = 0; i < 64; i++) {
    const size = 1 + ((i * 7919) % 65_535);
    writer.writeData(i, new Uint8Array(size).fill(i));
    if (i % 5 === 0) {
      writer.writePacket({ type: PacketType.WindowUpdate, connectionId: i + 1, increment: 1 });
    }
    sent.push(i);
  }
  await drain(sink, writer);
  for (const write of sink.writes) assert.ok(write.length <= BATCH_BUFFER_BYTES);
  const data = decodeAll(sink.writes).filter((p) => p.type === PacketType.ArbitraryData);
  assert.deepEqual(data.map((p) => p.connectionId), sent);
  for (const packet of data) {
    assert.ok(packet.type === PacketType.ArbitraryData);
    assert.ok(packet.payload.every((byte) => byte === packet.connectionId));
  }
});

Deno.test("FrameWriter reports a failed write once and drops everything after it", async () => {
  const sink = new GatedSink();
  const errors: unknown[] = [];
  const writer = new FrameWriter(sink, (error) => errors.push(error));
  sink.failWith(new Error("reset"));
  writer.writePacket({ type: PacketType.Ping, nonce: 1 });
  await writer.drained();
  await settle();
  writer.writePacket({ type: PacketType.Ping, nonce: 2 });
  await settle();
  assert.equal(errors.length, 1);
  assert.equal(sink.writes.length, 1);
  assert.equal(writer.queuedBytes, 0);
});

Deno.test("FrameWriter merges queued WindowUpdates per connection, keeping the sum exact", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  writer.writePacket({ type: PacketType.Ping, nonce: 1 }); // the write in flight
  await settle();
  assert.equal(sink.writes.length, 1);
  let granted = 0;
  for (let i = 0; i < 100_000; i++) {
    writer.writeWindowUpdate(1 + (i % 3), 1);
    granted++;
  }
  assert.equal(writer.queuedControlBytes, 9 + 3 * 13, "one queued WindowUpdate per connection");
  await drain(sink, writer);
  const grants = decodeAll(sink.writes).filter((p) => p.type === PacketType.WindowUpdate);
  assert.equal(grants.length, 3);
  let sum = 0;
  for (const grant of grants) {
    assert.ok(grant.type === PacketType.WindowUpdate);
    sum += grant.increment;
  }
  assert.equal(sum, granted);
});

Deno.test("FrameWriter never merges an increment past MAX_WINDOW_BYTES, nor into a frame being written", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const big = 16 * 1024 * 1024;
  writer.writeWindowUpdate(1, big - 1);
  writer.writeWindowUpdate(1, 1); // exactly the maximum: merged
  writer.writeWindowUpdate(1, 1); // one more: a frame of its own
  await settle(); // the batch is now being written
  writer.writeWindowUpdate(1, 5);
  await drain(sink, writer);
  const increments = decodeAll(sink.writes).map((p) =>
    p.type === PacketType.WindowUpdate ? p.increment : -1
  );
  assert.deepEqual(increments, [big, 1, 5]);
});

Deno.test("FrameWriter writes Ping, Pong and Error ahead of a deep queue, in order behind a shallow one", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const payload = new Uint8Array(60_000);
  writer.writeData(1, payload); // the write in flight
  await settle();
  for (let i = 0; i < 8; i++) writer.writeData(1, payload);
  writer.writePacket({ type: PacketType.SocketClosed, connectionId: 1, reason: Reason.Normal });
  writer.writePacket({ type: PacketType.Pong, nonce: 3 });
  writer.writePacket({ type: PacketType.Ping, nonce: 4 });
  await drain(sink, writer);
  const types = decodeAll(sink.writes).map((p) => p.type);
  assert.deepEqual(types.slice(0, 3), [
    PacketType.ArbitraryData,
    PacketType.Pong,
    PacketType.Ping,
  ]);
  assert.equal(types.at(-1), PacketType.SocketClosed, "a SocketClosed never overtakes its data");

  sink.writes.length = 0;
  writer.writePacket({ type: PacketType.VirtualIP, address: 1 });
  writer.writePacket({ type: PacketType.Pong, nonce: 5 });
  await drain(sink, writer);
  assert.deepEqual(decodeAll(sink.writes).map((p) => p.type), [
    PacketType.VirtualIP,
    PacketType.Pong,
  ]);
});

Deno.test("FrameWriter.finish() sends the last frame right after the write in flight when told to discard", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const payload = new Uint8Array(60_000);
  writer.writeData(1, payload);
  await settle();
  for (let i = 0; i < 40; i++) writer.writeData(1, payload);
  writer.writePacket({ type: PacketType.WindowUpdate, connectionId: 2, increment: 9 });
  writer.finish({ type: PacketType.Error, reason: Reason.SlowConsumer, message: "" }, true);
  writer.writePacket({ type: PacketType.Ping, nonce: 1 }); // after finish: dropped
  assert.equal(writer.queuedControlBytes, 8, "only the Error frame is left as control");
  await drain(sink, writer);
  assert.deepEqual(decodeAll(sink.writes).map((p) => p.type), [
    PacketType.ArbitraryData,
    PacketType.Error,
  ]);
});

Deno.test("FrameWriter.finish() without discarding puts the last frame after everything queued", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  writer.writeData(1, new Uint8Array(10));
  writer.writePacket({ type: PacketType.Pong, nonce: 1 });
  writer.finish({ type: PacketType.Error, reason: Reason.Shutdown, message: "" }, false);
  await drain(sink, writer);
  assert.deepEqual(decodeAll(sink.writes).map((p) => p.type), [
    PacketType.ArbitraryData,
    PacketType.Pong,
    PacketType.Error,
  ]);
});
