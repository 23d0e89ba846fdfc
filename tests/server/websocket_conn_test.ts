/**
 * The WebSocket carrier on its own, over a real loopback connection: what
 * the session's read loop gets from it (the stream, filling a small buffer
 * once the link is busy so the loop moves to its large one), and the close
 * code each way of closing sends.
 */

import assert from "node:assert/strict";
import { Reason } from "../../protocol/reason.ts";
import { Logger } from "../../server/log.ts";
import { WebSocketCarrier } from "../../server/websocket_conn.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { concatBytes, pseudoRandomBytes } from "../_helpers/bytes.ts";
import { binaryMessage, clientFrame, upgradeHead } from "../_helpers/websocket_raw.ts";

/** A carrier over the relay end of a loopback connection, and the client end. */
async function carrierPair(): Promise<{ carrier: WebSocketCarrier; client: Deno.TcpConn }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const connecting = Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const accepted = await listener.accept();
    const client = await connecting;
    return { carrier: new WebSocketCarrier(accepted, "ws", new Logger("silent")), client };
  } finally {
    listener.close();
  }
}

/** Reads from `conn` until it ends; returns everything. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  for (let reads = 0; reads < 1024; reads++) {
    const count = await withTimeout(conn.read(buffer), STEP_MS, "the carrier's bytes");
    if (count === null) break;
    chunks.push(buffer.slice(0, count));
  }
  return concatBytes(chunks);
}

Deno.test("websocket conn: many small messages fill the read loop's small buffer, and the stream arrives whole", async () => {
  const { carrier, client } = await carrierPair();
  try {
    // 400 messages of 100 bytes behind the request head: every 512 bytes hold headers.
    const payloads = Array.from({ length: 400 }, (_, i) => pseudoRandomBytes(100, i + 1));
    await client.write(concatBytes([
      new TextEncoder().encode(upgradeHead(1)),
      ...payloads.map((payload) => binaryMessage(payload)),
    ]));
    const small = new Uint8Array(512);
    const received: Uint8Array[] = [];
    let filled = 0;
    for (
      let reads = 0;
      reads < 1000 && received.reduce((n, c) => n + c.length, 0) < 40_000;
      reads++
    ) {
      const count = await withTimeout(carrier.read(small), STEP_MS, "stream bytes");
      assert.ok(count !== null && count > 0);
      if (count === small.length) filled++;
      received.push(small.slice(0, count));
    }
    assert.deepEqual(concatBytes(received), concatBytes(payloads));
    assert.ok(filled >= 1, "no read filled the small buffer");
  } finally {
    await carrier.close(Reason.PeerDisconnected, "");
    client.close();
  }
});

Deno.test("websocket conn: the close code follows how the session closed", async (t) => {
  const cases: [string, Reason, string, number, string][] = [
    ["the client's own leaving", Reason.PeerDisconnected, "link closed", 1000, ""],
    [
      "an AlphaNET reason",
      Reason.Replaced,
      "a newer link took over",
      4007,
      "a newer link took over",
    ],
    ["a long reason", Reason.Internal, "é".repeat(100), 4018, "é".repeat(61)],
  ];
  for (const [name, reason, message, code, text] of cases) {
    await t.step(name, async () => {
      const { carrier, client } = await carrierPair();
      try {
        await client.write(new TextEncoder().encode(upgradeHead(1)));
        assert.equal(await carrier.open(), true);
        await carrier.close(reason, message);
        const bytes = await readToEnd(client);
        const head = new TextDecoder().decode(bytes).indexOf("\r\n\r\n") + 4;
        const frame = bytes.subarray(head);
        assert.equal(frame[0], 0x88, "a Close frame, unmasked, FIN");
        assert.equal(frame[1], frame.length - 2);
        assert.equal((frame[2] << 8) | frame[3], code);
        assert.equal(new TextDecoder("utf-8", { fatal: true }).decode(frame.subarray(4)), text);
      } finally {
        client.close();
      }
    });
  }
  await t.step("before the upgrade: a time-out is a 408, a client's leaving nothing", async () => {
    for (
      const [reason, expected] of [[Reason.HelloTimeout, /^HTTP\/1\.1 408 /], [
        Reason.PeerDisconnected,
        /^$/,
      ]] as const
    ) {
      const { carrier, client } = await carrierPair();
      try {
        await carrier.close(reason, "Cannot join: too slow");
        const text = new TextDecoder().decode(await readToEnd(client));
        assert.match(text, expected);
        // Writes after a close, or before an upgrade, go nowhere.
        assert.equal(await carrier.write(new Uint8Array(3)), 3);
      } finally {
        client.close();
      }
    }
  });
});

Deno.test("websocket conn: a flood of Pings comes back to the read loop as empty reads whose bytes are charged, not lost", async () => {
  const { carrier, client } = await carrierPair();
  try {
    await client.write(new TextEncoder().encode(upgradeHead(1)));
    const buffer = new Uint8Array(512);
    const first = carrier.read(buffer);
    // The 101 first, so the Pings arrive after the upgrade and not in its read.
    const response = new Uint8Array(1024);
    const got = await withTimeout(client.read(response), STEP_MS, "the 101");
    assert.match(new TextDecoder().decode(response.subarray(0, got ?? 0)), /^HTTP\/1\.1 101 /);
    const pongs = readToEnd(client);
    // 4,000 masked Pings of 8 bytes (14 bytes each on the wire) and nothing else: the read
    // loop must get control back (empty reads) so that the session can pace them.
    const pings = Array.from({ length: 4000 }, () => clientFrame(0x9, new Uint8Array(8)));
    await client.write(concatBytes(pings));
    let empty = 0;
    let charged = 0;
    let count: number | null = await withTimeout(first, STEP_MS, "a read");
    for (let reads = 0; reads < 1000 && count === 0; reads++) {
      empty++;
      charged += carrier.takeOverheadBytes();
      if (charged >= 4000 * 14 - 16 * 1024) break;
      count = await withTimeout(carrier.read(buffer), STEP_MS, "a read");
    }
    assert.equal(count, 0, "a read of Pings only returned stream bytes");
    assert.ok(empty >= 1, "no empty read for 56,000 bytes of Pings");
    // Then one stream byte: it arrives, and every byte before it was charged exactly once.
    await client.write(binaryMessage(new Uint8Array([42])));
    count = await withTimeout(carrier.read(buffer), STEP_MS, "the stream byte");
    assert.equal(count, 1);
    assert.equal(buffer[0], 42);
    charged += carrier.takeOverheadBytes();
    assert.equal(charged, 4000 * 14 + 6);
    await carrier.close(Reason.PeerDisconnected, "");
    await pongs;
  } finally {
    client.close();
  }
});
