/**
 * The pure codec against golden bytes: every packet type's frame written out
 * in hex, round trips, partial input, and every malformed input the decoder
 * must refuse. Every test runs with `permissions: "none"`, which proves the
 * codec does no I/O.
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
  type SocketConnectionRequestPacket,
  type SocketStatusRequestPacket,
} from "../../protocol/mod.ts";
import {
  checkFrameHeader,
  DATA_FRAME_OVERHEAD_BYTES,
  encodeDataHeader,
} from "../../protocol/codec.ts";

// ---------------------------------------------------------------- helpers

/** A codec test: no permissions at all. */
function codecTest(name: string, fn: (t: Deno.TestContext) => void | Promise<void>): void {
  Deno.test({ name, permissions: "none", fn });
}

/**
 * Bytes from hex written the way frames read: fields separated by spaces,
 * two lowercase digits a byte (`"00000004 04 deadbeef"`). Anything else
 * throws, so a typo in a frame fails loudly instead of testing other bytes.
 */
function hex(text: string): Uint8Array {
  const fields = text.split(" ").filter((field) => field !== "");
  const out: number[] = [];
  for (const field of fields) {
    if (!/^(?:[0-9a-f]{2})+$/.test(field)) {
      throw new Error(
        `Cannot parse hex: field ${JSON.stringify(field)} in ${JSON.stringify(text)}`,
      );
    }
    for (let i = 0; i < field.length; i += 2) out.push(parseInt(field.slice(i, i + 2), 16));
  }
  return Uint8Array.from(out);
}

/** `n` as a hex field of `digits` digits; throws if it does not fit. */
function field(n: number, digits: number): string {
  if (!Number.isInteger(n) || n < 0 || n >= 16 ** digits) {
    throw new RangeError(`Cannot write ${n} as ${digits} hex digits`);
  }
  return n.toString(16).padStart(digits, "0");
}

function u8(n: number): string {
  return field(n, 2);
}

function u16(n: number): string {
  return field(n, 4);
}

function u32(n: number): string {
  return field(n, 8);
}

/** `length` bytes counting up from `start` (wrapping at 256). */
function range(length: number, start = 0): number[] {
  return Array.from({ length }, (_, i) => (start + i) & 0xff);
}

/** {@linkcode range} as one hex field. */
function counting(length: number, start = 0): string {
  return range(length, start).map(u8).join("");
}

/** A frame header alone: body length u32, type u8. */
function header(length: number, type: number): Uint8Array {
  return hex(`${u32(length)} ${u8(type)}`);
}

/** A whole frame whose length field matches its hex `body`. */
function frame(type: number, body: string): Uint8Array {
  return hex(`${u32(hex(body).length)} ${u8(type)} ${body}`);
}

/**
 * Replaces Uint8Array fields, nested ones (a Proof's sections) included, by
 * plain arrays: packets then compare by content, and copy out of a decoder's
 * buffer.
 */
function plain(packet: Packet | object): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(packet).map(([key, value]) => [
      key,
      value instanceof Uint8Array
        ? Array.from(value)
        : value !== null && typeof value === "object"
        ? plain(value)
        : value,
    ]),
  );
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
    for (const byte of input) decoder.push(Uint8Array.of(byte), () => {});
  });
}

/** One step per case, each asserting that its input is refused. */
async function stepsRejecting(
  t: Deno.TestContext,
  cases: readonly (readonly [string, Uint8Array])[],
): Promise<void> {
  for (const [name, input] of cases) await t.step(name, () => assertRejected(input));
}

/** Decodes `input` with a FrameDecoder, one byte at a time, copying the packets. */
function decodeByteByByte(input: Uint8Array): Record<string, unknown>[] {
  const decoder = new FrameDecoder();
  const packets: Record<string, unknown>[] = [];
  for (const byte of input) {
    decoder.push(Uint8Array.of(byte), (packet) => packets.push(plain(packet)));
  }
  assert.equal(decoder.bufferedBytes, 0);
  return packets;
}

// ---------------------------------------------------------------- golden frames

interface Golden {
  readonly name: string;
  readonly packet: Packet;
  /** The frame in hex: length u32, type u8, then the body's fields in order, one field a group. */
  readonly frame: string;
}

