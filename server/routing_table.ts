/**
 * The relay's routing table: which peer is online at each virtual address,
 * and the book of every joined peer. Owned by the router; the data plane
 * and the request code read it to reach the other side of a connection or a
 * request (on open, settle and close, never per data frame).
 *
 * @module
 */

import { PeerBook } from "./peer_book.ts";
import type { Peer } from "./peer.ts";

/** Joined peers by address and by identity. */
export class RoutingTable {
  /** The peer that owns each address now: after a takeover, the newer one. */
  readonly #online = new Map<number, PeerBook>();
  /** Every joined peer until it leaves, a replaced one included until its close detaches it. */
  readonly #books = new Map<Peer, PeerBook>();
  /** Of the online peers, those that are clients of other relays (see `Peer.remote`). */
  #remoteCount = 0;

  /** This relay's own clients online now; clients of other relays reached over links are not counted. */
  get onlineCount(): number {
    return this.#online.size - this.#remoteCount;
  }

  /** Clients of other relays routed to now (see `Peer.remote`). */
  get remoteCount(): number {
    return this.#remoteCount;
  }

  /** The book of the peer online at `address`, if any. */
  bookAt(address: number): PeerBook | undefined {
    return this.#online.get(address);
  }

  /** The book of a joined peer; undefined once it left. */
  bookOf(peer: Peer): PeerBook | undefined {
    return this.#books.get(peer);
  }

  /** The books of the peers online now. */
  online(): IterableIterator<PeerBook> {
    return this.#online.values();
  }

  /** Opens a book for `peer` and makes it the owner of its address. */
  add(peer: Peer): PeerBook {
    const book = new PeerBook(peer);
    this.#books.set(peer, book);
    const replaced = this.#online.get(peer.address);
    if (replaced?.peer.remote === true) this.#remoteCount--;
    if (peer.remote === true) this.#remoteCount++;
    this.#online.set(peer.address, book);
    return book;
  }

  /** Forgets `book`; its address goes free unless a newer peer took it over. */
  remove(book: PeerBook): void {
    this.#books.delete(book.peer);
    if (this.#online.get(book.peer.address) !== book) return;
    this.#online.delete(book.peer.address);
    if (book.peer.remote === true) this.#remoteCount--;
  }
}
