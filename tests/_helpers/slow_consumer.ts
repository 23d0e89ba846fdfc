/**
 * What the SlowConsumer tests send a client that has stopped reading: data
 * within its credit until the kernel's buffers towards it are full, then
 * control frames that pile up in the relay behind that data.
 */

import type { Packet } from "../../protocol/mod.ts";
import { PacketType } from "../../protocol/mod.ts";
import type { RawClient } from "./raw_client.ts";

/** Bytes of one data frame's payload: the largest a frame carries. */
const CHUNK_BYTES = 65_535;
/** Data frames per write. */
const FRAMES_PER_BATCH = 16;
/** Writes: 15 × 16 × 65,535 bytes is just under 15 MiB. */
const BATCHES = 15;

/**
 * Sends just under 15 MiB of data on `connectionId` from `feeder`, in 15
 * writes of 16 full frames: within a 16 MiB credit, and far more than Linux
 * loopback buffers towards a client that does not read (about 4 MiB), so the
 * rest waits in the relay.
 *
 * @returns The bytes of payload sent.
 */
export async function sendBacklog(feeder: RawClient, connectionId: number): Promise<number> {
  const payload = new Uint8Array(CHUNK_BYTES).fill(7);
  const frames: Packet[] = Array.from({ length: FRAMES_PER_BATCH }, () => ({
    type: PacketType.ArbitraryData,
    connectionId,
    payload,
  }));
  for (let batch = 0; batch < BATCHES; batch++) await feeder.send(...frames);
  return BATCHES * FRAMES_PER_BATCH * CHUNK_BYTES;
}

/**
 * SocketStatusRequests `1..count` from `source` about `destination`:80, each
 * a 19-byte frame: 250 of them pass a 4,096-byte control queue.
 */
export function statusRequests(source: number, destination: number, count: number): Packet[] {
  return Array.from({ length: count }, (_, i) => ({
    type: PacketType.SocketStatusRequest,
    requestId: i + 1,
    source,
    destination,
    destinationPort: 80,
  }));
}
