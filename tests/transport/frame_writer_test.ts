/**
 * FrameWriter over a sink the test controls: batching, ordering, and the
 * control-byte count the relay's slow-consumer rule relies on.
 */

import assert from "node:assert/strict";
import { FrameDecoder, type Packet, PacketType, Reason } from "../../protocol/mod.ts";
import { LARGE_BUFFER_BYTES } from "../../transport/buffer_pool.ts";
import { type ByteSink, FrameWriter } from "../../transport/frame_writer.ts";

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
  for (const write of sink.writes) assert.ok(write.length <= LARGE_BUFFER_BYTES);
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
