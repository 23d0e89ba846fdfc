/**
 * FrameWriter's zero-copy paths: a relay forwarding data frames from the slab
 * they arrived in (header rewritten, bytes written from the slab, runs merged,
 * at most two runs queued), and an endpoint appending to its last unsent data
 * frame.
 */

import assert from "node:assert/strict";
import {
  encodeInto,
  FrameDecoder,
  MAX_DATA_BYTES,
  type Packet,
  PacketType,
} from "../../protocol/mod.ts";
import { type ByteSink, FrameWriter } from "../../transport/frame_writer.ts";
import { Slab } from "../../transport/slab.ts";

/** Records each write (the bytes as given, and a copy) and completes it when released. */
class GatedSink implements ByteSink {
  readonly writes: { given: Uint8Array; copy: Uint8Array }[] = [];
  #pending: (() => void)[] = [];

  write(bytes: Uint8Array): Promise<number> {
    this.writes.push({ given: bytes, copy: bytes.slice() });
    return new Promise((resolve) => this.#pending.push(() => resolve(bytes.length)));
  }

  release(): number {
    const pending = this.#pending.splice(0);
    for (const complete of pending) complete();
    return pending.length;
  }
}

async function drain(sink: GatedSink, writer: FrameWriter): Promise<void> {
  for (let turn = 0; turn < 1_000 && writer.queuedBytes > 0; turn++) {
    await Promise.resolve();
    sink.release();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.equal(writer.queuedBytes, 0, "the writer did not drain");
}

/** Data packets of what was written, payloads copied. */
function decodeAll(sink: GatedSink): { connectionId: number; payload: Uint8Array }[] {
  const decoder = new FrameDecoder();
  const out: { connectionId: number; payload: Uint8Array }[] = [];
  for (const { copy } of sink.writes) {
    decoder.push(copy, (packet: Packet) => {
      assert.equal(packet.type, PacketType.ArbitraryData);
      if (packet.type === PacketType.ArbitraryData) {
        out.push({ connectionId: packet.connectionId, payload: packet.payload.slice() });
      }
    });
  }
  return out;
}

/** Encodes data frames one after the other into a fresh slab; returns their payload views. */
function slabWith(sizes: number[], fill: number): { slab: Slab; payloads: Uint8Array[] } {
  const slab = new Slab();
  const payloads: Uint8Array[] = [];
  let at = 0;
  for (const size of sizes) {
    const payload = new Uint8Array(size).fill(fill++);
    const used = encodeInto(
      { type: PacketType.ArbitraryData, connectionId: 99, payload },
      slab.bytes,
      at,
    );
    payloads.push(slab.bytes.subarray(at + used - size, at + used));
    at += used;
  }
  return { slab, payloads };
}

Deno.test("FrameWriter forwards large data frames from their slab, rewriting the header, in one write per run", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const { slab, payloads } = slabWith([MAX_DATA_BYTES, 20_000, 100], 1);
  for (const payload of payloads) writer.writeData(7, payload, slab);
  assert.equal(slab.shared, true, "the queued run holds the slab");
  await drain(sink, writer);
  // One write, straight from the slab: the small frame continued the run, so it joined it.
  assert.equal(sink.writes.length, 1);
  assert.equal(sink.writes[0].given.buffer, slab.bytes.buffer);
  const sent = decodeAll(sink);
  assert.deepEqual(sent.map((p) => p.connectionId), [7, 7, 7]);
  sent.forEach((p, i) => assert.deepEqual(p.payload, payloads[i]));
  assert.equal(slab.shared, false, "the written run gave the slab back");
  slab.release();
});

Deno.test("FrameWriter copies a small frame that would start a run, and a frame without its header in the slab", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const small = slabWith([100], 1);
  writer.writeData(3, small.payloads[0], small.slab);
  const bare = new Slab();
  bare.bytes.fill(5, 0, 30_000);
  writer.writeData(4, bare.bytes.subarray(0, 30_000), bare); // no room for a header before it
  assert.equal(small.slab.shared, false);
  assert.equal(bare.shared, false);
  await drain(sink, writer);
  assert.ok(sink.writes.every(({ given }) => given.buffer !== bare.bytes.buffer));
  assert.deepEqual(decodeAll(sink).map((p) => [p.connectionId, p.payload.length]), [
    [3, 100],
    [4, 30_000],
  ]);
  small.slab.release();
  bare.release();
});