const RELAY_ID = counting(32);
const NONCE = counting(32, 0x40);
const PUBLIC_KEY = counting(32, 0x80);
const SIGNATURE = counting(64, 0xa0);
const TOKEN_ID = counting(8, 0xe0);
const TOKEN_SIGNATURE = counting(64, 0x10);
const LEGACY_TAG = counting(32, 0x50);
const LEGACY_MAC = counting(32, 0x70);
const PROOF_IDENTITY = { publicKey: hex(PUBLIC_KEY), signature: hex(SIGNATURE) };
const PROOF_TOKEN = { id: hex(TOKEN_ID), signature: hex(TOKEN_SIGNATURE) };
const PROOF_LEGACY = { tag: hex(LEGACY_TAG), mac: hex(LEGACY_MAC) };

const GOLDEN: readonly Golden[] = [
  {
    name: "Hello version 2",
    packet: { type: PacketType.Hello, version: PROTOCOL_VERSION },
    frame: "00000002 01 0002",
  },
  {
    name: "Hello version 0xabcd",
    packet: { type: PacketType.Hello, version: 0xabcd },
    frame: "00000002 01 abcd",
  },
  {
    name: "Challenge",
    packet: { type: PacketType.Challenge, relayId: hex(RELAY_ID), nonce: hex(NONCE) },
    frame: `00000040 06 ${RELAY_ID} ${NONCE}`,
  },
  {
    name: "Proof without sections",
    packet: { type: PacketType.Proof, identity: null, joinToken: null, legacyClaim: null },
    frame: "00000001 07 00",
  },
  {
    name: "Proof with an identity",
    packet: {
      type: PacketType.Proof,
      identity: PROOF_IDENTITY,
      joinToken: null,
      legacyClaim: null,
    },
    frame: `00000061 07 01 ${PUBLIC_KEY} ${SIGNATURE}`,
  },
  {
    name: "Proof with a join token only",
    packet: { type: PacketType.Proof, identity: null, joinToken: PROOF_TOKEN, legacyClaim: null },
    frame: `00000049 07 02 ${TOKEN_ID} ${TOKEN_SIGNATURE}`,
  },
  {
    name: "Proof with an identity and a join token",
    packet: {
      type: PacketType.Proof,
      identity: PROOF_IDENTITY,
      joinToken: PROOF_TOKEN,
      legacyClaim: null,
    },
    frame: `000000a9 07 03 ${PUBLIC_KEY} ${SIGNATURE} ${TOKEN_ID} ${TOKEN_SIGNATURE}`,
  },
  {
    name: "Proof with an identity and a legacy claim",
    packet: {
      type: PacketType.Proof,
      identity: PROOF_IDENTITY,
      joinToken: null,
      legacyClaim: PROOF_LEGACY,
    },
    frame: `000000a1 07 05 ${PUBLIC_KEY} ${SIGNATURE} ${LEGACY_TAG} ${LEGACY_MAC}`,
  },
  {
    name: "Proof with every section",
    packet: {
      type: PacketType.Proof,
      identity: PROOF_IDENTITY,
      joinToken: PROOF_TOKEN,
      legacyClaim: PROOF_LEGACY,
    },
    frame:
      `000000e9 07 07 ${PUBLIC_KEY} ${SIGNATURE} ${TOKEN_ID} ${TOKEN_SIGNATURE} ${LEGACY_TAG} ${LEGACY_MAC}`,
  },
  {
    name: "VirtualIP 10.0.0.1",
    packet: { type: PacketType.VirtualIP, address: 0x0a00_0001 },
    frame: "00000004 02 0a000001",
  },
  {
    name: "VirtualIP 255.255.255.255",
    packet: { type: PacketType.VirtualIP, address: 0xffff_ffff },
    frame: "00000004 02 ffffffff",
  },
  {
    name: "Error Offline with an ASCII message",
    packet: { type: PacketType.Error, reason: Reason.Offline, message: "hi" },
    frame: "00000005 03 0c 0002 6869",
  },
  {
    name: "Error Normal with an empty message",
    packet: { type: PacketType.Error, reason: Reason.Normal, message: "" },
    frame: "00000003 03 00 0000",
  },
  {
    name: "Error ServerFull with a multi-byte UTF-8 message",
    packet: { type: PacketType.Error, reason: Reason.ServerFull, message: "é€😀" },
    frame: "0000000c 03 16 0009 c3a9 e282ac f09f9880", // é € 😀
  },
  {
    name: "Error with a message that starts with a byte order mark",
    packet: { type: PacketType.Error, reason: Reason.Internal, message: "\uFEFFx" },
    frame: "00000007 03 12 0004 efbbbf 78",
  },
  {
    name: "Ping",
    packet: { type: PacketType.Ping, nonce: 0xdead_beef },
    frame: "00000004 04 deadbeef",
  },
  {
    name: "Pong",
    packet: { type: PacketType.Pong, nonce: 1 },
    frame: "00000004 05 00000001",
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
    frame: "0000000e 10 01020304 0a000001 0a000002 0050",
  },
  {
    name: "SocketStatusResponse listening",
    packet: { type: PacketType.SocketStatusResponse, requestId: 7, listening: true },
    frame: "00000005 11 00000007 01",
  },
  {
    name: "SocketStatusResponse not listening",
    packet: { type: PacketType.SocketStatusResponse, requestId: 0xffff_fffe, listening: false },
    frame: "00000005 11 fffffffe 00",
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
    frame: "00000018 12 00000007 00000000 0a000001 c000 0a000002 01bb 00040000",
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
    frame: "0000000d 13 00000007 11223344 01 00004000",
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
    frame: "0000000d 13 00000008 00000000 00 00000000",
  },
  {
    name: "RequestFailed",
    packet: { type: PacketType.RequestFailed, requestId: 9, reason: Reason.Offline },
    frame: "00000005 14 00000009 0c",
  },
  {
    name: "EchoRequest",
    packet: {
      type: PacketType.EchoRequest,
      requestId: 3,
      source: 0x01020304,
      destination: 0x05060708,
    },
    frame: "0000000c 15 00000003 01020304 05060708",
  },
  {
    name: "EchoReply",
    packet: { type: PacketType.EchoReply, requestId: 0x01020304 },
    frame: "00000004 16 01020304",
  },
  {
    name: "ArbitraryData with 3 bytes",
    packet: { type: PacketType.ArbitraryData, connectionId: 5, payload: hex("aabbcc") },
    frame: "00000007 20 00000005 aabbcc",
  },
  {
    name: "ArbitraryData with 1 byte",
    packet: { type: PacketType.ArbitraryData, connectionId: 0xffff_ffff, payload: hex("00") },
    frame: "00000005 20 ffffffff 00",
  },
  {
    name: "WindowUpdate",
    packet: { type: PacketType.WindowUpdate, connectionId: 5, increment: 65_536 },
    frame: "00000008 21 00000005 00010000",
  },
  {
    name: "WindowUpdate with the largest increment",
    packet: { type: PacketType.WindowUpdate, connectionId: 1, increment: MAX_WINDOW_BYTES },
    frame: "00000008 21 00000001 01000000",
  },
  {
    name: "SocketShutdown",
    packet: { type: PacketType.SocketShutdown, connectionId: 0xffff_ffff },
    frame: "00000004 22 ffffffff",
  },
  {
    name: "SocketClosed",
    packet: { type: PacketType.SocketClosed, connectionId: 5, reason: Reason.PeerDisconnected },
    frame: "00000005 23 00000005 10",
  },
];

