/**
 * The pure codec against golden bytes: every packet type's frame written out
 * byte by byte, round trips, partial input, and every malformed input the
 * decoder must refuse. Every test runs with `permissions: "none"`.
 */

import assert from "node:assert/strict";
import {
  decode,
  encode,
  encodedLength,
  encodeInto,
  FrameDecoder,
  MAX_DATA_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FRAME_BODY_BYTES,
  MAX_WINDOW_BYTES,
  MIN_WINDOW_BYTES,
  type Packet,
  PacketType,
  PROTOCOL_VERSION,
  ProtocolError,
  Reason,
} from "../../protocol/mod.ts";
import {
  checkFrameHeader,
  DATA_FRAME_OVERHEAD_BYTES,
  encodeDataHeader,
} from "../../protocol/codec.ts";

// ---------------------------------------------------------------- helpers

/** Replaces Uint8Array fields by plain arrays so packets compare by content. */
function plain(packet: Packet): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(packet).map((
      [key, value],
    ) => [key, value instanceof Uint8Array ? Array.from(value) : value]),
  );
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function range(length: number, start = 0): number[] {
  return Array.from({ length }, (_, i) => (start + i) & 0xff);
}

function u16(n: number): number[] {
  return [(n >>> 8) & 0xff, n & 0xff];
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** A frame built from its parts: length u32 of the body, type u8, body. */
function frame(type: number, body: number[]): Uint8Array {
  return Uint8Array.from([...u32(body.length), type, ...body]);
}

/** Asserts that `fn` throws a ProtocolError with reason Malformed. */
function assertMalformed(fn: () => unknown): void {
  let caught: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (error) {
    threw = true;
    caught = error;
  }
  assert.ok(threw, "expected a ProtocolError, nothing was thrown");
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError, got ${caught}`);
  assert.equal(caught.reason, Reason.Malformed);
}

/** Asserts that decode() and a FrameDecoder (whole and byte by byte) refuse `input`. */
function assertRejected(input: Uint8Array): void {
  assertMalformed(() => decode(input));
  assertMalformed(() => new FrameDecoder().push(input, () => {}));
  const decoder = new FrameDecoder();
  assertMalformed(() => {
    for (const byte of input) decoder.push(bytes(byte), () => {});
  });
}

/** Decodes `input` with a FrameDecoder, one byte at a time, copying the packets. */
function decodeByteByByte(input: Uint8Array): Record<string, unknown>[] {
  const decoder = new FrameDecoder();
  const packets: Record<string, unknown>[] = [];
  for (const byte of input) decoder.push(bytes(byte), (packet) => packets.push(plain(packet)));
  assert.equal(decoder.bufferedBytes, 0);
  return packets;
}

// ---------------------------------------------------------------- golden frames

interface Golden {
  readonly name: string;
  readonly packet: Packet;
  readonly frame: readonly number[];
}

const IDENTITY_16 = range(16);
const IDENTITY_256 = range(256, 0x80);

const GOLDEN: readonly Golden[] = [
  {
    name: "Hello without identity",
    packet: { type: PacketType.Hello, version: PROTOCOL_VERSION, identity: null },
    frame: [0x00, 0x00, 0x00, 0x04, 0x01, 0x00, 0x01, 0x00, 0x00],
  },
  {
    name: "Hello with a 16-byte identity",
    packet: { type: PacketType.Hello, version: 1, identity: Uint8Array.from(IDENTITY_16) },
    frame: [
      0x00,
      0x00,
      0x00,
      0x14,
      0x01, // length 20, type Hello
      0x00,
      0x01, // version 1
      0x00,
      0x10, // identity length 16
      0x00,
      0x01,
      0x02,
      0x03,
      0x04,
      0x05,
      0x06,
      0x07,
      0x08,
      0x09,
      0x0a,
      0x0b,
      0x0c,
      0x0d,
      0x0e,
      0x0f,
    ],
  },
  {
    name: "Hello with a 256-byte identity and version 0xabcd",
    packet: { type: PacketType.Hello, version: 0xabcd, identity: Uint8Array.from(IDENTITY_256) },
    frame: [0x00, 0x00, 0x01, 0x04, 0x01, 0xab, 0xcd, 0x01, 0x00, ...IDENTITY_256],
  },
  {
    name: "VirtualIP 10.0.0.1",
    packet: { type: PacketType.VirtualIP, address: 0x0a00_0001 },
    frame: [0x00, 0x00, 0x00, 0x04, 0x02, 0x0a, 0x00, 0x00, 0x01],
  },
  {
    name: "VirtualIP 255.255.255.255",
    packet: { type: PacketType.VirtualIP, address: 0xffff_ffff },
    frame: [0x00, 0x00, 0x00, 0x04, 0x02, 0xff, 0xff, 0xff, 0xff],
  },
  {
    name: "Error Offline with an ASCII message",
    packet: { type: PacketType.Error, reason: Reason.Offline, message: "hi" },
    frame: [0x00, 0x00, 0x00, 0x05, 0x03, 0x0c, 0x00, 0x02, 0x68, 0x69],
  },
  {
    name: "Error Normal with an empty message",
    packet: { type: PacketType.Error, reason: Reason.Normal, message: "" },
    frame: [0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x00],
  },
  {
    name: "Error ServerFull with a multi-byte UTF-8 message",
    packet: { type: PacketType.Error, reason: Reason.ServerFull, message: "é€😀" },
    frame: [
      0x00,
      0x00,
      0x00,
      0x0c,
      0x03, // length 12, type Error
      0x16, // reason 22
      0x00,
      0x09, // message length 9
      0xc3,
      0xa9, // é
      0xe2,
      0x82,
      0xac, // €
      0xf0,
      0x9f,
      0x98,
      0x80, // 😀
    ],
  },
  {
    name: "Error with a message that starts with a byte order mark",
    packet: { type: PacketType.Error, reason: Reason.Internal, message: "\uFEFFx" },
    frame: [0x00, 0x00, 0x00, 0x07, 0x03, 0x12, 0x00, 0x04, 0xef, 0xbb, 0xbf, 0x78],
  },
  {
    name: "Ping",
    packet: { type: PacketType.Ping, nonce: 0xdead_beef },
    frame: [0x00, 0x00, 0x00, 0x04, 0x04, 0xde, 0xad, 0xbe, 0xef],
  },
  {
    name: "Pong",
    packet: { type: PacketType.Pong, nonce: 1 },
    frame: [0x00, 0x00, 0x00, 0x04, 0x05, 0x00, 0x00, 0x00, 0x01],
  },
  {
    name: "SocketStatusRequest",
    packet: {
      type: PacketType.SocketStatusRequest,
      requestId: 0x0102_0304,
      source: 0x0a00_0001,
      destination: 0x0a00_0002,
      destinationPort: 80,
    },
    frame: [
      0x00,
      0x00,
      0x00,
      0x0e,
      0x10, // length 14, type SocketStatusRequest
      0x01,
      0x02,
      0x03,
      0x04, // request id
      0x0a,
      0x00,
      0x00,
      0x01, // source 10.0.0.1
      0x0a,
      0x00,
      0x00,
      0x02, // destination 10.0.0.2
      0x00,
      0x50, // port 80
    ],
  },
  {
    name: "SocketStatusResponse listening",
    packet: { type: PacketType.SocketStatusResponse, requestId: 7, listening: true },
    frame: [0x00, 0x00, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x07, 0x01],
  },
  {
    name: "SocketStatusResponse not listening",
    packet: { type: PacketType.SocketStatusResponse, requestId: 0xffff_fffe, listening: false },
    frame: [0x00, 0x00, 0x00, 0x05, 0x11, 0xff, 0xff, 0xff, 0xfe, 0x00],
  },
  {
    name: "SocketConnectionRequest",
    packet: {
      type: PacketType.SocketConnectionRequest,
      requestId: 7,
      connectionId: 0,
      source: 0x0a00_0001,
      sourcePort: 49_152,
      destination: 0x0a00_0002,
      destinationPort: 443,
      window: 262_144,
    },
    frame: [
      0x00,
      0x00,
      0x00,
      0x18,
      0x12, // length 24, type SocketConnectionRequest
      0x00,
      0x00,
      0x00,
      0x07, // request id 7
      0x00,
      0x00,
      0x00,
      0x00, // connection id 0
      0x0a,
      0x00,
      0x00,
      0x01, // source 10.0.0.1
      0xc0,
      0x00, // source port 49152
      0x0a,
      0x00,
      0x00,
      0x02, // destination 10.0.0.2
      0x01,
      0xbb, // destination port 443
      0x00,
      0x04,
      0x00,
      0x00, // window 262144
    ],
  },
  {
    name: "SocketConnectionResponse accepted",
    packet: {
      type: PacketType.SocketConnectionResponse,
      requestId: 7,
      connectionId: 0x1122_3344,
      accepted: true,
      window: 16_384,
    },
    frame: [
      0x00,
      0x00,
      0x00,
      0x0d,
      0x13, // length 13, type SocketConnectionResponse
      0x00,
      0x00,
      0x00,
      0x07, // request id 7
      0x11,
      0x22,
      0x33,
      0x44, // connection id
      0x01, // accepted
      0x00,
      0x00,
      0x40,
      0x00, // window 16384
    ],
  },
  {
    name: "SocketConnectionResponse denied",
    packet: {
      type: PacketType.SocketConnectionResponse,
      requestId: 8,
      connectionId: 0,
      accepted: false,
      window: 0,
    },
    frame: [
      0x00,
      0x00,
      0x00,
      0x0d,
      0x13,
      0x00,
      0x00,
      0x00,
      0x08,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
    ],
  },
  {
    name: "RequestFailed",
    packet: { type: PacketType.RequestFailed, requestId: 9, reason: Reason.Offline },
    frame: [0x00, 0x00, 0x00, 0x05, 0x14, 0x00, 0x00, 0x00, 0x09, 0x0c],
  },
  {
    name: "EchoRequest",
    packet: {
      type: PacketType.EchoRequest,
      requestId: 3,
      source: 0x01020304,
      destination: 0x05060708,
    },
    frame: [
      0x00,
      0x00,
      0x00,
      0x0c,
      0x15,
      0x00,
      0x00,
      0x00,
      0x03,
      0x01,
      0x02,
      0x03,
      0x04,
      0x05,
      0x06,
      0x07,
      0x08,
    ],
  },
  {
    name: "EchoReply",
    packet: { type: PacketType.EchoReply, requestId: 0x01020304 },
    frame: [0x00, 0x00, 0x00, 0x04, 0x16, 0x01, 0x02, 0x03, 0x04],
  },
  {
    name: "ArbitraryData with 3 bytes",
    packet: {
      type: PacketType.ArbitraryData,
      connectionId: 5,
      payload: bytes(0xaa, 0xbb, 0xcc),
    },
    frame: [0x00, 0x00, 0x00, 0x07, 0x20, 0x00, 0x00, 0x00, 0x05, 0xaa, 0xbb, 0xcc],
  },
  {
    name: "ArbitraryData with 1 byte",
    packet: { type: PacketType.ArbitraryData, connectionId: 0xffff_ffff, payload: bytes(0) },
    frame: [0x00, 0x00, 0x00, 0x05, 0x20, 0xff, 0xff, 0xff, 0xff, 0x00],
  },
  {
    name: "WindowUpdate",
    packet: { type: PacketType.WindowUpdate, connectionId: 5, increment: 65_536 },
    frame: [0x00, 0x00, 0x00, 0x08, 0x21, 0x00, 0x00, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00],
  },
  {
    name: "WindowUpdate with the largest increment",
    packet: { type: PacketType.WindowUpdate, connectionId: 1, increment: MAX_WINDOW_BYTES },
    frame: [0x00, 0x00, 0x00, 0x08, 0x21, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00],
  },
  {
    name: "SocketShutdown",
    packet: { type: PacketType.SocketShutdown, connectionId: 0xffff_ffff },
    frame: [0x00, 0x00, 0x00, 0x04, 0x22, 0xff, 0xff, 0xff, 0xff],
  },
  {
    name: "SocketClosed",
    packet: { type: PacketType.SocketClosed, connectionId: 5, reason: Reason.PeerDisconnected },
    frame: [0x00, 0x00, 0x00, 0x05, 0x23, 0x00, 0x00, 0x00, 0x05, 0x10],
  },
];

Deno.test({
  name: "the golden table covers every packet type",
  permissions: "none",
  fn(): void {
    const covered = new Set(GOLDEN.map((golden) => golden.packet.type));
    assert.deepEqual([...covered].sort((a, b) => a - b), Object.values(PacketType));
  },
});

Deno.test({
  name: "encode() writes the golden bytes of every packet type",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const golden of GOLDEN) {
      await t.step(golden.name, () => {
        assert.deepEqual(encode(golden.packet), Uint8Array.from(golden.frame));
        assert.equal(encodedLength(golden.packet), golden.frame.length);
      });
    }
  },
});

Deno.test({
  name: "decode() reads the golden bytes of every packet type",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const golden of GOLDEN) {
      await t.step(golden.name, () => {
        const decoded = decode(Uint8Array.from(golden.frame));
        assert.ok(decoded !== null);
        assert.equal(decoded.bytesUsed, golden.frame.length);
        assert.deepEqual(plain(decoded.packet), plain(golden.packet));
      });
    }
  },
});

Deno.test({
  name: "decode(encode(p)) returns p for every packet type",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const golden of GOLDEN) {
      await t.step(golden.name, () => {
        const encoded = encode(golden.packet);
        const decoded = decode(encoded);
        assert.ok(decoded !== null);
        assert.equal(decoded.bytesUsed, encoded.length);
        assert.deepEqual(plain(decoded.packet), plain(golden.packet));
        assert.deepEqual(encode(decoded.packet), encoded);
      });
    }
  },
});

Deno.test({
  name: "decode() returns null for every proper prefix of a frame",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const golden of GOLDEN) {
      await t.step(golden.name, () => {
        const full = Uint8Array.from(golden.frame);
        for (let length = 0; length < full.length; length++) {
          assert.equal(decode(full.subarray(0, length)), null, `prefix of ${length} bytes`);
        }
      });
    }
  },
});

Deno.test({
  name: "decode() returns null on a partial header",
  permissions: "none",
  fn(): void {
    assert.equal(decode(new Uint8Array(0)), null);
    assert.equal(decode(bytes(0xff)), null);
    assert.equal(decode(bytes(0xff, 0xff, 0xff, 0xff)), null);
  },
});

Deno.test({
  name: "decode() uses only the first frame and reports its size",
  permissions: "none",
  fn(): void {
    const first = encode({ type: PacketType.Ping, nonce: 1 });
    const second = encode({ type: PacketType.Pong, nonce: 2 });
    const both = new Uint8Array(first.length + second.length);
    both.set(first);
    both.set(second, first.length);
    const decoded = decode(both);
    assert.ok(decoded !== null);
    assert.equal(decoded.bytesUsed, first.length);
    assert.deepEqual(decoded.packet, { type: PacketType.Ping, nonce: 1 });
    const rest = decode(both.subarray(decoded.bytesUsed));
    assert.ok(rest !== null);
    assert.deepEqual(rest.packet, { type: PacketType.Pong, nonce: 2 });
  },
});

Deno.test({
  name: "decode() reads a frame from a view with a nonzero byte offset",
  permissions: "none",
  fn(): void {
    const encoded = encode({ type: PacketType.WindowUpdate, connectionId: 3, increment: 99 });
    const backing = new Uint8Array(encoded.length + 7).fill(0xee);
    backing.set(encoded, 3);
    const decoded = decode(backing.subarray(3, 3 + encoded.length));
    assert.ok(decoded !== null);
    assert.deepEqual(decoded.packet, {
      type: PacketType.WindowUpdate,
      connectionId: 3,
      increment: 99,
    });
  },
});

Deno.test({
  name: "decode() returns byte fields as views into its input",
  permissions: "none",
  fn(): void {
    const input = encode({ type: PacketType.ArbitraryData, connectionId: 1, payload: bytes(1, 2) });
    const decoded = decode(input);
    assert.ok(decoded !== null && decoded.packet.type === PacketType.ArbitraryData);
    assert.equal(decoded.packet.payload.buffer, input.buffer);
    assert.equal(decoded.packet.payload.byteOffset, input.byteOffset + DATA_FRAME_OVERHEAD_BYTES);
  },
});

Deno.test({
  name: "a FrameDecoder fed one byte at a time yields every golden packet in order",
  permissions: "none",
  fn(): void {
    const all = GOLDEN.flatMap((golden) => golden.frame);
    assert.deepEqual(
      decodeByteByByte(Uint8Array.from(all)),
      GOLDEN.map((golden) => plain(golden.packet)),
    );
  },
});

Deno.test({
  name: "a FrameDecoder fed one big chunk yields every golden packet in order",
  permissions: "none",
  fn(): void {
    const all = Uint8Array.from(GOLDEN.flatMap((golden) => golden.frame));
    const decoder = new FrameDecoder();
    const packets: Record<string, unknown>[] = [];
    decoder.push(all, (packet) => packets.push(plain(packet)));
    assert.equal(decoder.bufferedBytes, 0);
    assert.deepEqual(packets, GOLDEN.map((golden) => plain(golden.packet)));
  },
});

Deno.test({
  name: "a FrameDecoder reports the bytes it holds of an incomplete frame",
  permissions: "none",
  fn(): void {
    const encoded = encode({ type: PacketType.Ping, nonce: 5 });
    const decoder = new FrameDecoder();
    const packets: Packet[] = [];
    decoder.push(encoded.subarray(0, 3), (packet) => packets.push(packet));
    assert.equal(decoder.bufferedBytes, 3);
    decoder.push(encoded.subarray(3, 7), (packet) => packets.push(packet));
    assert.equal(decoder.bufferedBytes, 7);
    decoder.push(encoded.subarray(7), (packet) => packets.push(packet));
    assert.equal(decoder.bufferedBytes, 0);
    assert.deepEqual(packets, [{ type: PacketType.Ping, nonce: 5 }]);
    decoder.releaseIdleBuffer();
    assert.equal(decoder.bufferedBytes, 0);
  },
});

Deno.test({
  name: "the largest data frame round trips through decode() and a FrameDecoder",
  permissions: "none",
  fn(): void {
    const payload = Uint8Array.from(range(MAX_DATA_BYTES, 3));
    const packet: Packet = { type: PacketType.ArbitraryData, connectionId: 42, payload };
    const encoded = encode(packet);
    assert.equal(encoded.length, DATA_FRAME_OVERHEAD_BYTES + MAX_DATA_BYTES);
    assert.deepEqual(Array.from(encoded.subarray(0, 9)), [0, 1, 0, 3, 0x20, 0, 0, 0, 42]);
    const decoded = decode(encoded);
    assert.ok(decoded !== null);
    assert.deepEqual(plain(decoded.packet), plain(packet));
    const decoder = new FrameDecoder();
    const packets: Record<string, unknown>[] = [];
    for (let at = 0; at < encoded.length; at += 1000) {
      decoder.push(encoded.subarray(at, at + 1000), (p) => packets.push(plain(p)));
    }
    assert.deepEqual(packets, [plain(packet)]);
  },
});

Deno.test({
  name: "an Error message of exactly MAX_ERROR_MESSAGE_BYTES round trips",
  permissions: "none",
  fn(): void {
    const message = "€".repeat(MAX_ERROR_MESSAGE_BYTES / 4) +
      "abcd".repeat(MAX_ERROR_MESSAGE_BYTES / 16);
    assert.equal(new TextEncoder().encode(message).length, MAX_ERROR_MESSAGE_BYTES);
    const packet: Packet = { type: PacketType.Error, reason: Reason.Internal, message };
    const decoded = decode(encode(packet));
    assert.ok(decoded !== null);
    assert.deepEqual(decoded.packet, packet);
  },
});

// ---------------------------------------------------------------- malformed input

const FIXED_BODY_BYTES: readonly [string, number, number][] = [
  ["VirtualIP", PacketType.VirtualIP, 4],
  ["Ping", PacketType.Ping, 4],
  ["Pong", PacketType.Pong, 4],
  ["SocketStatusRequest", PacketType.SocketStatusRequest, 14],
  ["SocketStatusResponse", PacketType.SocketStatusResponse, 5],
  ["SocketConnectionRequest", PacketType.SocketConnectionRequest, 24],
  ["SocketConnectionResponse", PacketType.SocketConnectionResponse, 13],
  ["RequestFailed", PacketType.RequestFailed, 5],
  ["EchoRequest", PacketType.EchoRequest, 12],
  ["EchoReply", PacketType.EchoReply, 4],
  ["WindowUpdate", PacketType.WindowUpdate, 8],
  ["SocketShutdown", PacketType.SocketShutdown, 4],
  ["SocketClosed", PacketType.SocketClosed, 5],
];

Deno.test({
  name: "decode() throws ProtocolError on an unknown type from the header alone",
  permissions: "none",
  async fn(t): Promise<void> {
    const known = new Set<number>(Object.values(PacketType));
    const unknown = range(256).filter((type) => !known.has(type));
    assert.equal(unknown.length, 256 - 16);
    for (const type of [0x00, 0x06, 0x0f, 0x17, 0x1f, 0x24, 0x7f, 0x80, 0xff]) {
      await t.step(`type 0x${type.toString(16)}`, () => {
        assertRejected(bytes(0, 0, 0, 0, type));
        assertRejected(bytes(0, 0, 0, 4, type));
      });
    }
    await t.step("every unknown type", () => {
      for (const type of unknown) assertMalformed(() => decode(bytes(0, 0, 0, 4, type)));
    });
  },
});

Deno.test({
  name: "decode() throws ProtocolError on a fixed-size packet with the wrong length",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const [name, type, size] of FIXED_BODY_BYTES) {
      await t.step(name, () => {
        for (const length of [0, size - 1, size + 1, 0xffff, 0xffff_ffff]) {
          // The header alone is enough to refuse it.
          assertRejected(Uint8Array.from([...u32(length), type]));
        }
        // And with a body of the wrong size present in full.
        assertRejected(frame(type, range(size - 1)));
        assertRejected(frame(type, range(size + 1)));
      });
    }
  },
});

Deno.test({
  name: "decode() throws ProtocolError on a data frame with a 0-byte payload",
  permissions: "none",
  fn(): void {
    assertRejected(bytes(0, 0, 0, 4, PacketType.ArbitraryData));
    assertRejected(frame(PacketType.ArbitraryData, [0, 0, 0, 1]));
    for (const length of [0, 1, 2, 3]) {
      assertRejected(Uint8Array.from([...u32(length), PacketType.ArbitraryData]));
    }
  },
});

Deno.test({
  name:
    "decode() throws ProtocolError on a data body over MAX_FRAME_BODY_BYTES from the header alone",
  permissions: "none",
  fn(): void {
    for (const length of [MAX_FRAME_BODY_BYTES + 1, 0x0100_0000, 0xffff_ffff]) {
      const header = Uint8Array.from([...u32(length), PacketType.ArbitraryData]);
      assert.equal(header.length, 5);
      assertRejected(header);
    }
    assert.deepEqual(Array.from(u32(MAX_FRAME_BODY_BYTES + 1)), [0x00, 0x01, 0x00, 0x04]);
    // The largest allowed body is not refused from its header: more bytes are needed.
    assert.equal(decode(Uint8Array.from([...u32(MAX_FRAME_BODY_BYTES), 0x20])), null);
  },
});

Deno.test({
  name: "decode() throws ProtocolError on a malformed Hello",
  permissions: "none",
  async fn(t): Promise<void> {
    await t.step("identity length longer than the body", () => {
      assertRejected(frame(PacketType.Hello, [0, 1, ...u16(20), ...range(16)]));
    });
    await t.step("identity length shorter than the body", () => {
      assertRejected(frame(PacketType.Hello, [0, 1, ...u16(16), ...range(17)]));
    });
    await t.step("identity length 0 with trailing bytes", () => {
      assertRejected(frame(PacketType.Hello, [0, 1, 0, 0, ...range(16)]));
    });
    for (let n = 1; n < 16; n++) {
      await t.step(`identity of ${n} bytes`, () => {
        assertRejected(frame(PacketType.Hello, [0, 1, ...u16(n), ...range(n)]));
      });
    }
    for (const n of [257, 300, 0xffff]) {
      await t.step(`identity of ${n} bytes, refused from the header alone`, () => {
        assertRejected(Uint8Array.from([...u32(4 + n), PacketType.Hello]));
      });
    }
    await t.step("identity of 257 bytes in full", () => {
      assertRejected(frame(PacketType.Hello, [0, 1, ...u16(257), ...range(257)]));
    });
    for (const length of [0, 1, 2, 3]) {
      await t.step(`body of ${length} bytes`, () => {
        assertRejected(Uint8Array.from([...u32(length), PacketType.Hello]));
      });
    }
  },
});

Deno.test({
  name: "decode() throws ProtocolError on a bool field that is neither 0 nor 1",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const value of [2, 0x80, 0xff]) {
      await t.step(`SocketStatusResponse listening = ${value}`, () => {
        assertRejected(frame(PacketType.SocketStatusResponse, [...u32(1), value]));
      });
      await t.step(`SocketConnectionResponse accepted = ${value}`, () => {
        assertRejected(
          frame(PacketType.SocketConnectionResponse, [...u32(1), ...u32(1), value, ...u32(16_384)]),
        );
      });
    }
  },
});

Deno.test({
  name: "decode() throws ProtocolError on an unknown reason code",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const reason of [23, 99, 0xff]) {
      await t.step(`Error reason ${reason}`, () => {
        assertRejected(frame(PacketType.Error, [reason, 0, 0]));
      });
      await t.step(`RequestFailed reason ${reason}`, () => {
        assertRejected(frame(PacketType.RequestFailed, [...u32(1), reason]));
      });
      await t.step(`SocketClosed reason ${reason}`, () => {
        assertRejected(frame(PacketType.SocketClosed, [...u32(1), reason]));
      });
    }
  },
});

Deno.test({
  name: "decode() throws ProtocolError on port 0",
  permissions: "none",
  async fn(t): Promise<void> {
    const ip = u32(0x0a00_0001);
    await t.step("SocketStatusRequest destination port", () => {
      assertRejected(frame(PacketType.SocketStatusRequest, [...u32(1), ...ip, ...ip, 0, 0]));
    });
    await t.step("SocketConnectionRequest source port", () => {
      assertRejected(
        frame(PacketType.SocketConnectionRequest, [
          ...u32(1),
          ...u32(0),
          ...ip,
          0,
          0,
          ...ip,
          ...u16(80),
          ...u32(MIN_WINDOW_BYTES),
        ]),
      );
    });
    await t.step("SocketConnectionRequest destination port", () => {
      assertRejected(
        frame(PacketType.SocketConnectionRequest, [
          ...u32(1),
          ...u32(0),
          ...ip,
          ...u16(50_000),
          ...ip,
          0,
          0,
          ...u32(MIN_WINDOW_BYTES),
        ]),
      );
    });
  },
});

Deno.test({
  name: "decode() throws ProtocolError on a window outside MIN_WINDOW_BYTES..MAX_WINDOW_BYTES",
  permissions: "none",
  async fn(t): Promise<void> {
    const ip = u32(0x0a00_0001);
    const request = (window: number) =>
      frame(PacketType.SocketConnectionRequest, [
        ...u32(1),
        ...u32(0),
        ...ip,
        ...u16(50_000),
        ...ip,
        ...u16(80),
        ...u32(window),
      ]);
    const response = (window: number) =>
      frame(PacketType.SocketConnectionResponse, [...u32(1), ...u32(2), 1, ...u32(window)]);
    for (const window of [0, 1, MIN_WINDOW_BYTES - 1, MAX_WINDOW_BYTES + 1, 0xffff_ffff]) {
      await t.step(`SocketConnectionRequest window ${window}`, () => {
        assertRejected(request(window));
      });
      await t.step(`accepted SocketConnectionResponse window ${window}`, () => {
        assertRejected(response(window));
      });
    }
    await t.step("the bounds themselves are accepted", () => {
      for (const window of [MIN_WINDOW_BYTES, MAX_WINDOW_BYTES]) {
        assert.ok(decode(request(window)) !== null);
        assert.ok(decode(response(window)) !== null);
      }
    });
  },
});

Deno.test({
  name: "decode() throws ProtocolError on a denied response with a nonzero window",
  permissions: "none",
  fn(): void {
    for (const window of [1, MIN_WINDOW_BYTES, 0xffff_ffff]) {
      assertRejected(
        frame(PacketType.SocketConnectionResponse, [...u32(1), ...u32(0), 0, ...u32(window)]),
      );
    }
  },
});

Deno.test({
  name: "decode() throws ProtocolError on a WindowUpdate increment outside 1..MAX_WINDOW_BYTES",
  permissions: "none",
  fn(): void {
    for (const increment of [0, MAX_WINDOW_BYTES + 1, 0xffff_ffff]) {
      assertRejected(frame(PacketType.WindowUpdate, [...u32(1), ...u32(increment)]));
    }
  },
});

Deno.test({
  name: "decode() throws ProtocolError on a malformed Error frame",
  permissions: "none",
  async fn(t): Promise<void> {
    const invalidUtf8: [string, number[]][] = [
      ["a lone continuation byte", [0x80]],
      ["byte 0xff", [0xff]],
      ["a truncated 2-byte sequence", [0xc3]],
      ["a truncated 3-byte sequence", [0x61, 0xe2, 0x82]],
      ["an overlong NUL", [0xc0, 0x80]],
      ["an encoded surrogate", [0xed, 0xa0, 0x80]],
      ["a code point above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
    ];
    for (const [name, message] of invalidUtf8) {
      await t.step(`invalid UTF-8: ${name}`, () => {
        assertRejected(
          frame(PacketType.Error, [Reason.Normal, ...u16(message.length), ...message]),
        );
      });
    }
    await t.step("message length longer than the body", () => {
      assertRejected(frame(PacketType.Error, [Reason.Normal, ...u16(3), 0x61, 0x62]));
    });
    await t.step("message length shorter than the body", () => {
      assertRejected(frame(PacketType.Error, [Reason.Normal, ...u16(1), 0x61, 0x62]));
    });
    await t.step("message over MAX_ERROR_MESSAGE_BYTES, refused from the header alone", () => {
      assertRejected(Uint8Array.from([...u32(3 + MAX_ERROR_MESSAGE_BYTES + 1), PacketType.Error]));
    });
    for (const length of [0, 1, 2]) {
      await t.step(`body of ${length} bytes`, () => {
        assertRejected(Uint8Array.from([...u32(length), PacketType.Error]));
      });
    }
  },
});

Deno.test({
  name: "checkFrameHeader() accepts every possible length and refuses the rest",
  permissions: "none",
  async fn(t): Promise<void> {
    await t.step("fixed-size types", () => {
      for (const [, type, size] of FIXED_BODY_BYTES) {
        checkFrameHeader(type, size);
        assertMalformed(() => checkFrameHeader(type, size + 1));
      }
    });
    await t.step("variable-size types at their bounds", () => {
      checkFrameHeader(PacketType.Hello, 4);
      checkFrameHeader(PacketType.Hello, 4 + 256);
      assertMalformed(() => checkFrameHeader(PacketType.Hello, 3));
      assertMalformed(() => checkFrameHeader(PacketType.Hello, 4 + 257));
      checkFrameHeader(PacketType.Error, 3);
      checkFrameHeader(PacketType.Error, 3 + MAX_ERROR_MESSAGE_BYTES);
      assertMalformed(() => checkFrameHeader(PacketType.Error, 2));
      assertMalformed(() => checkFrameHeader(PacketType.Error, 3 + MAX_ERROR_MESSAGE_BYTES + 1));
      checkFrameHeader(PacketType.ArbitraryData, 5);
      checkFrameHeader(PacketType.ArbitraryData, MAX_FRAME_BODY_BYTES);
      assertMalformed(() => checkFrameHeader(PacketType.ArbitraryData, 4));
      assertMalformed(() => checkFrameHeader(PacketType.ArbitraryData, MAX_FRAME_BODY_BYTES + 1));
    });
    await t.step("unknown types", () => {
      assertMalformed(() => checkFrameHeader(0x00, 4));
      assertMalformed(() => checkFrameHeader(0xff, 4));
    });
  },
});

// ---------------------------------------------------------------- encode range checks

const IP = 0x0a00_0001;

const OUT_OF_RANGE: readonly [string, Packet][] = [
  ["Hello version 0x10000", { type: PacketType.Hello, version: 0x1_0000, identity: null }],
  ["Hello version -1", { type: PacketType.Hello, version: -1, identity: null }],
  ["Hello empty identity", { type: PacketType.Hello, version: 1, identity: new Uint8Array(0) }],
  ["Hello 15-byte identity", { type: PacketType.Hello, version: 1, identity: new Uint8Array(15) }],
  ["Hello 257-byte identity", {
    type: PacketType.Hello,
    version: 1,
    identity: new Uint8Array(257),
  }],
  ["VirtualIP 2**32", { type: PacketType.VirtualIP, address: 2 ** 32 }],
  ["VirtualIP -1", { type: PacketType.VirtualIP, address: -1 }],
  ["Error unknown reason", { type: PacketType.Error, reason: 23 as Reason, message: "" }],
  ["Error message of 1025 bytes", {
    type: PacketType.Error,
    reason: Reason.Normal,
    message: "x".repeat(MAX_ERROR_MESSAGE_BYTES + 1),
  }],
  ["Ping nonce 1.5", { type: PacketType.Ping, nonce: 1.5 }],
  ["Pong nonce NaN", { type: PacketType.Pong, nonce: NaN }],
  ["SocketStatusRequest port 70000", {
    type: PacketType.SocketStatusRequest,
    requestId: 1,
    source: IP,
    destination: IP,
    destinationPort: 70_000,
  }],
  ["SocketStatusRequest port 0", {
    type: PacketType.SocketStatusRequest,
    requestId: 1,
    source: IP,
    destination: IP,
    destinationPort: 0,
  }],
  ["SocketStatusRequest negative request id", {
    type: PacketType.SocketStatusRequest,
    requestId: -1,
    source: IP,
    destination: IP,
    destinationPort: 80,
  }],
  ["SocketStatusRequest source 2**32", {
    type: PacketType.SocketStatusRequest,
    requestId: 1,
    source: 2 ** 32,
    destination: IP,
    destinationPort: 80,
  }],
  ["SocketStatusResponse negative request id", {
    type: PacketType.SocketStatusResponse,
    requestId: -1,
    listening: true,
  }],
  ["SocketStatusResponse request id 2**32", {
    type: PacketType.SocketStatusResponse,
    requestId: 2 ** 32,
    listening: true,
  }],
  ["SocketConnectionRequest source port 70000", {
    type: PacketType.SocketConnectionRequest,
    requestId: 1,
    connectionId: 0,
    source: IP,
    sourcePort: 70_000,
    destination: IP,
    destinationPort: 80,
    window: MIN_WINDOW_BYTES,
  }],
  ["SocketConnectionRequest window below the minimum", {
    type: PacketType.SocketConnectionRequest,
    requestId: 1,
    connectionId: 0,
    source: IP,
    sourcePort: 50_000,
    destination: IP,
    destinationPort: 80,
    window: MIN_WINDOW_BYTES - 1,
  }],
  ["SocketConnectionRequest window above the maximum", {
    type: PacketType.SocketConnectionRequest,
    requestId: 1,
    connectionId: 0,
    source: IP,
    sourcePort: 50_000,
    destination: IP,
    destinationPort: 80,
    window: MAX_WINDOW_BYTES + 1,
  }],
  ["SocketConnectionResponse denied with a window", {
    type: PacketType.SocketConnectionResponse,
    requestId: 1,
    connectionId: 0,
    accepted: false,
    window: MIN_WINDOW_BYTES,
  }],
  ["SocketConnectionResponse accepted with window 0", {
    type: PacketType.SocketConnectionResponse,
    requestId: 1,
    connectionId: 1,
    accepted: true,
    window: 0,
  }],
  ["RequestFailed unknown reason", {
    type: PacketType.RequestFailed,
    requestId: 1,
    reason: 99 as Reason,
  }],
  ["ArbitraryData payload of 65536 bytes", {
    type: PacketType.ArbitraryData,
    connectionId: 1,
    payload: new Uint8Array(MAX_DATA_BYTES + 1),
  }],
  ["ArbitraryData empty payload", {
    type: PacketType.ArbitraryData,
    connectionId: 1,
    payload: new Uint8Array(0),
  }],
  ["ArbitraryData connection id -1", {
    type: PacketType.ArbitraryData,
    connectionId: -1,
    payload: bytes(1),
  }],
  ["WindowUpdate increment 0", { type: PacketType.WindowUpdate, connectionId: 1, increment: 0 }],
  ["WindowUpdate increment above the maximum", {
    type: PacketType.WindowUpdate,
    connectionId: 1,
    increment: MAX_WINDOW_BYTES + 1,
  }],
  ["SocketShutdown connection id 2**32", {
    type: PacketType.SocketShutdown,
    connectionId: 2 ** 32,
  }],
  ["SocketClosed unknown reason", {
    type: PacketType.SocketClosed,
    connectionId: 1,
    reason: 23 as Reason,
  }],
];

Deno.test({
  name: "encode() throws RangeError on out-of-range fields",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const [name, packet] of OUT_OF_RANGE) {
      await t.step(name, () => {
        assert.throws(() => encode(packet), RangeError);
        assert.throws(() => encodeInto(packet, new Uint8Array(70_000), 0), RangeError);
      });
    }
  },
});

Deno.test({
  name: "encodeInto() writes a frame at an offset and touches nothing else",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const golden of GOLDEN) {
      await t.step(golden.name, () => {
        const target = new Uint8Array(golden.frame.length + 10).fill(0xee);
        const used = encodeInto(golden.packet, target, 3);
        assert.equal(used, golden.frame.length);
        assert.deepEqual(Array.from(target.subarray(0, 3)), [0xee, 0xee, 0xee]);
        assert.deepEqual(Array.from(target.subarray(3, 3 + used)), golden.frame);
        assert.deepEqual(Array.from(target.subarray(3 + used)), new Array(7).fill(0xee));
      });
    }
  },
});

Deno.test({
  name: "encodeInto() writes into a view with a nonzero byte offset",
  permissions: "none",
  fn(): void {
    const backing = new Uint8Array(32).fill(0xee);
    const view = backing.subarray(5, 20);
    const used = encodeInto({ type: PacketType.Ping, nonce: 0x0102_0304 }, view, 2);
    assert.equal(used, 9);
    assert.deepEqual(Array.from(backing.subarray(0, 7)), new Array(7).fill(0xee));
    assert.deepEqual(Array.from(backing.subarray(7, 16)), [0, 0, 0, 4, 4, 1, 2, 3, 4]);
    assert.deepEqual(Array.from(backing.subarray(16)), new Array(16).fill(0xee));
  },
});

Deno.test({
  name: "encodeInto() fills a target of exactly the frame's size",
  permissions: "none",
  fn(): void {
    const packet: Packet = { type: PacketType.Pong, nonce: 7 };
    const target = new Uint8Array(12);
    assert.equal(encodeInto(packet, target, 3), 9);
    assert.deepEqual(Array.from(target), [0, 0, 0, 0, 0, 0, 4, 5, 0, 0, 0, 7]);
  },
});

Deno.test({
  name: "encodeInto() throws RangeError when the target is too small and writes nothing",
  permissions: "none",
  async fn(t): Promise<void> {
    const packet: Packet = { type: PacketType.Ping, nonce: 1 };
    const cases: [string, number, number][] = [
      ["empty target", 0, 0],
      ["one byte short", 8, 0],
      ["fits at 0 but not at the offset", 12, 4],
      ["offset past the end", 9, 10],
      ["negative offset", 20, -1],
    ];
    for (const [name, size, offset] of cases) {
      await t.step(name, () => {
        const target = new Uint8Array(size).fill(0xee);
        assert.throws(() => encodeInto(packet, target, offset), RangeError);
        assert.ok(target.every((byte) => byte === 0xee));
      });
    }
    await t.step("a large data frame into a small buffer", () => {
      const data: Packet = {
        type: PacketType.ArbitraryData,
        connectionId: 1,
        payload: new Uint8Array(100),
      };
      assert.throws(() => encodeInto(data, new Uint8Array(108), 0), RangeError);
      assert.equal(encodeInto(data, new Uint8Array(109), 0), 109);
    });
  },
});

Deno.test({
  name: "encodeDataHeader() plus a payload copy equals encode() of the same data packet",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const length of [1, 2, 3, 255, 256, 4096, MAX_DATA_BYTES]) {
      await t.step(`payload of ${length} bytes`, () => {
        const payload = Uint8Array.from(range(length, 7));
        const connectionId = 0x8000_0000 + length;
        const expected = encode({ type: PacketType.ArbitraryData, connectionId, payload });
        const target = new Uint8Array(DATA_FRAME_OVERHEAD_BYTES + length);
        const used = encodeDataHeader(target, 0, connectionId, length);
        assert.equal(used, DATA_FRAME_OVERHEAD_BYTES);
        target.set(payload, used);
        assert.deepEqual(target, expected);
      });
    }
    await t.step("at an offset inside a larger buffer", () => {
      const payload = bytes(9, 8, 7);
      const expected = encode({ type: PacketType.ArbitraryData, connectionId: 5, payload });
      const backing = new Uint8Array(40).fill(0xee);
      const target = backing.subarray(4);
      const used = encodeDataHeader(target, 10, 5, payload.length);
      target.set(payload, 10 + used);
      assert.deepEqual(target.subarray(10, 10 + expected.length), expected);
      assert.ok(backing.subarray(0, 14).every((byte) => byte === 0xee));
      assert.ok(backing.subarray(14 + expected.length).every((byte) => byte === 0xee));
    });
  },
});

Deno.test({
  name: "encodeDataHeader() throws RangeError on a payload length outside 1..MAX_DATA_BYTES",
  permissions: "none",
  fn(): void {
    const target = new Uint8Array(MAX_DATA_BYTES + 100);
    for (const length of [0, -1, MAX_DATA_BYTES + 1]) {
      assert.throws(() => encodeDataHeader(target, 0, 1, length), RangeError);
    }
  },
});