Deno.test("FrameWriter queues at most two slab runs; later frames are copied, all in order", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const slabs = [1, 2, 3, 4, 5].map((fill) => slabWith([40_000], fill * 10));
  writer.writeData(1, slabs[0].payloads[0], slabs[0].slab);
  await Promise.resolve(); // the first run is now being written
  for (const { slab, payloads } of slabs.slice(1)) writer.writeData(1, payloads[0], slab);
  // The first run is being written, two are queued, the last two were copied.
  assert.deepEqual(slabs.map(({ slab }) => slab.shared), [true, true, true, false, false]);
  await drain(sink, writer);
  const sent = decodeAll(sink);
  assert.equal(sent.length, 5);
  sent.forEach((p, i) => assert.deepEqual(p.payload, slabs[i].payloads[0]));
  for (const { slab } of slabs) {
    assert.equal(slab.shared, false);
    slab.release();
  }
});

Deno.test("FrameWriter.appendData fills the last unsent data frame of the same connection", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const chunk = (i: number) => new Uint8Array(64 * 1024).fill(i);
  writer.appendData(1, chunk(1)); // a frame of 65,535 bytes and one of 1
  await Promise.resolve(); // both are now being written
  for (let i = 2; i <= 4; i++) writer.appendData(1, chunk(i)); // while they are in flight
  writer.appendData(2, new Uint8Array(10).fill(9)); // another connection: a frame of its own
  writer.appendData(1, new Uint8Array(5).fill(8)); // after it: a new frame
  await drain(sink, writer);
  const sent = decodeAll(sink);
  // In flight, each write filled the frame the one before left open: 3 × 64 KiB in 4 frames, not 6.
  assert.deepEqual(sent.map((p) => `${p.connectionId}:${p.payload.length}`), [
    "1:65535",
    "1:1",
    "1:65535",
    "1:65535",
    "1:65535",
    "1:3",
    "2:10",
    "1:5",
  ]);
  const stream1 = sent.filter((p) => p.connectionId === 1).flatMap((p) => [...p.payload]);
  const expected = [1, 2, 3, 4].flatMap((i) => [...chunk(i)]).concat([8, 8, 8, 8, 8]);
  assert.equal(stream1.length, expected.length);
  assert.ok(stream1.every((byte, at) => byte === expected[at]), "connection 1's bytes in order");
});

Deno.test("FrameWriter forwards a large frame in place after small ones it copied, keeping the order", async () => {
  const sink = new GatedSink();
  const writer = new FrameWriter(sink, () => assert.fail("no error expected"));
  const small = slabWith([100], 1);
  const large = slabWith([50_000, 30_000], 2);
  writer.writePacket({ type: PacketType.WindowUpdate, connectionId: 9, increment: 10 });
  writer.writeData(1, small.payloads[0], small.slab);
  for (const payload of large.payloads) writer.writeData(2, payload, large.slab);
  assert.equal(small.slab.shared, false, "the small frame was copied");
  assert.equal(large.slab.shared, true, "the large ones were not");
  await drain(sink, writer);
  assert.deepEqual(sink.writes.map(({ given }) => given.buffer === large.slab.bytes.buffer), [
    false,
    true,
  ]);
  const decoder = new FrameDecoder();
  const order: string[] = [];
  for (const { copy } of sink.writes) {
    decoder.push(copy, (packet) => {
      order.push(
        packet.type === PacketType.ArbitraryData
          ? `data ${packet.connectionId} ${packet.payload.length}`
          : `type ${packet.type}`,
      );
    });
  }
  assert.deepEqual(order, [
    `type ${PacketType.WindowUpdate}`,
    "data 1 100",
    "data 2 50000",
    "data 2 30000",
  ]);
  small.slab.release();
  large.slab.release();
});