/** Every golden frame back to back, in table order. */
const ALL_GOLDEN_FRAMES: Uint8Array = hex(GOLDEN.map((golden) => golden.frame).join(" "));

/** One step per golden frame, given the packet and the frame's bytes. */
async function eachGolden(
  t: Deno.TestContext,
  check: (packet: Packet, frame: Uint8Array) => void,
): Promise<void> {
  for (const golden of GOLDEN) {
    await t.step(golden.name, () => check(golden.packet, hex(golden.frame)));
  }
}

codecTest("the golden table covers every packet type", () => {
  const covered = new Set(GOLDEN.map((golden) => golden.packet.type));
  assert.deepEqual([...covered].sort((a, b) => a - b), Object.values(PacketType));
});

codecTest("encode() writes the golden bytes of every packet type", async (t) => {
  await eachGolden(t, (packet, frame) => {
    assert.deepEqual(encode(packet), frame);
    assert.equal(encodedLength(packet), frame.length);
  });
});

codecTest("decode() reads the golden bytes of every packet type", async (t) => {
  await eachGolden(t, (packet, frame) => {
    const decoded = decode(frame);
    assert.ok(decoded !== null);
    assert.equal(decoded.bytesUsed, frame.length);
    assert.deepEqual(plain(decoded.packet), plain(packet));
  });
});

