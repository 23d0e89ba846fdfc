/**
 * Packets as a closed, discriminated union on their {@linkcode PacketType}.
 * Addresses are IPv4 as unsigned 32-bit integers; see `address.ts`.
 *
 * @module
 */

import type { PacketType, Reason } from "./constants.ts";

/** First frame of a client: its protocol version and optional identity secret. */
export interface HelloPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Hello;
  /** Protocol version the client speaks. */
  readonly version: number;
  /** Secret of 16..256 bytes that keys the permanent address, or null to key on the real IP. */
  readonly identity: Uint8Array | null;
}

/** The relay's answer to Hello: the client's permanent virtual IPv4. */
export interface VirtualIpPacket {
  /** The frame type. */
  readonly type: typeof PacketType.VirtualIP;
  /** The client's permanent virtual IPv4 (u32). */
  readonly address: number;
}

/** A fatal error; the sender closes the link after it. */
export interface ErrorPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Error;
  /** Why; see the Reason table. */
  readonly reason: Reason;
  /** Human-readable detail, at most 1024 UTF-8 bytes. */
  readonly message: string;
}

/** Keepalive probe; answered with a Pong carrying the same nonce. */
export interface PingPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Ping;
  /** Echoed back unchanged in the Pong. */
  readonly nonce: number;
}

/** Keepalive answer. */
export interface PongPacket {
  /** The frame type. */
  readonly type: typeof PacketType.Pong;
  /** Echoed back unchanged in the Pong. */
  readonly nonce: number;
}

/** Is anything listening at destination:destinationPort? (the seed's first connect step) */
export interface SocketStatusRequestPacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketStatusRequest;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** The requester's own virtual IP; the relay refuses any other. */
  readonly source: number;
  /** Virtual IPv4 of the destination (u32). */
  readonly destination: number;
  /** Virtual port at the destination, 1..65535. */
  readonly destinationPort: number;
}

/** The destination owner's answer to a SocketStatusRequest. */
export interface SocketStatusResponsePacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketStatusResponse;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** Whether something listens on the requested port. */
  readonly listening: boolean;
}

/** Open a virtual connection (the seed's second connect step). */
export interface SocketConnectionRequestPacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketConnectionRequest;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** 0 from a client; the owner-side connection id when the relay forwards it. */
  readonly connectionId: number;
  /** The requester's virtual IPv4 (u32). */
  readonly source: number;
  /** The requester's virtual port, 1..65535. */
  readonly sourcePort: number;
  /** Virtual IPv4 of the destination (u32). */
  readonly destination: number;
  /** Virtual port at the destination, 1..65535. */
  readonly destinationPort: number;
  /** The requester's receive window for this connection, in bytes. */
  readonly window: number;
}

/** The owner's accept or deny, forwarded by the relay to the requester. */
export interface SocketConnectionResponsePacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketConnectionResponse;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** The receiver's own id for the new connection; 0 when denied. */
  readonly connectionId: number;
  /** Whether the owner accepted the connection. */
  readonly accepted: boolean;
  /** The accepting side's receive window; 0 when denied. */
  readonly window: number;
}

/** The relay could not complete a request (destination offline, time-out, limits). */
export interface RequestFailedPacket {
  /** The frame type. */
  readonly type: typeof PacketType.RequestFailed;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** Why; see the Reason table. */
  readonly reason: Reason;
}

/** Asks another client to answer, through the relay: the round trip of `ping`. */
export interface EchoRequestPacket {
  /** The frame type. */
  readonly type: typeof PacketType.EchoRequest;
  /** Names the request; unique among the sender's requests in flight. */
  readonly requestId: number;
  /** The requester's virtual IPv4 (u32); the relay refuses any other. */
  readonly source: number;
  /** Virtual IPv4 of the client asked (u32). */
  readonly destination: number;
}

/** The asked client's answer to an EchoRequest, forwarded by the relay. */
export interface EchoReplyPacket {
  /** The frame type. */
  readonly type: typeof PacketType.EchoReply;
  /** The request id the receiver knows the request by. */
  readonly requestId: number;
}

/** Bytes on an active virtual connection. */
export interface ArbitraryDataPacket {
  /** The frame type. */
  readonly type: typeof PacketType.ArbitraryData;
  /** The receiver's own id of the connection end. */
  readonly connectionId: number;
  /** 1..MAX_DATA_BYTES bytes; a view into the decoded buffer, copy it to keep it. */
  readonly payload: Uint8Array;
}

/** Grants the other end `increment` more bytes of send credit. */
export interface WindowUpdatePacket {
  /** The frame type. */
  readonly type: typeof PacketType.WindowUpdate;
  /** The receiver's own id of the connection end. */
  readonly connectionId: number;
  /** Bytes of credit granted, 1..MAX_WINDOW_BYTES. */
  readonly increment: number;
}

/** The sender writes no more data on this connection (half-close). */
export interface SocketShutdownPacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketShutdown;
  /** The receiver's own id of the connection end. */
  readonly connectionId: number;
}

/** The connection is gone, both directions. */
export interface SocketClosedPacket {
  /** The frame type. */
  readonly type: typeof PacketType.SocketClosed;
  /** The receiver's own id of the connection end. */
  readonly connectionId: number;
  /** Why; see the Reason table. */
  readonly reason: Reason;
}

/** Every AlphaNET packet. */
export type Packet =
  | HelloPacket
  | VirtualIpPacket
  | ErrorPacket
  | PingPacket
  | PongPacket
  | SocketStatusRequestPacket
  | SocketStatusResponsePacket
  | SocketConnectionRequestPacket
  | SocketConnectionResponsePacket
  | RequestFailedPacket
  | EchoRequestPacket
  | EchoReplyPacket
  | ArbitraryDataPacket
  | WindowUpdatePacket
  | SocketShutdownPacket
  | SocketClosedPacket;
