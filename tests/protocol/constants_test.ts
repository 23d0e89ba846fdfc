/**
 * Pins every value that appears on the AlphaNET wire. A change here is a
 * protocol change: it breaks every peer built against the old numbers.
 */

import assert from "node:assert/strict";
import {
  DATA_HEADER_BYTES,
  DEFAULT_RELAY_PORT,
  DEFAULT_WINDOW_BYTES,
  EPHEMERAL_PORT_FIRST,
  FieldBytes,
  FRAME_HEADER_BYTES,
  FRAME_LENGTH_BYTES,
  FRAME_TYPE_BYTES,
  HandshakeBytes,
  isReason,
  MAX_DATA_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FRAME_BODY_BYTES,
  MAX_FRAME_BYTES,
  MAX_HELLO_BODY_BYTES,
  MAX_PORT,
  MAX_WINDOW_BYTES,
  MIN_WINDOW_BYTES,
  PacketType,
  ProofFlags,
  PROTOCOL_VERSION,
  Reason,
  reasonName,
} from "../../protocol/mod.ts";
import { DATA_FRAME_OVERHEAD_BYTES } from "../../protocol/codec.ts";

Deno.test({
  name: "the protocol version is 2",
  permissions: "none",
  fn(): void {
    assert.equal(PROTOCOL_VERSION, 2);
  },
});

Deno.test({
  name: "handshake field sizes and Proof flags match the documented wire layout",
  permissions: "none",
  fn(): void {
    assert.deepEqual({ ...HandshakeBytes }, {
      publicKey: 32,
      signature: 64,
      relayId: 32,
      nonce: 32,
      tokenId: 8,
      legacyTag: 32,
      legacyMac: 32,
    });
    assert.deepEqual({ ...ProofFlags }, { Identity: 0x01, JoinToken: 0x02, LegacyClaim: 0x04 });
  },
});

Deno.test({
  name: "frame header sizes are a u32 length and a u8 type",
  permissions: "none",
  fn(): void {
    assert.equal(FRAME_LENGTH_BYTES, 4);
    assert.equal(FRAME_TYPE_BYTES, 1);
    assert.equal(FRAME_HEADER_BYTES, 5);
  },
});

Deno.test({
  name: "field sizes match the documented wire layout",
  permissions: "none",
  fn(): void {
    assert.deepEqual({ ...FieldBytes }, {
      u8: 1,
      u16: 2,
      u32: 4,
      ipv4: 4,
      port: 2,
      requestId: 4,
      connectionId: 4,
    });
  },
});

Deno.test({
  name: "size limits are pinned to their wire values",
  permissions: "none",
  async fn(t): Promise<void> {
    const cases: [string, number, number][] = [
      ["MAX_DATA_BYTES", MAX_DATA_BYTES, 65_535],
      ["MAX_HELLO_BODY_BYTES", MAX_HELLO_BODY_BYTES, 260],
      ["MAX_ERROR_MESSAGE_BYTES", MAX_ERROR_MESSAGE_BYTES, 1024],
      ["DATA_HEADER_BYTES", DATA_HEADER_BYTES, 4],
      ["MAX_FRAME_BODY_BYTES", MAX_FRAME_BODY_BYTES, 65_539],
      ["MAX_FRAME_BYTES", MAX_FRAME_BYTES, 65_544],
      ["DATA_FRAME_OVERHEAD_BYTES", DATA_FRAME_OVERHEAD_BYTES, 9],
      ["MIN_WINDOW_BYTES", MIN_WINDOW_BYTES, 16_384],
      ["DEFAULT_WINDOW_BYTES", DEFAULT_WINDOW_BYTES, 262_144],
      ["MAX_WINDOW_BYTES", MAX_WINDOW_BYTES, 16_777_216],
      ["MAX_PORT", MAX_PORT, 65_535],
      ["EPHEMERAL_PORT_FIRST", EPHEMERAL_PORT_FIRST, 49_152],
      ["DEFAULT_RELAY_PORT", DEFAULT_RELAY_PORT, 1337],
    ];
    for (const [name, actual, expected] of cases) {
      await t.step(`${name} is ${expected}`, () => {
        assert.equal(actual, expected);
      });
    }
  },
});

