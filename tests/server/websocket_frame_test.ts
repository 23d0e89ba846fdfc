/**
 * The relay's WebSocket frame codec, pure: the reader turns client frames
 * (built here by the tests' own encoder, not the relay's) into the byte
 * stream their binary messages carry, however the bytes are split across
 * reads; it checks each header before taking any of its payload; and the
 * relay's own frames have the header forms RFC 6455 gives.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeCloseFrame,
  encodeFrame,
  frameHeaderLength,
  MAX_WEBSOCKET_MESSAGE_BYTES,
  unmask,
  WebSocketFrameReader,
  writeFrameHeader,
} from "../../server/websocket_frame.ts";
import { concatBytes, pseudoRandomBytes } from "../_helpers/bytes.ts";
import { clientFrame, WsOpcode } from "../_helpers/websocket_raw.ts";

/** Feeds `wire` to a fresh reader in chunks of the given sizes; returns the stream and the reader. */
function readAll(
  wire: Uint8Array,
  chunkSizes: readonly number[] = [wire.length],
  reader = new WebSocketFrameReader(),
): { stream: Uint8Array; reader: WebSocketFrameReader } {
  const out: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; at < wire.length; i++) {
    const size = Math.max(1, Math.min(chunkSizes[i % chunkSizes.length], wire.length - at));
    // A copy: the reader works in place, as it does in the read buffer.
    const chunk = wire.slice(at, at + size);
    at += size;
    const count = reader.push(chunk, chunk.length);
    out.push(chunk.slice(0, count));
  }
  return { stream: concatBytes(out), reader };
}

Deno.test("websocket codec: unmask XORs like the naive loop at every alignment, phase and length", () => {
  const mask = new Uint8Array([0x12, 0x34, 0x56, 0x78]);
  const backing = pseudoRandomBytes(300, 7);
  for (let offset = 0; offset < 4; offset++) {
    for (const length of [0, 1, 3, 15, 16, 17, 64, 255]) {
      for (let phase = 0; phase < 4; phase++) {
        const fast = backing.slice();
        const view = new Uint8Array(fast.buffer, offset, length + 8);
        unmask(view, 3, 3 + length, mask, phase);
        const naive = backing.slice();
        for (let i = 0; i < length; i++) naive[offset + 3 + i] ^= mask[(phase + i) % 4];
        assert.deepEqual(fast, naive, `offset ${offset} length ${length} phase ${phase}`);
      }
    }
  }
});

Deno.test("websocket codec: relay frames use the 7-, 16- and 64-bit length forms at their bounds", () => {
  const cases: [number, number[]][] = [
    [0, [0x82, 0]],
    [125, [0x82, 125]],
    [126, [0x82, 126, 0, 126]],
    [65_535, [0x82, 126, 0xff, 0xff]],
    [65_536, [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]],
    [131_072, [0x82, 127, 0, 0, 0, 0, 0, 2, 0, 0]],
  ];
  for (const [length, header] of cases) {
    assert.equal(frameHeaderLength(length), header.length, `length ${length}`);
    const target = new Uint8Array(16).fill(0xee);
    assert.equal(writeFrameHeader(target, 1, WsOpcode.Binary, length), header.length);
    assert.deepEqual([...target.subarray(1, 1 + header.length)], header, `length ${length}`);
    assert.equal(target[0], 0xee);
  }
  assert.deepEqual([...encodeFrame(WsOpcode.Pong, new Uint8Array([1, 2]))], [0x8a, 2, 1, 2]);
});

Deno.test("websocket codec: a Close frame carries its code and a reason cut to 123 bytes on a character boundary", () => {
  const frame = encodeCloseFrame(4022, "full");
  assert.deepEqual([...frame.subarray(0, 4)], [0x88, 6, 4022 >> 8, 4022 & 0xff]);
  assert.equal(new TextDecoder().decode(frame.subarray(4)), "full");
  // 122 ASCII bytes and a 3-byte character: 125 bytes, cut before the character.
  const long = encodeCloseFrame(1000, "a".repeat(122) + "€" + "b");
  assert.equal(long[1], 2 + 122);
  assert.equal(new TextDecoder("utf-8", { fatal: true }).decode(long.subarray(4)), "a".repeat(122));
  const exact = encodeCloseFrame(1000, "c".repeat(123));
  assert.equal(exact[1], 125);
});

