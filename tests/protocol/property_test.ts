/**
 * Property tests of the pure codec and the streaming decoder: every valid
 * packet round trips, any chunking of a stream yields the same packets, and
 * no input makes either decoder throw anything but ProtocolError.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decode,
  encode,
  FrameDecoder,
  HandshakeBytes,
  MAX_DATA_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FRAME_BODY_BYTES,
  MAX_HELLO_BODY_BYTES,
  MAX_PORT,
  MAX_WINDOW_BYTES,
  MIN_WINDOW_BYTES,
  type Packet,
  PacketType,
  PROTOCOL_VERSION,
  ProtocolError,
  Reason,
} from "../../protocol/mod.ts";

// ---------------------------------------------------------------- arbitraries

/** Exactly `size` arbitrary bytes. */
const bytesOf = (size: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: size, maxLength: size });

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const port = fc.integer({ min: 1, max: MAX_PORT });
const windowBytes = fc.integer({ min: MIN_WINDOW_BYTES, max: MAX_WINDOW_BYTES });
const reason = fc.constantFrom(...Object.values(Reason));

/** Messages of at most 1020 UTF-8 bytes: 255 code points of at most 4 bytes, plus a BOM. */
const errorMessage = fc.oneof(
  fc.string({ unit: "binary", maxLength: 255 }),
  fc.string({ unit: "binary-ascii", maxLength: 255 }),
  fc.string({ unit: "binary", maxLength: 255 }).map((s) => `\uFEFF${s}`),
);

/** Payloads: mostly small and random, sometimes large and patterned, sometimes the maximum. */
const payload = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 300 }) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 1, max: MAX_DATA_BYTES }), fc.nat(255)).map((
      [length, seed],
    ) => Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff)),
  },
  { weight: 1, arbitrary: fc.nat(255).map((fill) => new Uint8Array(MAX_DATA_BYTES).fill(fill)) },
);

/** Every valid packet, every type, every field in its valid range. */
const packetArb: fc.Arbitrary<Packet> = fc.oneof(
  // Another version's Hello decodes to its version alone; version 2's round trips.
  fc.record({ type: fc.constant(PacketType.Hello), version: fc.constant(PROTOCOL_VERSION) }),
  fc.record({
    type: fc.constant(PacketType.Challenge),
    relayId: bytesOf(HandshakeBytes.relayId),
    nonce: bytesOf(HandshakeBytes.nonce),
  }),
  fc.record({
    type: fc.constant(PacketType.Proof),
    identity: fc.option(
      fc.record({
        publicKey: bytesOf(HandshakeBytes.publicKey),
        signature: bytesOf(HandshakeBytes.signature),
      }),
      { nil: null },
    ),
    joinToken: fc.option(
      fc.record({
        id: bytesOf(HandshakeBytes.tokenId),
        signature: bytesOf(HandshakeBytes.signature),
      }),
      { nil: null },
    ),
    legacyClaim: fc.option(
      fc.record({
        tag: bytesOf(HandshakeBytes.legacyTag),
        mac: bytesOf(HandshakeBytes.legacyMac),
      }),
      { nil: null },
    ),
  }).map((proof) => ({
    // Plain objects, as the decoder makes them (fc.record's have no prototype).
    type: proof.type,
    identity: proof.identity && { ...proof.identity },
    joinToken: proof.joinToken && { ...proof.joinToken },
    legacyClaim: proof.identity && proof.legacyClaim && { ...proof.legacyClaim },
  })),
  fc.record({ type: fc.constant(PacketType.VirtualIP), address: u32 }),
  fc.record({ type: fc.constant(PacketType.Error), reason, message: errorMessage }),
  fc.record({ type: fc.constant(PacketType.Ping), nonce: u32 }),
  fc.record({ type: fc.constant(PacketType.Pong), nonce: u32 }),
  fc.record({
    type: fc.constant(PacketType.SocketStatusRequest),
    requestId: u32,
    source: u32,
    destination: u32,
    destinationPort: port,
  }),
  fc.record({
    type: fc.constant(PacketType.SocketStatusResponse),
    requestId: u32,
    listening: fc.boolean(),
  }),
  fc.record({
    type: fc.constant(PacketType.SocketConnectionRequest),
    requestId: u32,
    connectionId: u32,
    source: u32,
    sourcePort: port,
    destination: u32,
    destinationPort: port,
    window: windowBytes,
  }),
  fc.record({
    type: fc.constant(PacketType.SocketConnectionResponse),
    requestId: u32,
    connectionId: u32,
    accepted: fc.constant(true),
    window: windowBytes,
  }),
  fc.record({
    type: fc.constant(PacketType.SocketConnectionResponse),
    requestId: u32,
    connectionId: fc.oneof(fc.constant(0), u32),
    accepted: fc.constant(false),
    window: fc.constant(0),
  }),
  fc.record({ type: fc.constant(PacketType.RequestFailed), requestId: u32, reason }),
  fc.record({
    type: fc.constant(PacketType.EchoRequest),
    requestId: u32,
    source: u32,
    destination: u32,
  }),
  fc.record({ type: fc.constant(PacketType.EchoReply), requestId: u32 }),
  fc.record({ type: fc.constant(PacketType.ArbitraryData), connectionId: u32, payload }),
  fc.record({
    type: fc.constant(PacketType.WindowUpdate),
    connectionId: u32,
    increment: fc.integer({ min: 1, max: MAX_WINDOW_BYTES }),
  }),
  fc.record({ type: fc.constant(PacketType.SocketShutdown), connectionId: u32 }),
  fc.record({ type: fc.constant(PacketType.SocketClosed), connectionId: u32, reason }),
) as fc.Arbitrary<Packet>;

