/** The read loop shared by the tests' hand-driven links (client side and relay side). */

import { FrameDecoder, type Packet } from "../../protocol/mod.ts";

/**
 * Reads `conn` until its end, decoding frames as they come: `onPacket` gets
 * each packet (its byte fields are views valid during the call only, so copy
 * what you keep), then `onChunk` runs once per read. Resolves at the end of
 * the stream; rejects with the read's or the decoder's error, which each
 * caller weighs its own way.
 */
export async function readPackets(
  conn: Deno.Conn,
  onPacket: (packet: Packet) => void,
  onChunk: () => void,
): Promise<void> {
  const decoder = new FrameDecoder();
  const buffer = new Uint8Array(64 * 1024);
  // Each pass reads one chunk; the peer's close (or ours) ends the loop.
  while (true) {
    const count = await conn.read(buffer);
    if (count === null) return;
    decoder.push(buffer.subarray(0, count), onPacket);
    onChunk();
  }
}