codecTest("decode(encode(p)) returns p for every packet type", async (t) => {
  await eachGolden(t, (packet) => {
    const encoded = encode(packet);
    const decoded = decode(encoded);
    assert.ok(decoded !== null);
    assert.equal(decoded.bytesUsed, encoded.length);
    assert.deepEqual(plain(decoded.packet), plain(packet));
    assert.deepEqual(encode(decoded.packet), encoded);
  });
});

codecTest("decode() returns null for every proper prefix of a frame", async (t) => {
  await eachGolden(t, (_, frame) => {
    for (let length = 0; length < frame.length; length++) {
      assert.equal(decode(frame.subarray(0, length)), null, `prefix of ${length} bytes`);
    }
  });
});

codecTest("decode() returns null on a partial header", () => {
  assert.equal(decode(new Uint8Array(0)), null);
  assert.equal(decode(hex("ff")), null);
  assert.equal(decode(hex("ffffffff")), null);
});

codecTest("decode() uses only the first frame and reports its size", () => {
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
});

codecTest("decode() reads a frame from a view with a nonzero byte offset", () => {
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
});

codecTest("decode() returns byte fields as views into its input", () => {
  const input = encode({ type: PacketType.ArbitraryData, connectionId: 1, payload: hex("0102") });
  const decoded = decode(input);
  assert.ok(decoded !== null && decoded.packet.type === PacketType.ArbitraryData);
  assert.equal(decoded.packet.payload.buffer, input.buffer);
  assert.equal(decoded.packet.payload.byteOffset, input.byteOffset + DATA_FRAME_OVERHEAD_BYTES);
});

codecTest("a FrameDecoder fed one byte at a time yields every golden packet in order", () => {
  assert.deepEqual(
    decodeByteByByte(ALL_GOLDEN_FRAMES),
    GOLDEN.map((golden) => plain(golden.packet)),
  );
});

codecTest("a FrameDecoder fed one big chunk yields every golden packet in order", () => {
  const decoder = new FrameDecoder();
  const packets: Record<string, unknown>[] = [];
  decoder.push(ALL_GOLDEN_FRAMES, (packet) => packets.push(plain(packet)));
  assert.equal(decoder.bufferedBytes, 0);
  assert.deepEqual(packets, GOLDEN.map((golden) => plain(golden.packet)));
});

codecTest("a FrameDecoder reports the bytes it holds of an incomplete frame", () => {
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
});

codecTest("the largest data frame round trips through decode() and a FrameDecoder", () => {
  const payload = Uint8Array.from(range(MAX_DATA_BYTES, 3));
  const packet: Packet = { type: PacketType.ArbitraryData, connectionId: 42, payload };
  const encoded = encode(packet);
  assert.equal(encoded.length, DATA_FRAME_OVERHEAD_BYTES + MAX_DATA_BYTES);
  assert.deepEqual(encoded.subarray(0, 9), hex("00010003 20 0000002a"));
  const decoded = decode(encoded);
  assert.ok(decoded !== null);
  assert.deepEqual(plain(decoded.packet), plain(packet));
  const decoder = new FrameDecoder();
  const packets: Record<string, unknown>[] = [];
  for (let at = 0; at < encoded.length; at += 1000) {
    decoder.push(encoded.subarray(at, at + 1000), (p) => packets.push(plain(p)));
  }
  assert.deepEqual(packets, [plain(packet)]);
});

codecTest("an Error message of exactly MAX_ERROR_MESSAGE_BYTES round trips", () => {
  const message = "€".repeat(MAX_ERROR_MESSAGE_BYTES / 4) +
    "abcd".repeat(MAX_ERROR_MESSAGE_BYTES / 16);
  assert.equal(new TextEncoder().encode(message).length, MAX_ERROR_MESSAGE_BYTES);
  const packet: Packet = { type: PacketType.Error, reason: Reason.Internal, message };
  const decoded = decode(encode(packet));
  assert.ok(decoded !== null);
  assert.deepEqual(decoded.packet, packet);
});

// ---------------------------------------------------------------- malformed input

