/** How a raw TCP link to the relay ended, read to its end without keeping payloads. */

import { type ErrorPacket, FrameDecoder, type Packet, PacketType } from "../../protocol/mod.ts";

/** How a raw TCP link to the relay ended, as seen by {@linkcode readLinkToEnd}. */
export interface LinkOutcome {
  /** Types of every packet received, in order. */
  readonly types: number[];
  /** The first Error frame received, if any. */
  readonly error: ErrorPacket | null;
  /** Packets received after the first Error frame (the relay must send none). */
  readonly afterError: number;
  /** "eof" for a clean close, "reset" for a reset, "closed" if the test closed it first. */
  readonly ending: "eof" | "reset" | "closed";
  /** Why the relay's bytes could not be decoded, or null (the relay must always be decodable). */
  readonly decodeError: string | null;
  /** Bytes received in all. */
  readonly bytes: number;
}

/**
 * Reads a raw link until it ends, decoding every frame, without keeping
 * payloads: for many links at once (a 512-byte buffer each). Fails if more
 * than `limit` bytes arrive, which bounds the loop.
 */
export async function readLinkToEnd(
  conn: Deno.Conn,
  limit: number = 16 * 1024 * 1024,
): Promise<LinkOutcome> {
  const decoder = new FrameDecoder();
  const buffer = new Uint8Array(512);
  const types: number[] = [];
  let error: ErrorPacket | null = null;
  let afterError = 0;
  let decodeError: string | null = null;
  let bytes = 0;
  let ending: LinkOutcome["ending"] = "eof";
  const onPacket = (packet: Packet): void => {
    types.push(packet.type);
    if (error !== null) afterError++;
    else if (packet.type === PacketType.Error) error = { ...packet };
  };
  try {
    for (let reads = 0; reads <= limit; reads++) {
      const count = await conn.read(buffer);
      if (count === null) break;
      bytes += count;
      if (bytes > limit) throw new Error(`readLinkToEnd: more than ${limit} bytes arrived`);
      if (decodeError === null) {
        try {
          decoder.push(buffer.subarray(0, count), onPacket);
        } catch (cause) {
          decodeError = String(cause);
        }
      }
    }
  } catch (cause) {
    if (cause instanceof Deno.errors.ConnectionReset) ending = "reset";
    else if (
      cause instanceof Deno.errors.BadResource || cause instanceof Deno.errors.Interrupted
    ) {
      ending = "closed";
    } else throw cause;
  }
  return { types, error, afterError, ending, decodeError, bytes };
}
