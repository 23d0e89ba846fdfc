/** The first-bytes check that tells a TLS peer from an AlphaNET one. No I/O. */

import assert from "node:assert/strict";
import { encode, PacketType, PROTOCOL_VERSION, Reason } from "../../protocol/mod.ts";
import type { ByteSource } from "../../transport/read_loop.ts";
import { looksLikeTlsRecord, sniffFirstRead } from "../../transport/tls_sniff.ts";

const none = { permissions: "none" } as const;

/** A TLS 1.2/1.3 ClientHello record header as Deno's client sends it, and a server's alert. */
const CLIENT_HELLO = new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xd9, 0x01, 0x00, 0x00]);
const ALERT = new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);

/** Serves `chunks` one per read, then EOF; counts the reads. */
class Chunks implements ByteSource {
  reads = 0;
  constructor(readonly chunks: Uint8Array[]) {}
  read(buffer: Uint8Array): Promise<number | null> {
    this.reads++;
    const chunk = this.chunks.shift();
    if (chunk === undefined) return Promise.resolve(null);
    buffer.set(chunk);
    return Promise.resolve(chunk.length);
  }
}

Deno.test("looksLikeTlsRecord() knows a ClientHello and an alert", none, () => {
  assert.equal(looksLikeTlsRecord(CLIENT_HELLO), true);
  assert.equal(looksLikeTlsRecord(ALERT), true);
  assert.equal(looksLikeTlsRecord(CLIENT_HELLO.subarray(0, 2)), true);
});

Deno.test("looksLikeTlsRecord() never takes the first frame of either side for TLS", none, () => {
  const firstFrames = [
    encode({ type: PacketType.Hello, version: PROTOCOL_VERSION }),
    encode({
      type: PacketType.Challenge,
      relayId: new Uint8Array(32).fill(0x16),
      nonce: new Uint8Array(32).fill(0x03),
    }),
    encode({ type: PacketType.VirtualIP, address: 0x16030303 }),
    encode({ type: PacketType.Error, reason: Reason.ServerFull, message: "x".repeat(200) }),
  ];
  for (const frame of firstFrames) assert.equal(looksLikeTlsRecord(frame), false);
});

Deno.test("looksLikeTlsRecord() needs two bytes and the major version 3", none, () => {
  assert.equal(looksLikeTlsRecord(new Uint8Array([0x16])), false);
  assert.equal(looksLikeTlsRecord(new Uint8Array([0x16, 0x02])), false);
  assert.equal(looksLikeTlsRecord(new Uint8Array([0x13, 0x03])), false);
  assert.equal(looksLikeTlsRecord(new Uint8Array([0x18, 0x03])), false);
  assert.equal(looksLikeTlsRecord(new Uint8Array()), false);
});

Deno.test("sniffFirstRead() ends a link that opens with TLS and says so once", none, async () => {
  const conn = new Chunks([CLIENT_HELLO, new Uint8Array([0, 0])]);
  let calls = 0;
  const source = sniffFirstRead(conn, () => calls++);
  assert.equal(await source.read(new Uint8Array(512)), null);
  assert.equal(calls, 1);
});

Deno.test("sniffFirstRead() passes an AlphaNET link through and stops looking", none, async () => {
  const hello = encode({ type: PacketType.Hello, version: PROTOCOL_VERSION });
  const conn = new Chunks([hello, CLIENT_HELLO]);
  let calls = 0;
  const source = sniffFirstRead(conn, () => calls++);
  const first = source.read;
  const buffer = new Uint8Array(512);
  assert.equal(await source.read(buffer), hello.length);
  assert.deepEqual(buffer.subarray(0, hello.length), hello);
  assert.notEqual(source.read, first, "after the first read, read is the connection's own");
  // Later bytes that happen to look like TLS are data, not a verdict.
  assert.equal(await source.read(buffer), CLIENT_HELLO.length);
  assert.equal(await source.read(buffer), null);
  assert.equal(calls, 0);
  assert.equal(conn.reads, 3);
});

Deno.test("sniffFirstRead() passes an EOF before any byte through", none, async () => {
  let calls = 0;
  const source = sniffFirstRead(new Chunks([]), () => calls++);
  assert.equal(await source.read(new Uint8Array(16)), null);
  assert.equal(calls, 0);
});