const FIXED_BODY_BYTES: readonly [string, number, number][] = [
  ["Challenge", PacketType.Challenge, 64],
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

/** 10.0.0.1, the address the malformed frames below use. */
const IP = "0a000001";

codecTest("decode() throws ProtocolError on an unknown type from the header alone", async (t) => {
  const known = new Set<number>(Object.values(PacketType));
  const unknown = range(256).filter((type) => !known.has(type));
  assert.equal(unknown.length, 256 - 18);
  for (const type of [0x00, 0x06, 0x0f, 0x17, 0x1f, 0x24, 0x7f, 0x80, 0xff]) {
    await t.step(`type 0x${type.toString(16)}`, () => {
      assertRejected(header(0, type));
      assertRejected(header(4, type));
    });
  }
  await t.step("every unknown type", () => {
    for (const type of unknown) assertMalformed(() => decode(header(4, type)));
  });
});

codecTest(
  "decode() throws ProtocolError on a fixed-size packet with the wrong length",
  async (t) => {
    for (const [name, type, size] of FIXED_BODY_BYTES) {
      await t.step(name, () => {
        for (const length of [0, size - 1, size + 1, 0xffff, 0xffff_ffff]) {
          // The header alone is enough to refuse it.
          assertRejected(header(length, type));
        }
        // And with a body of the wrong size present in full.
        assertRejected(frame(type, counting(size - 1)));
        assertRejected(frame(type, counting(size + 1)));
      });
    }
  },
);

codecTest("decode() throws ProtocolError on a data frame with a 0-byte payload", async (t) => {
  await stepsRejecting(t, [
    ["the header alone", hex("00000004 20")],
    ["a connection id and nothing after it", hex("00000004 20 00000001")],
    ...[0, 1, 2, 3].map((length) =>
      [`body of ${length} bytes`, header(length, PacketType.ArbitraryData)] as const
    ),
  ]);
});

codecTest(
  "decode() throws ProtocolError on a data body over MAX_FRAME_BODY_BYTES from the header alone",
  () => {
    for (const length of [MAX_FRAME_BODY_BYTES + 1, 0x0100_0000, 0xffff_ffff]) {
      const frameHeader = header(length, PacketType.ArbitraryData);
      assert.equal(frameHeader.length, 5);
      assertRejected(frameHeader);
    }
    assert.equal(u32(MAX_FRAME_BODY_BYTES + 1), "00010004");
    // The largest allowed body is not refused from its header: more bytes are needed.
    assert.equal(decode(header(MAX_FRAME_BODY_BYTES, PacketType.ArbitraryData)), null);
  },
);

codecTest("decode() throws ProtocolError on a malformed Hello", async (t) => {
  const hello = (body: string): Uint8Array => frame(PacketType.Hello, body);
  await stepsRejecting(t, [
    ["a version 2 Hello with one more byte", hello("0002 00")],
    ["a version 2 Hello with a version 1 identity", hello(`0002 0010 ${counting(16)}`)],
    ...[0, 1].map((length) =>
      [`body of ${length} bytes`, header(length, PacketType.Hello)] as const
    ),
    ...[261, 300, 0xffff].map((n) =>
      [`body of ${n} bytes, refused from the header alone`, header(n, PacketType.Hello)] as const
    ),
  ]);
});

codecTest("decode() reads another version's Hello as its version alone", () => {
  // Version 1's Hello with a 16-byte identity: an old client gets UnsupportedVersion, not Malformed.
  const v1 = frame(PacketType.Hello, `0001 0010 ${counting(16)}`);
  assert.deepEqual(decode(v1), { packet: { type: PacketType.Hello, version: 1 }, bytesUsed: 25 });
  const largest = frame(PacketType.Hello, `0001 0100 ${counting(256)}`);
  assert.deepEqual(decode(largest)?.packet, { type: PacketType.Hello, version: 1 });
});

codecTest("decode() throws ProtocolError on a malformed Proof", async (t) => {
  const proof = (body: string): Uint8Array => frame(PacketType.Proof, body);
  await stepsRejecting(t, [
    ...[0x08, 0x10, 0x80, 0xff].map((flags) =>
      [`unknown flag bits ${u8(flags)}`, proof(u8(flags))] as const
    ),
    ["flags 0x00 with a byte more", proof("00 00")],
    ["flags 0x01 one byte short", proof(`01 ${PUBLIC_KEY} ${counting(63)}`)],
    ["flags 0x01 one byte long", proof(`01 ${PUBLIC_KEY} ${SIGNATURE} 00`)],
    ["flags 0x02 without its section", proof("02")],
    ["flags 0x03 with only the identity", proof(`03 ${PUBLIC_KEY} ${SIGNATURE}`)],
    ["a legacy claim without identity (flags 0x04)", proof(`04 ${LEGACY_TAG} ${LEGACY_MAC}`)],
    [
      "a legacy claim and a token without identity (flags 0x06)",
      proof(`06 ${TOKEN_ID} ${TOKEN_SIGNATURE} ${LEGACY_TAG} ${LEGACY_MAC}`),
    ],
    ["body of 0 bytes", header(0, PacketType.Proof)],
    ["body of 234 bytes, refused from the header alone", header(234, PacketType.Proof)],
  ]);
});

codecTest("decode() throws ProtocolError on a bool field that is neither 0 nor 1", async (t) => {
  await stepsRejecting(
    t,
    [2, 0x80, 0xff].flatMap((value) => [
      [
        `SocketStatusResponse listening = ${value}`,
        frame(PacketType.SocketStatusResponse, `00000001 ${u8(value)}`),
      ] as const,
      [
        `SocketConnectionResponse accepted = ${value}`,
        frame(PacketType.SocketConnectionResponse, `00000001 00000001 ${u8(value)} 00004000`),
      ] as const,
    ]),
  );
});

codecTest("decode() throws ProtocolError on an unknown reason code", async (t) => {
  await stepsRejecting(
    t,
    [27, 99, 0xff].flatMap((reason) => [
      [`Error reason ${reason}`, frame(PacketType.Error, `${u8(reason)} 0000`)] as const,
      [
        `RequestFailed reason ${reason}`,
        frame(PacketType.RequestFailed, `00000001 ${u8(reason)}`),
      ] as const,
      [
        `SocketClosed reason ${reason}`,
        frame(PacketType.SocketClosed, `00000001 ${u8(reason)}`),
      ] as const,
    ]),
  );
});

codecTest("decode() throws ProtocolError on port 0", async (t) => {
  const window = u32(MIN_WINDOW_BYTES);
  await stepsRejecting(t, [
    [
      "SocketStatusRequest destination port",
      frame(PacketType.SocketStatusRequest, `00000001 ${IP} ${IP} 0000`),
    ],
    [
      "SocketConnectionRequest source port",
      frame(
        PacketType.SocketConnectionRequest,
        `00000001 00000000 ${IP} 0000 ${IP} 0050 ${window}`,
      ),
    ],
    [
      "SocketConnectionRequest destination port",
      frame(
        PacketType.SocketConnectionRequest,
        `00000001 00000000 ${IP} c350 ${IP} 0000 ${window}`,
      ),
    ],
  ]);
});

codecTest(
  "decode() throws ProtocolError on a window outside MIN_WINDOW_BYTES..MAX_WINDOW_BYTES",
  async (t) => {
    const request = (window: number): Uint8Array =>
      frame(
        PacketType.SocketConnectionRequest,
        `00000001 00000000 ${IP} c350 ${IP} 0050 ${u32(window)}`,
      );
    const response = (window: number): Uint8Array =>
      frame(PacketType.SocketConnectionResponse, `00000001 00000002 01 ${u32(window)}`);
    await stepsRejecting(
      t,
      [0, 1, MIN_WINDOW_BYTES - 1, MAX_WINDOW_BYTES + 1, 0xffff_ffff].flatMap((window) => [
        [`SocketConnectionRequest window ${window}`, request(window)] as const,
        [`accepted SocketConnectionResponse window ${window}`, response(window)] as const,
      ]),
    );
    await t.step("the bounds themselves are accepted", () => {
      for (const window of [MIN_WINDOW_BYTES, MAX_WINDOW_BYTES]) {
        assert.ok(decode(request(window)) !== null);
        assert.ok(decode(response(window)) !== null);
      }
    });
  },
);

codecTest("decode() throws ProtocolError on a denied response with a nonzero window", () => {
  for (const window of [1, MIN_WINDOW_BYTES, 0xffff_ffff]) {
    assertRejected(
      frame(PacketType.SocketConnectionResponse, `00000001 00000000 00 ${u32(window)}`),
    );
  }
});

codecTest(
  "decode() throws ProtocolError on a WindowUpdate increment outside 1..MAX_WINDOW_BYTES",
  () => {
    for (const increment of [0, MAX_WINDOW_BYTES + 1, 0xffff_ffff]) {
      assertRejected(frame(PacketType.WindowUpdate, `00000001 ${u32(increment)}`));
    }
  },
);

codecTest("decode() throws ProtocolError on a malformed Error frame", async (t) => {
  const error = (body: string): Uint8Array =>
    frame(PacketType.Error, `${u8(Reason.Normal)} ${body}`);
  const invalidUtf8: readonly [string, string][] = [
    ["a lone continuation byte", "80"],
    ["byte 0xff", "ff"],
    ["a truncated 2-byte sequence", "c3"],
    ["a truncated 3-byte sequence", "61 e282"],
    ["an overlong NUL", "c080"],
    ["an encoded surrogate", "eda080"],
    ["a code point above U+10FFFF", "f4908080"],
  ];
  await stepsRejecting(t, [
    ...invalidUtf8.map(([name, message]) =>
      [`invalid UTF-8: ${name}`, error(`${u16(hex(message).length)} ${message}`)] as const
    ),
    ["message length longer than the body", error("0003 6162")],
    ["message length shorter than the body", error("0001 6162")],
    [
      "message over MAX_ERROR_MESSAGE_BYTES, refused from the header alone",
      header(3 + MAX_ERROR_MESSAGE_BYTES + 1, PacketType.Error),
    ],
    ...[0, 1, 2].map((length) =>
      [`body of ${length} bytes`, header(length, PacketType.Error)] as const
    ),
  ]);
});

codecTest("checkFrameHeader() accepts every possible length and refuses the rest", async (t) => {
  await t.step("fixed-size types", () => {
    for (const [, type, size] of FIXED_BODY_BYTES) {
      checkFrameHeader(type, size);
      assertMalformed(() => checkFrameHeader(type, size + 1));
    }
  });
  await t.step("variable-size types at their bounds", () => {
    checkFrameHeader(PacketType.Hello, 2);
    checkFrameHeader(PacketType.Hello, 260);
    assertMalformed(() => checkFrameHeader(PacketType.Hello, 1));
    assertMalformed(() => checkFrameHeader(PacketType.Hello, 261));
    checkFrameHeader(PacketType.Proof, 1);
    checkFrameHeader(PacketType.Proof, 233);
    assertMalformed(() => checkFrameHeader(PacketType.Proof, 0));
    assertMalformed(() => checkFrameHeader(PacketType.Proof, 234));
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
});

// ---------------------------------------------------------------- encode range checks

const ADDRESS = 0x0a00_0001;

/** A valid status request the out-of-range cases below each break in one field. */
const STATUS_REQUEST: SocketStatusRequestPacket = {
  type: PacketType.SocketStatusRequest,
  requestId: 1,
  source: ADDRESS,
  destination: ADDRESS,
  destinationPort: 80,
};

/** A valid connection request the out-of-range cases below each break in one field. */
const CONNECTION_REQUEST: SocketConnectionRequestPacket = {
  type: PacketType.SocketConnectionRequest,
  requestId: 1,
  connectionId: 0,
  source: ADDRESS,
  sourcePort: 50_000,
  destination: ADDRESS,
  destinationPort: 80,
  window: MIN_WINDOW_BYTES,
};

const OUT_OF_RANGE: readonly [string, Packet][] = [
  ["Hello version 0x10000", { type: PacketType.Hello, version: 0x1_0000 }],
  ["Hello version -1", { type: PacketType.Hello, version: -1 }],
  ["Challenge relay id of 31 bytes", {
    type: PacketType.Challenge,
    relayId: new Uint8Array(31),
    nonce: new Uint8Array(32),
  }],
  ["Challenge nonce of 33 bytes", {
    type: PacketType.Challenge,
    relayId: new Uint8Array(32),
    nonce: new Uint8Array(33),
  }],
  ["Proof public key of 31 bytes", {
    type: PacketType.Proof,
    identity: { publicKey: new Uint8Array(31), signature: new Uint8Array(64) },
    joinToken: null,
    legacyClaim: null,
  }],
  ["Proof signature of 65 bytes", {
    type: PacketType.Proof,
    identity: { publicKey: new Uint8Array(32), signature: new Uint8Array(65) },
    joinToken: null,
    legacyClaim: null,
  }],
  ["Proof token id of 7 bytes", {
    type: PacketType.Proof,
    identity: null,
    joinToken: { id: new Uint8Array(7), signature: new Uint8Array(64) },
    legacyClaim: null,
  }],
  ["Proof legacy claim without identity", {
    type: PacketType.Proof,
    identity: null,
    joinToken: null,
    legacyClaim: { tag: new Uint8Array(32), mac: new Uint8Array(32) },
  }],
  ["Proof legacy mac of 31 bytes", {
    type: PacketType.Proof,
    identity: { publicKey: new Uint8Array(32), signature: new Uint8Array(64) },
    joinToken: null,
    legacyClaim: { tag: new Uint8Array(32), mac: new Uint8Array(31) },
  }],
  ["VirtualIP 2**32", { type: PacketType.VirtualIP, address: 2 ** 32 }],
  ["VirtualIP -1", { type: PacketType.VirtualIP, address: -1 }],
  ["Error unknown reason", { type: PacketType.Error, reason: 27 as Reason, message: "" }],
  ["Error message of 1025 bytes", {
    type: PacketType.Error,
    reason: Reason.Normal,
    message: "x".repeat(MAX_ERROR_MESSAGE_BYTES + 1),
  }],
  ["Ping nonce 1.5", { type: PacketType.Ping, nonce: 1.5 }],
  ["Pong nonce NaN", { type: PacketType.Pong, nonce: NaN }],
  ["SocketStatusRequest port 70000", { ...STATUS_REQUEST, destinationPort: 70_000 }],
  ["SocketStatusRequest port 0", { ...STATUS_REQUEST, destinationPort: 0 }],
  ["SocketStatusRequest negative request id", { ...STATUS_REQUEST, requestId: -1 }],
  ["SocketStatusRequest source 2**32", { ...STATUS_REQUEST, source: 2 ** 32 }],
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
  ["SocketConnectionRequest source port 70000", { ...CONNECTION_REQUEST, sourcePort: 70_000 }],
  ["SocketConnectionRequest window below the minimum", {
    ...CONNECTION_REQUEST,
    window: MIN_WINDOW_BYTES - 1,
  }],
  ["SocketConnectionRequest window above the maximum", {
    ...CONNECTION_REQUEST,
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
    payload: hex("01"),
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
    reason: 27 as Reason,
  }],
];

codecTest("encode() throws RangeError on out-of-range fields", async (t) => {
  for (const [name, packet] of OUT_OF_RANGE) {
    await t.step(name, () => {
      assert.throws(() => encode(packet), RangeError);
      assert.throws(() => encodeInto(packet, new Uint8Array(70_000), 0), RangeError);
    });
  }
});

codecTest("encodeInto() writes a frame at an offset and touches nothing else", async (t) => {
  await eachGolden(t, (packet, frame) => {
    const target = new Uint8Array(frame.length + 10).fill(0xee);
    const used = encodeInto(packet, target, 3);
    assert.equal(used, frame.length);
    assert.deepEqual(Array.from(target.subarray(0, 3)), [0xee, 0xee, 0xee]);
    assert.deepEqual(target.subarray(3, 3 + used), frame);
    assert.deepEqual(Array.from(target.subarray(3 + used)), new Array(7).fill(0xee));
  });
});

codecTest("encodeInto() writes into a view with a nonzero byte offset", () => {
  const backing = new Uint8Array(32).fill(0xee);
  const view = backing.subarray(5, 20);
  const used = encodeInto({ type: PacketType.Ping, nonce: 0x0102_0304 }, view, 2);
  assert.equal(used, 9);
  assert.deepEqual(Array.from(backing.subarray(0, 7)), new Array(7).fill(0xee));
  assert.deepEqual(backing.subarray(7, 16), hex("00000004 04 01020304"));
  assert.deepEqual(Array.from(backing.subarray(16)), new Array(16).fill(0xee));
});

codecTest("encodeInto() fills a target of exactly the frame's size", () => {
  const packet: Packet = { type: PacketType.Pong, nonce: 7 };
  const target = new Uint8Array(12);
  assert.equal(encodeInto(packet, target, 3), 9);
  assert.deepEqual(target, hex("000000 00000004 05 00000007"));
});

codecTest(
  "encodeInto() throws RangeError when the target is too small and writes nothing",
  async (t) => {
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
);

codecTest(
  "encodeDataHeader() plus a payload copy equals encode() of the same data packet",
  async (t) => {
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
      const payload = hex("090807");
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
);

codecTest(
  "encodeDataHeader() throws RangeError on a payload length outside 1..MAX_DATA_BYTES",
  () => {
    const target = new Uint8Array(MAX_DATA_BYTES + 100);
    for (const length of [0, -1, MAX_DATA_BYTES + 1]) {
      assert.throws(() => encodeDataHeader(target, 0, 1, length), RangeError);
    }
  },
);
