/**
 * The seam between the relay's core and whatever carries a client's frames.
 * Routing, requests, the pending table, connections, the credit hold and the
 * data plane only ever see a {@linkcode Peer}; a carrier (today the TCP
 * session) implements it and calls a {@linkcode PeerHost} as its client joins
 * (Hello, then Proof: a {@linkcode Handshake}) and leaves. Nothing here knows
 * about sockets, so a WebSocket client or a link to another relay can stand
 * behind the same seam.
 *
 * @module
 */

import type { Reason } from "../protocol/reason.ts";
import type { HelloPacket, Packet, ProofPacket } from "../protocol/packets.ts";
import type { Slab } from "../transport/slab.ts";

/** One client as the relay's routing code sees it. */
export interface Peer {
  /**
   * The client's virtual IPv4 as a u32: the source address the relay stamps
   * on everything this client sends, so it is never taken from the client.
   * 0 until the join; written once, by the {@linkcode PeerHost} at the join.
   */
  address: number;
  /**
   * The client's IP as its carrier saw it: the registry key of a client
   * without an identity, and its name in logs. Never used for routing.
   */
  readonly realIp: string;
  /**
   * True for a client of another relay of the cluster, reached over a relay
   * link (`server/mesh/remote_peer.ts`); absent or false for this relay's own
   * clients. The router counts only its own clients as online and never
   * routes a remote client's request on to another remote one (one relay hop).
   */
  readonly remote?: boolean;
  /**
   * Where the ids the relay issues this peer start (the first is one more);
   * absent: 0. A relay link starts each remote peer at a random point, so
   * a late answer meant for an earlier peer of the same address cannot name
   * a request of the new one.
   */
  readonly firstIssuedId?: number;
  /**
   * Queues a control frame. Never blocks: control frames are not bounded by
   * credit, so a carrier caps them itself and closes a client that does not
   * read them (SlowConsumer). Dropped once the peer is closed.
   */
  send(packet: Packet): void;
  /**
   * Queues data on the client's end `connectionId`. Its size is already
   * within the credit the client granted, so it is never capped here; the
   * payload is only valid during the call, unless `slab` is given: it is then
   * a view of that slab, its frame's header just before it, which the peer
   * may keep a reference to and forward in place. Its own method, not a
   * `send` of an ArbitraryData packet: the hot path allocates no packet object.
   */
  sendData(connectionId: number, payload: Uint8Array, slab?: Slab | null): void;
  /**
   * Queues a credit grant to the client's end `connectionId`. Its own method
   * so a carrier can merge grants to one end while they wait (a flood of
   * small ones costs a frame per end, not per grant) and the relay builds no
   * packet object per grant.
   */
  sendWindowUpdate(connectionId: number, increment: number): void;
  /**
   * Whether more is queued for this client than its link is taking. While
   * it is, credit the client grants is held back (see `CreditHold`), which
   * carries the client's backpressure to the senders.
   */
  readonly congested: boolean;
  /** Undefined unless congested, else resolves once the queue is back down: held credit moves on. */
  room(): Promise<void> | undefined;
  /**
   * Set by the relay while it counts what it holds for this client: the
   * carrier calls it after each write with the bytes of data frames the write
   * took out of its queue, so held credit can move on (see `BufferBudget`).
   */
  dataWritten?: (bytes: number) => void;
  /**
   * Takes one token of the client's request rate; false when it is over it.
   * The carrier keeps the bucket because the rate is per link, and the relay's
   * clock (`now`, performance.now() ms) is passed in so admission reads it once.
   */
  takeRequestToken(now: number): boolean;
  /**
   * Whether the peer is closed. A join checks it after every await of its
   * verification: nothing is registered or attached for a closed peer.
   */
  readonly closed: boolean;
  /**
   * Ends the client's link: an Error frame with `reason` (none for
   * PeerDisconnected, the client's own leaving), then the carrier closes.
   * Idempotent. A carrier calls {@linkcode PeerHost.leave} before it returns
   * or first awaits, so nothing is routed to a closed peer.
   */
  close(reason: Reason, message: string): Promise<void> | void;
}

/** What the relay does with each frame a joined peer sends; throws ProtocolError on a violation. */
export type Dispatch = (packet: Packet, slab?: Slab | null) => void;

/**
 * One peer's handshake after its Hello was accepted and its Challenge sent:
 * what its Proof goes to.
 */
export interface Handshake {
  /**
   * Verifies the peer's Proof (asynchronously: signatures), then joins it
   * synchronously: the registry's address, the takeover of an older peer
   * with the same key, the attach to the router, the VirtualIP reply. Only
   * if the peer is still open when the verification is done; otherwise
   * nothing is written or attached. Called at most once. Never rejects: an
   * internal error is logged and closes the peer with `Internal`.
   *
   * @param proof The peer's Proof, the frame after its Hello.
   * @returns Where the peer's later frames go, or null when it was refused
   * (and closed) or closed while its Proof was verified.
   */
  prove(proof: ProofPacket): Promise<Dispatch | null>;
}

/** The relay's side of the seam: what a carrier calls as its client comes and goes. */
export interface PeerHost {
  /**
   * Handles a peer's Hello within the carrier's read turn: checks its
   * version and sends the Challenge. Returns the handshake its Proof goes
   * to, or null when the relay refused it and has closed it. A carrier
   * answers any frame other than a Proof after it, and any frame at all
   * while the Proof is verified, with `UnexpectedPacket`.
   */
  greet(peer: Peer, hello: HelloPacket): Handshake | null;
  /**
   * Called once per peer as it closes, joined or not, before its close
   * first awaits: its connections and requests end, its address goes
   * offline unless a newer peer holds it, and the relay logs why it left.
   */
  leave(peer: Peer, reason: Reason, message: string): void;
}
