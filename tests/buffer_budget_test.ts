/**
 * The relay's buffer budget against the memory exploit of issue 9, on the
 * real `server.ts`: a client connects to itself 12 times announcing 16 MiB
 * windows, sends all the credit it is given and never reads its socket.
 * The relay's RSS need not fall when it leaves (the batch-buffer pool keeps
 * up to 8 MiB for reuse, and V8 frees the rest at its next GC); what must
 * hold is that its share of the budget comes back, and that memory is reused
 * rather than piled up, round after round.
 */

import assert from "node:assert/strict";
import { encode, FrameDecoder, MAX_DATA_BYTES, PacketType } from "../protocol/mod.ts";
import type { Packet } from "../protocol/packets.ts";
import { MAX_WINDOW_BYTES } from "../protocol/constants.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { concatBytes } from "./_helpers/bytes.ts";
import { bareHandshake, type RawClient, rawClient } from "./_helpers/raw_client.ts";
import { rssKiB, type ServerProcess, startServer } from "./_helpers/server_process.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const SELF_CONNECTIONS = 12;
const PER_CLIENT_CEILING = 8 * MiB;
/** The floor every end keeps whatever the ceiling (`FLOOR_CREDIT_BYTES`). */
const FLOOR = 16 * KiB;
/**
 * What the relay's RSS may grow by beyond the data it holds: its read
 * buffers, the batch-buffer pool (up to 64 × 128 KiB kept for reuse), V8
 * heap and allocator noise. The same allowance as the slow consumer test's.
 */
const OVERHEAD = 16 * MiB;
/** The relay-wide ceiling: more than one client's, less than two. */
const RELAY_CEILING = 12 * MiB;
const ROUNDS = 3;

/**
 * A client that reads only while it sets up, then never again: frames are
 * read from its socket only when asked for.
 */
class NonReadingClient {
  readonly conn: Deno.TcpConn;
  readonly #decoder = new FrameDecoder();
  readonly #queue: Packet[] = [];
  readonly #buffer = new Uint8Array(64 * KiB);

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  async send(...packets: Packet[]): Promise<void> {
    const bytes = concatBytes(packets.map(encode));
    for (let written = 0; written < bytes.length;) {
      written += await this.conn.write(bytes.subarray(written));
    }
  }

  /** The next packet of `type`, skipping others (a keepalive Ping); read only now. */
  async expect<T extends Packet["type"]>(type: T): Promise<Extract<Packet, { type: T }>> {
    for (let reads = 0; reads < 1000; reads++) {
      const packet = this.#queue.shift();
      if (packet?.type === type) return packet as Extract<Packet, { type: T }>;
      if (packet) continue;
      const count = await withTimeout(this.conn.read(this.#buffer), STEP_MS, `packet ${type}`);
      assert.ok(count !== null, "the relay closed the link");
      this.#decoder.push(this.#buffer.subarray(0, count), (p) => this.#queue.push(p));
    }
    throw new Error(`no packet of type ${type}`);
  }
}

/** Ends of the self-connections and the credit the relay gave each. */
async function connectToSelf(
  client: NonReadingClient,
  address: number,
): Promise<Map<number, number>> {
  const credit = new Map<number, number>();
  for (let i = 0; i < SELF_CONNECTIONS; i++) {
    await client.send({
      type: PacketType.SocketConnectionRequest,
      requestId: i + 1,
      connectionId: 0,
      source: address,
      sourcePort: 50_000 + i,
      destination: address,
      destinationPort: 80,
      window: MAX_WINDOW_BYTES,
    });
    const asOwner = await client.expect(PacketType.SocketConnectionRequest);
    await client.send({
      type: PacketType.SocketConnectionResponse,
      requestId: asOwner.requestId,
      connectionId: asOwner.connectionId,
      accepted: true,
      window: MAX_WINDOW_BYTES,
    });
    const asRequester = await client.expect(PacketType.SocketConnectionResponse);
    assert.equal(asRequester.accepted, true);
    credit.set(asOwner.connectionId, asOwner.window);
    credit.set(asRequester.connectionId, asRequester.window);
  }
  return credit;
}

/**
 * One attack: a client joins, connects to itself, sends all its credit and
 * never reads, then leaves. Returns the credit it was given and how far the
 * relay's RSS was above `baselineKiB` while it held the data.
 */
async function attack(
  server: ServerProcess,
  witness: RawClient,
  baselineKiB: number,
): Promise<{ given: number; growthKiB: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const address = await bareHandshake(conn);
    const client = new NonReadingClient(conn);
    const credit = await connectToSelf(client, address);
    let given = 0;
    for (const bytes of credit.values()) given += bytes;
    for (const [connectionId, bytes] of credit) {
      for (let sent = 0; sent < bytes; sent += MAX_DATA_BYTES) {
        const payload = new Uint8Array(Math.min(MAX_DATA_BYTES, bytes - sent));
        await client.send({ type: PacketType.ArbitraryData, connectionId, payload });
      }
    }
    // The relay reads a link in order: once the witness sees this request, all the data
    // before it has been read and queued.
    await client.send({
      type: PacketType.SocketConnectionRequest,
      requestId: SELF_CONNECTIONS + 1,
      connectionId: 0,
      source: address,
      sourcePort: 60_000,
      destination: witness.address,
      destinationPort: 80,
      window: FLOOR,
    });
    const marker = await witness.expect(
      PacketType.SocketConnectionRequest,
      "the marker behind the data",
    );
    const growthKiB = (await rssKiB(server.pid)) - baselineKiB;
    // Accepted, so the witness hears when the client has left.
    await witness.send({
      type: PacketType.SocketConnectionResponse,
      requestId: marker.requestId,
      connectionId: marker.connectionId,
      accepted: true,
      window: FLOOR,
    });
    conn.close();
    const closed = await witness.expect(PacketType.SocketClosed, "the client to have left");
    assert.equal(closed.connectionId, marker.connectionId);
    return { given, growthKiB };
  } finally {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
}

Deno.test("12 self-connections announcing 16 MiB windows that never read stay within the per-client ceiling, round after round", async () => {
  const server = await startServer([
    "--port",
    "0",
    "--db",
    ":memory:",
    "--log-level",
    "silent",
    "--max-buffered-bytes-per-client",
    String(PER_CLIENT_CEILING),
    // Below two clients' ceilings: a share not returned at a leave would starve the next round.
    "--max-buffered-bytes",
    String(RELAY_CEILING),
  ]);
  const witness = await rawClient(server.port);
  try {
    await witness.handshake();
    const baselineKiB = await rssKiB(server.pid);
    for (let round = 1; round <= ROUNDS; round++) {
      const { given, growthKiB } = await attack(server, witness, baselineKiB);
      // The first end takes what fits (8 MiB), the 23 others their floor.
      assert.ok(
        given >= PER_CLIENT_CEILING && given <= PER_CLIENT_CEILING + 2 * SELF_CONNECTIONS * FLOOR,
        `round ${round}: the relay gave ${given} bytes of credit into one client`,
      );
      assert.ok(
        growthKiB * KiB < PER_CLIENT_CEILING + 2 * SELF_CONNECTIONS * FLOOR + OVERHEAD,
        `round ${round}: relay RSS grew by ${growthKiB} KiB for a client that never reads`,
      );
    }
  } finally {
    await witness.close();
    assert.equal(await server.stop(), 0);
  }
});
