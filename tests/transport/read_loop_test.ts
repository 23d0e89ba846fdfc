/**
 * readFrames over a source the test feeds: where each read leaves the frame
 * stream (what the relay's frame time-out runs on), and what a stalled
 * partial frame pins.
 */

import assert from "node:assert/strict";
import {
  type BufferLender,
  encode,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  PacketType,
} from "../../protocol/mod.ts";
import { type FrameProgress, readFrames } from "../../transport/read_loop.ts";
import { chunkSource } from "../_helpers/streams.ts";

Deno.test("readFrames reports whether each read left the stream between frames, in a new frame or in the same one", async () => {
  const ping = encode({ type: PacketType.Ping, nonce: 1 });
  const pong = encode({ type: PacketType.Pong, nonce: 2 });
  const progress: FrameProgress[] = [];
  await readFrames(
    chunkSource(
      ping, // whole: between
      pong.subarray(0, 3), // a frame starts
      pong.subarray(3, 6), // the same frame goes on
      Uint8Array.of(...pong.subarray(6), ...ping.subarray(0, 2)), // one ends, the next starts
      ping.subarray(2), // ends: between
    ),
    () => {},
    (bytes, where) => void (bytes > 0 && progress.push(where)),
  );
  assert.deepEqual(progress, ["between", "started", "continued", "started", "between"]);
});

Deno.test("FrameDecoder holding only the header of a large frame borrows no large buffer", () => {
  let lent = 0;
  const lender: BufferLender = {
    acquire(minBytes): Uint8Array {
      lent++;
      return new Uint8Array(minBytes);
    },
    release(): void {
      lent--;
    },
  };
  const frame = encode({
    type: PacketType.ArbitraryData,
    connectionId: 1,
    payload: new Uint8Array(65_535),
  });
  const decoder = new FrameDecoder(lender);
  decoder.push(frame.subarray(0, FRAME_HEADER_BYTES + 100), () => {});
  assert.equal(lent, 0, "a stalled frame header pins the small buffer only");
  decoder.push(frame.subarray(FRAME_HEADER_BYTES + 100, 5000), () => {});
  assert.equal(lent, 1, "past 1 KiB the whole frame is borrowed once");
  let done = 0;
  decoder.push(frame.subarray(5000), () => done++);
  assert.equal(done, 1);
  assert.equal(lent, 0);
});
