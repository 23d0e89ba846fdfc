/**
 * The relay-link codec against anything a socket can bring: a Routed frame
 * round trips whatever the chunking, and no input makes the reader or the
 * Routed decoder throw anything but MeshProtocolError. And a socket that
 * talks garbage to the link port is closed without a link.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { PacketType } from "../../protocol/packet_type.ts";
import {
  decodeRouted,
  encodeMesh,
  encodeRoutedInto,
  helloBody,
  MeshFrameReader,
  MeshProtocolError,
  MeshType,
  routedLength,
} from "../../server/mesh/mesh_frames.ts";
import { startTestRelay, TestDirectoryHub } from "./_mesh_pair.ts";
import { withTimeout } from "../_helpers/async.ts";

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

/** Feeds `stream` to a reader in `cuts`-sized pieces; returns every frame's type and body copy. */
function readAll(stream: Uint8Array, cuts: number[]): { type: number; body: Uint8Array }[] {
  const reader = new MeshFrameReader();
  const frames: { type: number; body: Uint8Array }[] = [];
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const space = reader.space();
    const count = Math.min(space.length, stream.length - at, cuts[i % cuts.length] || 1);
    space.set(stream.subarray(at, at + count));
    reader.filled(count);
    at += count;
    for (let frame = reader.take(); frame !== null; frame = reader.take()) {
      frames.push({ type: frame.type, body: frame.body.slice() });
    }
  }
  return frames;
}

Deno.test("relay-link Routed data frames round trip through the reader, whatever the chunking", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          from: u32,
          to: u32,
          id: u32,
          payload: fc.uint8Array({ minLength: 1, maxLength: 70_000 }).map((bytes) =>
            bytes.subarray(0, 65_535)
          ),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 8 }),
      (frames, cuts) => {
        const packets = frames.map(({ id, payload }) => ({
          type: PacketType.ArbitraryData,
          connectionId: id,
          payload,
        } as const));
        const total = packets.reduce((sum, packet) => sum + routedLength(packet), 0);
        const stream = new Uint8Array(total);
        let at = 0;
        frames.forEach((frame, i) => {
          at += encodeRoutedInto(stream, at, frame.from, frame.to, 0, packets[i]);
        });
        const read = readAll(stream, cuts);
        assert.equal(read.length, frames.length);
        read.forEach(({ type, body }, i) => {
          assert.equal(type, MeshType.Routed);
          const routed = decodeRouted(body);
          assert.deepEqual([routed.from, routed.to, routed.aux], [frames[i].from, frames[i].to, 0]);
          assert.deepEqual(routed.packet, packets[i]);
        });
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("no input makes the relay-link reader or Routed decoder throw anything but MeshProtocolError", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 4096 }),
      fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 4 }),
      (garbage, cuts) => {
        try {
          for (const { type, body } of readAll(garbage, cuts)) {
            if (type === MeshType.Routed) decodeRouted(body);
          }
        } catch (error) {
          assert.ok(error instanceof MeshProtocolError, String(error));
        }
      },
    ),
    { numRuns: 500 },
  );
  // A Routed envelope around a frame the client protocol refuses.
  const body = new Uint8Array(12 + 5);
  body.set([0, 0, 0, 0, 0x7f], 12);
  assert.throws(() => decodeRouted(body), MeshProtocolError);
});

Deno.test("the link port closes a socket that sends garbage, or a Hello of another version, without a link", async () => {
  const hub = new TestDirectoryHub();
  const relay = await startTestRelay(hub, crypto.getRandomValues(new Uint8Array(32)));
  try {
    const hello = helloBody(new Uint8Array(16).fill(7), new Uint8Array(32));
    hello[0] = 9; // version 9
    for (
      const bytes of [
        new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
        encodeMesh(MeshType.Hello, hello),
      ]
    ) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: relay.mesh.addr.port });
      try {
        await conn.write(bytes);
        // The relay answers nothing and closes: the read ends (or is reset).
        const ended = await withTimeout(
          conn.read(new Uint8Array(256)).then((count) => count, () => null),
          5_000,
          "the link port to close the socket",
        );
        assert.equal(ended, null);
      } finally {
        conn.close();
      }
    }
    assert.equal(relay.mesh.linkCount, 0);
  } finally {
    await relay.mesh.close();
  }
});