/** How to cut a stream into chunks. */
type Chunking =
  | { readonly kind: "whole" }
  | { readonly kind: "bytes" }
  | { readonly kind: "sizes"; readonly sizes: readonly number[] };

const chunking: fc.Arbitrary<Chunking> = fc.oneof(
  fc.constant({ kind: "whole" } as const),
  fc.constant({ kind: "bytes" } as const),
  fc.record({
    kind: fc.constant("sizes" as const),
    sizes: fc.array(
      fc.oneof(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 70_000 }),
      ),
      { minLength: 1, maxLength: 16 },
    ),
  }),
);

/** Cuts `bytes` into chunks as `how` says; chunk sizes cycle. */
function* chunks(bytes: Uint8Array, how: Chunking): Generator<Uint8Array> {
  if (how.kind === "whole") {
    yield bytes;
    return;
  }
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const size = how.kind === "bytes" ? 1 : how.sizes[i++ % how.sizes.length];
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

// ---------------------------------------------------------------- helpers

/**
 * A copy of `packet` whose byte fields, nested ones (a Proof's sections)
 * included, own their bytes (decoder views die after the callback).
 */
function snapshot(packet: Packet): Packet {
  return copyFields(packet) as unknown as Packet;
}

function copyFields(fields: object): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).map(([key, value]) => [
      key,
      value instanceof Uint8Array
        ? new Uint8Array(value)
        : value !== null && typeof value === "object"
        ? copyFields(value)
        : value,
    ]),
  );
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Runs `fn`; returns the error it threw, or undefined. */
function thrown(fn: () => void): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

function assertProtocolError(error: unknown): void {
  if (error === undefined) return;
  assert.ok(
    error instanceof ProtocolError,
    `expected only ProtocolError, got ${error instanceof Error ? error.stack : error}`,
  );
  assert.equal(error.reason, Reason.Malformed);
}

/** Decodes frames from `bytes` with decode() until it needs more bytes or throws. */
function decodeAll(bytes: Uint8Array): { packets: Packet[]; error: unknown } {
  const packets: Packet[] = [];
  let at = 0;
  const error = thrown(() => {
    for (;;) {
      const decoded = decode(bytes.subarray(at));
      if (decoded === null) return;
      packets.push(snapshot(decoded.packet));
      at += decoded.bytesUsed;
    }
  });
  return { packets, error };
}