Deno.test("websocket codec: binary, fragmented and empty messages make one stream, whatever the read sizes", () => {
  const a = pseudoRandomBytes(70_000, 1);
  const b = pseudoRandomBytes(200, 2);
  const c = pseudoRandomBytes(126, 3);
  const wire = concatBytes([
    clientFrame(WsOpcode.Binary, a),
    clientFrame(WsOpcode.Binary, new Uint8Array(0)),
    clientFrame(WsOpcode.Binary, b.subarray(0, 50), { fin: false }),
    clientFrame(WsOpcode.Ping, new Uint8Array([9, 9])),
    clientFrame(WsOpcode.Continuation, b.subarray(50, 50), { fin: false }),
    clientFrame(WsOpcode.Continuation, b.subarray(50)),
    clientFrame(WsOpcode.Pong, new Uint8Array([1])),
    clientFrame(WsOpcode.Binary, c),
  ]);
  const expected = concatBytes([a, b, c]);
  for (const sizes of [[wire.length], [1], [2, 3, 5, 7], [13], [4096, 1], [65_536]]) {
    const { stream, reader } = readAll(wire, sizes);
    assert.deepEqual(stream, expected, `chunks ${sizes}`);
    assert.equal(reader.violation, null);
    assert.deepEqual(reader.takePing(), new Uint8Array([9, 9]));
    assert.equal(reader.takePing(), null);
    assert.ok(reader.betweenFrames);
  }
});

Deno.test("websocket codec: the 16- and 64-bit length forms are read at their bounds", () => {
  for (const length of [125, 126, 65_535, 65_536, MAX_WEBSOCKET_MESSAGE_BYTES]) {
    const payload = pseudoRandomBytes(length, length);
    const { stream, reader } = readAll(clientFrame(WsOpcode.Binary, payload), [1000, 3]);
    assert.equal(reader.violation, null, `length ${length}`);
    assert.deepEqual(stream, payload, `length ${length}`);
  }
});

Deno.test("websocket codec: only the latest Ping is kept", () => {
  const wire = concatBytes([1, 2, 3].map((n) => clientFrame(WsOpcode.Ping, new Uint8Array([n]))));
  const { stream, reader } = readAll(wire);
  assert.equal(stream.length, 0);
  assert.deepEqual(reader.takePing(), new Uint8Array([3]));
});

Deno.test("websocket codec: a Close ends the reading; bytes of the frames before it are handed over", () => {
  const wire = concatBytes([
    clientFrame(WsOpcode.Binary, new Uint8Array([1, 2, 3])),
    clientFrame(WsOpcode.Close, new Uint8Array([0x03, 0xe8])),
    clientFrame(WsOpcode.Binary, new Uint8Array([4])),
  ]);
  const { stream, reader } = readAll(wire);
  assert.deepEqual(stream, new Uint8Array([1, 2, 3]));
  assert.ok(reader.closeReceived);
});

