/**
 * readFrames on a streaming link: frames split across reads are completed
 * where they landed (views of a slab, never copies), bytes a handler keeps a
 * reference to are never written over, and a link that goes quiet gives its
 * slab back.
 */

import assert from "node:assert/strict";
import { encode, MAX_DATA_BYTES, type Packet, PacketType } from "../../protocol/mod.ts";
import { type ByteSource, readFrames } from "../../transport/read_loop.ts";
import type { Slab } from "../../transport/slab.ts";
import { concatBytes } from "../_helpers/bytes.ts";
import { chunkSource } from "../_helpers/streams.ts";

/** A deterministic generator (LCG), so a failing split can be replayed. */
function random(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state % below;
  };
}

/** Data frames of varied sizes, payload bytes numbered so any misplacement shows. */
function dataStream(frames: number, next: (below: number) => number): {
  stream: Uint8Array;
  payloads: Uint8Array[];
} {
  const payloads: Uint8Array[] = [];
  const parts: Uint8Array[] = [];
  for (let i = 0; i < frames; i++) {
    const size = i % 3 === 0 ? MAX_DATA_BYTES : 1 + next(MAX_DATA_BYTES);
    const payload = new Uint8Array(size).map((_, at) => (i * 31 + at) & 0xff);
    payloads.push(payload);
    parts.push(encode({ type: PacketType.ArbitraryData, connectionId: i + 1, payload }));
  }
  return { stream: concatBytes(parts), payloads };
}

/**
 * Hands out `stream` in reads of random size (each at most what the reader
 * asked for), as a busy socket does.
 */
function splitSource(stream: Uint8Array, next: (below: number) => number): ByteSource {
  let at = 0;
  return {
    read(buffer: Uint8Array): Promise<number | null> {
      if (at === stream.length) return Promise.resolve(null);
      assert.ok(buffer.length > 0, "a read must ask for at least one byte");
      const count = Math.min(buffer.length, stream.length - at, 1 + next(300_000));
      buffer.set(stream.subarray(at, at + count));
      at += count;
      return Promise.resolve(count);
    },
  };
}

Deno.test("readFrames completes frames split across reads in place: large payloads are views of the slab they come with", async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const next = random(seed);
    const { stream, payloads } = dataStream(60, next);
    const received: Uint8Array[] = [];
    let views = 0;
    await readFrames(splitSource(stream, next), (packet: Packet, slab: Slab | null) => {
      assert.equal(packet.type, PacketType.ArbitraryData);
      if (packet.type !== PacketType.ArbitraryData) return;
      if (slab !== null) assert.ok(slab.holds(packet.payload), `seed ${seed}: outside its slab`);
      if (slab !== null && packet.payload.length > 512) views++;
      received.push(packet.payload.slice());
    });
    assert.equal(received.length, payloads.length);
    received.forEach((payload, i) => assert.deepEqual(payload, payloads[i], `seed ${seed}, #${i}`));
    // Frames over 512 bytes only ever arrive in a slab: every one of them came as a view.
    assert.equal(views, payloads.filter((p) => p.length > 512).length, `seed ${seed}`);
  }
});

Deno.test("readFrames never writes over bytes a handler still holds", async () => {
  const next = random(42);
  const { stream, payloads } = dataStream(90, next);
  const kept: { view: Uint8Array; slab: Slab; index: number }[] = [];
  let index = 0;
  await readFrames(splitSource(stream, next), (packet, slab) => {
    if (packet.type === PacketType.ArbitraryData && slab !== null && index % 2 === 0) {
      slab.retain();
      kept.push({ view: packet.payload, slab, index });
    }
    index++;
  });
  assert.ok(kept.length > 20);
  for (const { view, slab, index } of kept) {
    assert.deepEqual(view, payloads[index], `frame ${index} changed under its holder`);
    slab.release();
  }
  for (const { slab } of kept) assert.equal(slab.shared, false);
});

Deno.test("readFrames hands small frames of a quiet link over without a slab", async () => {
  const ping = encode({ type: PacketType.Ping, nonce: 1 });
  const big = encode({
    type: PacketType.ArbitraryData,
    connectionId: 1,
    payload: new Uint8Array(MAX_DATA_BYTES).fill(7),
  });
  const source = chunkSource(big.subarray(0, 512), big.subarray(512), ping, ping);
  const seen: [number, boolean][] = [];
  await readFrames(source, (packet, slab) => seen.push([packet.type, slab !== null]));
  assert.deepEqual(seen, [
    [PacketType.ArbitraryData, true], // filled the small buffer: the link streams
    [PacketType.Ping, true], // a short read into the slab: the link is quiet now
    [PacketType.Ping, false], // back in the small buffer
  ]);
});