/** Pushes `bytes` to a fresh FrameDecoder in chunks, stopping at the first error. */
function streamAll(bytes: Uint8Array, how: Chunking): { packets: Packet[]; error: unknown } {
  const decoder = new FrameDecoder();
  const packets: Packet[] = [];
  const error = thrown(() => {
    for (const chunk of chunks(bytes, how)) {
      decoder.push(chunk, (packet) => packets.push(snapshot(packet)));
    }
  });
  return { packets, error };
}

// ---------------------------------------------------------------- properties

Deno.test({
  name: "decode(encode(p)) deep-equals p for every valid packet",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(packetArb, (packet) => {
        const encoded = encode(packet);
        const decoded = decode(encoded);
        assert.ok(decoded !== null);
        assert.equal(decoded.bytesUsed, encoded.length);
        assert.deepEqual(snapshot(decoded.packet), snapshot(packet));
      }),
      { numRuns: 1000 },
    );
  },
});

Deno.test({
  name:
    "every valid packet's frame is at most MAX_FRAME_BODY_BYTES of body and decodes from no prefix",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(packetArb, fc.nat(), (packet, cut) => {
        const encoded = encode(packet);
        assert.ok(encoded.length - 5 <= MAX_FRAME_BODY_BYTES);
        assert.equal(encoded.length - 5, new DataView(encoded.buffer).getUint32(0));
        assert.equal(decode(encoded.subarray(0, cut % encoded.length)), null);
      }),
      { numRuns: 500 },
    );
  },
});

Deno.test({
  name: "a FrameDecoder yields the same packets in order however the stream is chunked",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(
        fc.array(packetArb, { minLength: 1, maxLength: 20 }),
        chunking,
        (packets, how) => {
          const stream = concat(packets.map(encode));
          // 1-byte chunks of megabytes of data are slow and prove nothing new.
          const effective: Chunking = how.kind === "bytes" && stream.length > 20_000
            ? { kind: "sizes", sizes: [1, 2, 3, 5, 8, 13, 4096, 1] }
            : how;
          const decoder = new FrameDecoder();
          const got: Packet[] = [];
          for (const chunk of chunks(stream, effective)) {
            decoder.push(chunk, (packet) => got.push(snapshot(packet)));
          }
          assert.equal(decoder.bufferedBytes, 0);
          assert.deepEqual(got, packets.map(snapshot));
        },
      ),
      { numRuns: 300 },
    );
  },
});

Deno.test({
  name: "a FrameDecoder yields the same packets with 1-byte chunks and with one big chunk",
  permissions: "none",
  fn(): void {
    const small = packetArb.filter((packet) =>
      packet.type !== PacketType.ArbitraryData || packet.payload.length <= 300
    );
    fc.assert(
      fc.property(fc.array(small, { minLength: 1, maxLength: 10 }), (packets) => {
        const stream = concat(packets.map(encode));
        const expected = packets.map(snapshot);
        assert.deepEqual(streamAll(stream, { kind: "bytes" }), {
          packets: expected,
          error: undefined,
        });
        assert.deepEqual(streamAll(stream, { kind: "whole" }), {
          packets: expected,
          error: undefined,
        });
      }),
      { numRuns: 300 },
    );
  },
});

Deno.test({
  name: "a valid frame re-encodes to exactly the bytes it was decoded from",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(packetArb, fc.uint8Array({ maxLength: 16 }), (packet, trailer) => {
        const encoded = encode(packet);
        const decoded = decode(concat([encoded, trailer]));
        assert.ok(decoded !== null);
        assert.equal(decoded.bytesUsed, encoded.length);
        assert.deepEqual(encode(decoded.packet), encoded);
      }),
      { numRuns: 500 },
    );
  },
});

Deno.test({
  name: "decode() on random bytes returns null or a packet, or throws ProtocolError",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const error = thrown(() => {
          const decoded = decode(bytes);
          if (decoded !== null) {
            // Whatever decodes is canonical: it re-encodes to the bytes it came from.
            assert.deepEqual(encode(decoded.packet), bytes.subarray(0, decoded.bytesUsed));
          }
        });
        assertProtocolError(error);
      }),
      { numRuns: 1000 },
    );
  },
});

