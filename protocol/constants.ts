/**
 * Every value that appears on the AlphaNET wire, in one table.
 *
 * Protocol flow (see docs/PROTOCOL.md for the byte-level spec):
 *
 *   client                         relay                          owner of B
 *     | Hello(version, identity?) -> |                                |
 *     | <- VirtualIP(A)              |                                |
 *     | SocketStatusRequest(B:80) -> | SocketStatusRequest(A->B:80) -> |
 *     |                              | <- SocketStatusResponse(yes)    |
 *     | <- SocketStatusResponse(yes) |                                |
 *     | SocketConnectionRequest ---> | SocketConnectionRequest -----> |
 *     |                              | <- SocketConnectionResponse(ok) |
 *     | <- SocketConnectionResponse  |   (pair joins ActiveSockets)    |
 *     | ArbitraryData / WindowUpdate <-> relay <-> ArbitraryData / ... |
 *     | SocketClosed --------------> | SocketClosed ----------------> |
 *
 * The relay always stamps the sender's own virtual IP as the source; the
 * client must write its own address (or the relay treats it as spoofing).
 *
 * @module
 */

/** The protocol version a Hello carries; the relay refuses any other. */
export const PROTOCOL_VERSION = 1;

/** Size of the frame length field: u32, big-endian, counts body bytes only. */
export const FRAME_LENGTH_BYTES = 4;
/** Size of the frame type field: u8. */
export const FRAME_TYPE_BYTES = 1;
/** Every frame starts with this header: length (u32) then type (u8). */
export const FRAME_HEADER_BYTES: number = FRAME_LENGTH_BYTES + FRAME_TYPE_BYTES;

/** Wire sizes of the fields packets are built from. */
export const FieldBytes = {
  u8: 1,
  u16: 2,
  u32: 4,
  ipv4: 4,
  port: 2,
  requestId: 4,
  connectionId: 4,
} as const;

/** Largest payload of one ArbitraryData frame; larger writes are split. */
export const MAX_DATA_BYTES = 65_535;
/** Smallest identity secret a Hello may carry. */
export const MIN_IDENTITY_BYTES = 16;
/** Largest identity secret a Hello may carry. */
export const MAX_IDENTITY_BYTES = 256;
/** Largest UTF-8 message an Error frame may carry. */
export const MAX_ERROR_MESSAGE_BYTES = 1024;

/** Header of an ArbitraryData body: the connection id before the payload. */
export const DATA_HEADER_BYTES: number = FieldBytes.connectionId;
/** Largest frame body of any packet: a full ArbitraryData frame. */
export const MAX_FRAME_BODY_BYTES: number = DATA_HEADER_BYTES + MAX_DATA_BYTES;
/** Largest whole frame on the wire. */
export const MAX_FRAME_BYTES: number = FRAME_HEADER_BYTES + MAX_FRAME_BODY_BYTES;

/** Smallest receive window a peer may announce for a connection. */
export const MIN_WINDOW_BYTES = 16 * 1024;
/** Receive window announced by default. */
export const DEFAULT_WINDOW_BYTES = 256 * 1024;
/** Largest receive window a peer may announce for a connection. */
export const MAX_WINDOW_BYTES = 16 * 1024 * 1024;

/** Largest virtual port; port 0 is never valid on the wire. */
export const MAX_PORT = 65_535;
/** First port of the range clients pick local ports of outgoing connections from. */
export const EPHEMERAL_PORT_FIRST = 49_152;

/** The relay's TCP port when none is given, as in the seed design. */
export const DEFAULT_RELAY_PORT = 1337;

/**
 * Frame types. Each comment is the body layout, big-endian, after the
 * 5-byte frame header.
 */
