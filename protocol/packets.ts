/**
 * Packets as a closed, discriminated union on their {@linkcode PacketType}.
 * Addresses are IPv4 as unsigned 32-bit integers; see `address.ts`.
 *
 * @module
 */

import type { PacketType, Reason } from "./constants.ts";

/** First frame of a client: its protocol version and optional identity secret. */
export interface HelloPacket {
  readonly type: typeof PacketType.Hello;
  readonly version: number;
  /** Secret of 16..256 bytes that keys the permanent address, or null to key on the real IP. */
  readonly identity: Uint8Array | null;
}

/** The relay's answer to Hello: the client's permanent virtual IPv4. */
export interface VirtualIpPacket {
  readonly type: typeof PacketType.VirtualIP;
  readonly address: number;
}

/** A fatal error; the sender closes the link after it. */
export interface ErrorPacket {
  readonly type: typeof PacketType.Error;
  readonly reason: Reason;
  readonly message: string;
}

/** Keepalive probe; answered with a Pong carrying the same nonce. */
export interface PingPacket {
  readonly type: typeof PacketType.Ping;
  readonly nonce: number;
}

/** Keepalive answer. */
export interface PongPacket {
  readonly type: typeof PacketType.Pong;
  readonly nonce: number;
}

/** Is anything listening at destination:destinationPort? (the seed's first connect step) */
export interface SocketStatusRequestPacket {
  readonly type: typeof PacketType.SocketStatusRequest;
  readonly requestId: number;
  /** The requester's own virtual IP; the relay refuses any other. */
  readonly source: number;
  readonly destination: number;
  readonly destinationPort: number;
}

/** The destination owner's answer to a SocketStatusRequest. */
export interface SocketStatusResponsePacket {
  readonly type: typeof PacketType.SocketStatusResponse;
  readonly requestId: number;
  readonly listening: boolean;
}

/** Open a virtual connection (the seed's second connect step). */
export interface SocketConnectionRequestPacket {
  readonly type: typeof PacketType.SocketConnectionRequest;
  readonly requestId: number;
  /** 0 from a client; the owner-side connection id when the relay forwards it. */
  readonly connectionId: number;
  readonly source: number;
  readonly sourcePort: number;
  readonly destination: number;
  readonly destinationPort: number;
  /** The requester's receive window for this connection, in bytes. */
  readonly window: number;
}

/** The owner's accept or deny, forwarded by the relay to the requester. */
export interface SocketConnectionResponsePacket {
  readonly type: typeof PacketType.SocketConnectionResponse;
  readonly requestId: number;
  /** The receiver's own id for the new connection; 0 when denied. */
  readonly connectionId: number;
  readonly accepted: boolean;
  /** The accepting side's receive window; 0 when denied. */
  readonly window: number;
}

/** The relay could not complete a request (destination offline, time-out, limits). */
export interface RequestFailedPacket {
  readonly type: typeof PacketType.RequestFailed;
  readonly requestId: number;
  readonly reason: Reason;
}

/** Bytes on an active virtual connection. */
export interface ArbitraryDataPacket {
  readonly type: typeof PacketType.ArbitraryData;
  readonly connectionId: number;
  /** 1..MAX_DATA_BYTES bytes; a view into the decoded buffer, copy it to keep it. */
  readonly payload: Uint8Array;
}

/** Grants the other end `increment` more bytes of send credit. */
export interface WindowUpdatePacket {
  readonly type: typeof PacketType.WindowUpdate;
  readonly connectionId: number;
  readonly increment: number;
}

/** The sender writes no more data on this connection (half-close). */
export interface SocketShutdownPacket {
  readonly type: typeof PacketType.SocketShutdown;
  readonly connectionId: number;
}

/** The connection is gone, both directions. */
export interface SocketClosedPacket {
  readonly type: typeof PacketType.SocketClosed;
  readonly connectionId: number;
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
  | ArbitraryDataPacket
  | WindowUpdatePacket
  | SocketShutdownPacket
  | SocketClosedPacket;
