/** FrameWriter's count of data written out, which the relay's buffer budget relies on. */

import assert from "node:assert/strict";
import { DATA_FRAME_OVERHEAD_BYTES } from "../../protocol/codec.ts";
import { PacketType } from "../../protocol/mod.ts";
import { type ByteSink, FrameWriter } from "../../transport/frame_writer.ts";

/** A sink that takes every write at once. */
class OpenSink implements ByteSink {
  write(bytes: Uint8Array): Promise<number> {
    return Promise.resolve(bytes.length);
  }
}

Deno.test("FrameWriter reports the data frame bytes each write took out, control frames apart", async () => {
  const reported: number[] = [];
  const writer = new FrameWriter(
    new OpenSink(),
    () => {},
    undefined,
    (bytes) => reported.push(bytes),
  );
  writer.writeData(1, new Uint8Array(100));
  writer.writePacket({ type: PacketType.Ping, nonce: 1 });
  writer.writeData(2, new Uint8Array(50));
  await writer.drained();
  assert.deepEqual(reported, [150 + 2 * DATA_FRAME_OVERHEAD_BYTES]);
  writer.writePacket({ type: PacketType.Ping, nonce: 2 });
  await writer.drained();
  assert.deepEqual(reported.length, 1, "a write of control frames only reports nothing");
});