export const PacketType = {
  /** C→S. version u16 | identityLength u16 | identity[identityLength] (0, or 16..256 bytes) */
  Hello: 0x01,
  /** S→C. address u32: the client's permanent virtual IPv4 */
  VirtualIP: 0x02,
  /** Both. reason u8 | messageLength u16 | message[messageLength] UTF-8; the sender then closes */
  Error: 0x03,
  /** Both. nonce u32; the receiver answers Pong with the same nonce */
  Ping: 0x04,
  /** Both. nonce u32 */
  Pong: 0x05,
  /** Both. requestId u32 | source u32 | destination u32 | destinationPort u16 */
  SocketStatusRequest: 0x10,
  /** Both. requestId u32 | listening u8 (0 or 1) */
  SocketStatusResponse: 0x11,
  /**
   * Both. requestId u32 | connectionId u32 | source u32 | sourcePort u16 |
   * destination u32 | destinationPort u16 | window u32
   */
  SocketConnectionRequest: 0x12,
  /** Both. requestId u32 | connectionId u32 | accepted u8 (0 or 1) | window u32 */
  SocketConnectionResponse: 0x13,
  /** S→C. requestId u32 | reason u8 */
  RequestFailed: 0x14,
  /** Both. requestId u32 | source u32 | destination u32: "are you there?" to another client */
  EchoRequest: 0x15,
  /** Both. requestId u32: the destination's answer to an EchoRequest */
  EchoReply: 0x16,
  /** Both. connectionId u32 | payload[1..65535] */
  ArbitraryData: 0x20,
  /** Both. connectionId u32 | increment u32 (1..MAX_WINDOW_BYTES) */
  WindowUpdate: 0x21,
  /** Both. connectionId u32; the sender writes no more data on it (half-close) */
  SocketShutdown: 0x22,
  /** Both. connectionId u32 | reason u8 */
  SocketClosed: 0x23,
} as const;

/** One of the {@linkcode PacketType} values. */
export type PacketType = typeof PacketType[keyof typeof PacketType];

/**
 * Reason codes carried by Error, RequestFailed and SocketClosed frames.
 * One table for all three so a code means the same thing everywhere.
 */
export const Reason = {
  /** The connection was closed by its peer. */
  Normal: 0,
  /** A frame could not be decoded. */
  Malformed: 1,
  /** The Hello's protocol version is not supported. */
  UnsupportedVersion: 2,
  /** A packet arrived that is not valid in this state or direction. */
  UnexpectedPacket: 3,
  /** A packet named a source address that is not the sender's own. */
  SpoofedAddress: 4,
  /** The identity secret is outside 16..256 bytes. */
  InvalidIdentity: 5,
  /** No virtual IPv4 address is left in the relay's pool. */
  PoolExhausted: 6,
  /** A newer client with the same real IP or identity took over. */
  Replaced: 7,
  /** The peer sent more data than its credit allowed, or granted credit it was never sent. */
  FlowControl: 8,
  /** A packet referred to a request or connection id that was never issued. */
  UnknownId: 9,
  /** The relay is shutting down. */
  Shutdown: 10,
  /** The client did not send Hello in time. */
  HelloTimeout: 11,
  /** The destination virtual IP has no client online. */
  Offline: 12,
  /** The destination did not answer in time. */
  Timeout: 13,
  /** The requester has too many requests in flight. */
  TooManyPending: 14,
  /** A per-client connection limit was reached. */
  TooManyConnections: 15,
  /** The other end's link to the relay dropped. */
  PeerDisconnected: 16,
  /** The client does not read what the relay sends it. */
  SlowConsumer: 17,
  /** The relay hit an unexpected internal error. */
  Internal: 18,
  /** The connection carried no data for the idle time-out. */
  Idle: 19,
  /** The peer sent nothing within the dead interval. */
  PeerTimeout: 20,
  /** The client exceeded its request rate. */
  RateLimited: 21,
  /** The relay has as many clients as it allows. */
  ServerFull: 22,
} as const;

/** One of the {@linkcode Reason} values. */
export type Reason = typeof Reason[keyof typeof Reason];

const REASON_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(Reason).map(([name, code]) => [code, name]),
);

/** Whether `code` is a reason this protocol version defines. */
export function isReason(code: number): code is Reason {
  return REASON_NAMES.has(code);
}

/** The name of a reason code, e.g. `"Offline"`, or `"Reason(99)"` for an unknown one. */
export function reasonName(code: number): string {
  return REASON_NAMES.get(code) ?? `Reason(${code})`;
}