/** A header of a known type with a length its type allows, then random body bytes. */
const plausibleFrame = fc.oneof(
  fc.record({
    type: fc.constantFrom(
      PacketType.VirtualIP,
      PacketType.Ping,
      PacketType.Pong,
      PacketType.SocketShutdown,
    ),
    body: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  }),
  fc.record({
    type: fc.constant(PacketType.SocketStatusRequest),
    body: fc.uint8Array({ minLength: 14, maxLength: 14 }),
  }),
  fc.record({
    type: fc.constantFrom(
      PacketType.SocketStatusResponse,
      PacketType.RequestFailed,
      PacketType.SocketClosed,
    ),
    body: fc.uint8Array({ minLength: 5, maxLength: 5 }),
  }),
  fc.record({
    type: fc.constant(PacketType.SocketConnectionRequest),
    body: fc.uint8Array({ minLength: 24, maxLength: 24 }),
  }),
  fc.record({
    type: fc.constant(PacketType.SocketConnectionResponse),
    body: fc.uint8Array({ minLength: 13, maxLength: 13 }),
  }),
  fc.record({
    type: fc.constant(PacketType.WindowUpdate),
    body: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  }),
  fc.record({
    type: fc.constant(PacketType.Hello),
    body: fc.uint8Array({ minLength: 2, maxLength: MAX_HELLO_BODY_BYTES }),
  }),
  fc.record({
    type: fc.constant(PacketType.Proof),
    body: fc.uint8Array({ minLength: 1, maxLength: 233 }),
  }),
  fc.record({
    type: fc.constant(PacketType.Challenge),
    body: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  }),
  fc.record({
    type: fc.constant(PacketType.Error),
    body: fc.uint8Array({ minLength: 3, maxLength: 3 + 64 }),
  }),
  fc.record({
    type: fc.constant(PacketType.Error),
    body: fc.tuple(fc.nat(30), fc.uint8Array({ maxLength: MAX_ERROR_MESSAGE_BYTES / 16 })).map((
      [code, message],
    ) => Uint8Array.from([code, message.length >> 8, message.length & 0xff, ...message])),
  }),
  fc.record({
    type: fc.constant(PacketType.ArbitraryData),
    body: fc.uint8Array({ minLength: 5, maxLength: 64 }),
  }),
).map(({ type, body }) => {
  const frame = new Uint8Array(5 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame[4] = type;
  frame.set(body, 5);
  return frame;
});

/** Streams of random bytes, plausible frames, valid frames, and valid frames with bytes flipped. */
const hostileStream = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.array(plausibleFrame, { minLength: 1, maxLength: 8 }).map(concat),
  fc.tuple(
    fc.array(packetArb, { minLength: 1, maxLength: 4 }),
    fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
  ).map(([packets, flips]) => {
    const stream = concat(packets.map(encode));
    for (const [index, value] of flips) stream[index % stream.length] = value;
    return stream;
  }),
);

Deno.test({
  name: "a FrameDecoder fed random bytes in random chunks yields packets or throws ProtocolError",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(hostileStream, chunking, (bytes, how) => {
        const decoder = new FrameDecoder();
        const error = thrown(() => {
          for (const chunk of chunks(bytes, how)) {
            decoder.push(chunk, (packet) => {
              // Every packet handed out must be valid: it encodes without RangeError.
              encode(packet);
            });
          }
        });
        assertProtocolError(error);
      }),
      { numRuns: 1000 },
    );
  },
});

Deno.test({
  name: "decode() on hostile streams returns null or a packet, or throws ProtocolError",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(hostileStream, (bytes) => {
        const { packets, error } = decodeAll(bytes);
        assertProtocolError(error);
        for (const packet of packets) encode(packet);
      }),
      { numRuns: 1000 },
    );
  },
});

Deno.test({
  name: "a FrameDecoder agrees with repeated decode() on any input and any chunking",
  permissions: "none",
  fn(): void {
    fc.assert(
      fc.property(hostileStream, chunking, (bytes, how) => {
        const expected = decodeAll(bytes);
        const actual = streamAll(bytes, how);
        assert.deepEqual(actual.packets, expected.packets);
        assert.equal(actual.error !== undefined, expected.error !== undefined);
      }),
      { numRuns: 1000 },
    );
  },
});