Deno.test({
  name: "size limits are consistent with each other",
  permissions: "none",
  fn(): void {
    assert.equal(MAX_FRAME_BODY_BYTES, DATA_HEADER_BYTES + MAX_DATA_BYTES);
    assert.equal(MAX_FRAME_BYTES, FRAME_HEADER_BYTES + MAX_FRAME_BODY_BYTES);
    assert.equal(DATA_FRAME_OVERHEAD_BYTES, FRAME_HEADER_BYTES + DATA_HEADER_BYTES);
    assert.ok(MIN_WINDOW_BYTES <= DEFAULT_WINDOW_BYTES);
    assert.ok(DEFAULT_WINDOW_BYTES <= MAX_WINDOW_BYTES);
    // A length field of u32 and a u16 message length hold every limit.
    assert.ok(MAX_FRAME_BODY_BYTES <= 0xffff_ffff);
    // Version 1's largest Hello (version, identityLength, a 256-byte identity) still decodes.
    assert.equal(MAX_HELLO_BODY_BYTES, 2 + 2 + 256);
    assert.ok(MAX_ERROR_MESSAGE_BYTES <= 0xffff);
    assert.ok(MAX_WINDOW_BYTES <= 0xffff_ffff);
    assert.ok(EPHEMERAL_PORT_FIRST <= MAX_PORT);
    assert.ok(DEFAULT_RELAY_PORT >= 1 && DEFAULT_RELAY_PORT <= MAX_PORT);
  },
});

Deno.test({
  name: "every packet type has its pinned wire value",
  permissions: "none",
  fn(): void {
    assert.deepEqual({ ...PacketType }, {
      Hello: 0x01,
      VirtualIP: 0x02,
      Error: 0x03,
      Ping: 0x04,
      Pong: 0x05,
      Challenge: 0x06,
      Proof: 0x07,
      SocketStatusRequest: 0x10,
      SocketStatusResponse: 0x11,
      SocketConnectionRequest: 0x12,
      SocketConnectionResponse: 0x13,
      RequestFailed: 0x14,
      EchoRequest: 0x15,
      EchoReply: 0x16,
      ArbitraryData: 0x20,
      WindowUpdate: 0x21,
      SocketShutdown: 0x22,
      SocketClosed: 0x23,
    });
  },
});

Deno.test({
  name: "packet type values are distinct u8s",
  permissions: "none",
  fn(): void {
    const values = Object.values(PacketType);
    assert.equal(new Set(values).size, values.length);
    for (const value of values) assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xff);
  },
});

Deno.test({
  name: "every reason has its pinned wire value",
  permissions: "none",
  fn(): void {
    assert.deepEqual({ ...Reason }, {
      Normal: 0,
      Malformed: 1,
      UnsupportedVersion: 2,
      UnexpectedPacket: 3,
      SpoofedAddress: 4,
      InvalidIdentity: 5,
      PoolExhausted: 6,
      Replaced: 7,
      FlowControl: 8,
      UnknownId: 9,
      Shutdown: 10,
      HelloTimeout: 11,
      Offline: 12,
      Timeout: 13,
      TooManyPending: 14,
      TooManyConnections: 15,
      PeerDisconnected: 16,
      SlowConsumer: 17,
      Internal: 18,
      Idle: 19,
      PeerTimeout: 20,
      RateLimited: 21,
      ServerFull: 22,
      JoinTokenRequired: 23,
      JoinTokenInvalid: 24,
      JoinTokenUsedUp: 25,
      JoinTokenExpired: 26,
    });
  },
});

Deno.test({
  name: "reason values are distinct u8s",
  permissions: "none",
  fn(): void {
    const values = Object.values(Reason);
    assert.equal(new Set(values).size, values.length);
    for (const value of values) assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xff);
  },
});

Deno.test({
  name: "isReason() accepts every defined code and nothing else",
  permissions: "none",
  async fn(t): Promise<void> {
    await t.step("every defined code is a reason", () => {
      for (const code of Object.values(Reason)) assert.equal(isReason(code), true, `${code}`);
    });
    for (const code of [-1, 27, 28, 99, 255, 256, 0.5, 1.5, NaN, Infinity]) {
      await t.step(`${code} is not a reason`, () => {
        assert.equal(isReason(code), false);
      });
    }
  },
});

Deno.test({
  name: "reasonName() names every defined code after its key",
  permissions: "none",
  async fn(t): Promise<void> {
    for (const [name, code] of Object.entries(Reason)) {
      await t.step(`${code} is named ${name}`, () => {
        assert.equal(reasonName(code), name);
      });
    }
  },
});

Deno.test({
  name: "reasonName() formats an unknown code as Reason(n)",
  permissions: "none",
  fn(): void {
    assert.equal(reasonName(27), "Reason(27)");
    assert.equal(reasonName(99), "Reason(99)");
    assert.equal(reasonName(255), "Reason(255)");
    assert.equal(reasonName(-1), "Reason(-1)");
  },
});