Deno.test("websocket codec: each fault is named with its close code, before any of its payload is taken", async (t) => {
  const faults: [string, Uint8Array, number, RegExp][] = [
    [
      "text message",
      clientFrame(WsOpcode.Text, new TextEncoder().encode("hi")),
      1003,
      /^text message: AlphaNET carries binary messages only$/,
    ],
    [
      "message over 1 MiB in one frame",
      clientFrame(WsOpcode.Binary, new Uint8Array(0), {
        announcedLength: MAX_WEBSOCKET_MESSAGE_BYTES + 1,
      }),
      1009,
      /^message over 1048576 bytes$/,
    ],
    [
      "a 64-bit length beyond 2^32",
      clientFrame(WsOpcode.Binary, new Uint8Array(0), { announcedLength: 2 ** 40 }),
      1009,
      /^message over 1048576 bytes$/,
    ],
    [
      "fragments over 1 MiB together",
      concatBytes([
        clientFrame(WsOpcode.Binary, new Uint8Array(MAX_WEBSOCKET_MESSAGE_BYTES), { fin: false }),
        clientFrame(WsOpcode.Continuation, new Uint8Array(1)),
      ]),
      1009,
      /^message over 1048576 bytes$/,
    ],
    [
      "unmasked frame",
      clientFrame(WsOpcode.Binary, new Uint8Array([1]), { masked: false }),
      1002,
      /unmasked frame/,
    ],
    ["RSV1", clientFrame(WsOpcode.Binary, new Uint8Array([1]), { rsv: 4 }), 1002, /RSV bits/],
    ["RSV3", clientFrame(WsOpcode.Binary, new Uint8Array([1]), { rsv: 1 }), 1002, /RSV bits/],
    ["opcode 0x3", clientFrame(0x3, new Uint8Array([1])), 1002, /unknown opcode 0x3/],
    ["opcode 0xb", clientFrame(0xb, new Uint8Array([1])), 1002, /unknown opcode 0xb/],
    [
      "fragmented Ping",
      clientFrame(WsOpcode.Ping, new Uint8Array([1]), { fin: false }),
      1002,
      /fragmented control frame/,
    ],
    [
      "Ping over 125 bytes",
      clientFrame(WsOpcode.Ping, new Uint8Array(126)),
      1002,
      /control frame over 125 bytes/,
    ],
    [
      "continuation without a start",
      clientFrame(WsOpcode.Continuation, new Uint8Array([1])),
      1002,
      /continuation frame without a message/,
    ],
    [
      "new message inside a fragmented one",
      concatBytes([
        clientFrame(WsOpcode.Binary, new Uint8Array([1]), { fin: false }),
        clientFrame(WsOpcode.Binary, new Uint8Array([2])),
      ]),
      1002,
      /new message inside a fragmented one/,
    ],
    [
      "16-bit length below 126",
      clientFrame(WsOpcode.Binary, new Uint8Array(5), { lengthForm: 16 }),
      1002,
      /shortest form/,
    ],
    [
      "64-bit length below 65536",
      clientFrame(WsOpcode.Binary, new Uint8Array(5), { lengthForm: 64 }),
      1002,
      /shortest form/,
    ],
    [
      "64-bit length with its top bit set",
      clientFrame(WsOpcode.Binary, new Uint8Array(0), { announcedLength: 2 ** 63 }),
      1002,
      /top bit/,
    ],
  ];
  for (const [name, wire, code, message] of faults) {
    await t.step(name, () => {
      // A good message first: its bytes are handed over, the fault's are not.
      const good = clientFrame(WsOpcode.Binary, new Uint8Array([7, 7]));
      const { stream, reader } = readAll(concatBytes([good, wire]), [3]);
      assert.ok(reader.violation !== null, "no violation");
      assert.equal(reader.violation.code, code, reader.violation.message);
      assert.match(reader.violation.message, message);
      // A fragmented case hands over its first fragment, which broke nothing yet.
      const fragment = name === "new message inside a fragmented one"
        ? 1
        : name === "fragments over 1 MiB together"
        ? MAX_WEBSOCKET_MESSAGE_BYTES
        : 0;
      assert.deepEqual(stream.subarray(0, 2), new Uint8Array([7, 7]));
      assert.equal(stream.length, 2 + fragment);
      // Nothing more is taken after a violation.
      assert.equal(reader.push(good.slice(), good.length), 0);
    });
  }
});

Deno.test("websocket codec: a header announcing more than 1 MiB is refused as soon as its length is read", () => {
  const reader = new WebSocketFrameReader();
  // 2 + 8 length bytes + 4 mask bytes: the violation comes with the header's last byte.
  const header = clientFrame(WsOpcode.Binary, new Uint8Array(0), { announcedLength: 2_000_000 });
  assert.equal(header.length, 14);
  assert.equal(reader.push(header.slice(0, 13), 13), 0);
  assert.equal(reader.violation as unknown, null);
  assert.equal(reader.push(header.slice(13), 1), 0);
  assert.equal((reader as WebSocketFrameReader).violation?.code, 1009);
});

Deno.test("websocket codec: any split of valid binary frames yields the same stream (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 6 }),
      (payloads, sizes) => {
        const wire = concatBytes(payloads.map((p) => clientFrame(WsOpcode.Binary, p)));
        const { stream, reader } = readAll(wire, sizes);
        assert.equal(reader.violation, null);
        assert.deepEqual(stream, concatBytes(payloads));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("websocket codec: no input makes the reader throw, and it never hands over more than it read", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const reader = new WebSocketFrameReader();
      const count = reader.push(bytes.slice(), bytes.length);
      assert.ok(count >= 0 && count <= bytes.length);
    }),
    { numRuns: 500 },
  );
});
