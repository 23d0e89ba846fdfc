/**
 * What a client session reads its frames from and writes them to: the byte
 * stream of PROTOCOL.md §2 over a TCP (or TLS) connection, or over a
 * WebSocket. The session, its read loop, pacing, frame writer and budgets
 * only see this surface, so every carrier gets exactly the same rules.
 *
 * @module
 */

import { sniffFirstRead } from "../transport/tls_sniff.ts";
import type { Reason } from "../protocol/reason.ts";
import type { RelayConn } from "./listen.ts";

/**
 * How a client reached the relay: plain TCP, TLS, a WebSocket (`ws`) or a
 * WebSocket over TLS (`wss`). Shown per client on the status page.
 */
export type CarrierKind = "tcp" | "tls" | "ws" | "wss";

/** One client's link as its session uses it. */
export interface RelayCarrier {
  /** How the client reached the relay. */
  readonly kind: CarrierKind;
  /** The TCP peer's address: where the client's `realIp` comes from (never a forwarded header). */
  readonly remoteAddr: Deno.NetAddr;
  /**
   * Reads stream bytes into `buffer`: the count, or null at the end of the
   * stream. Rejects with a `ProtocolError` when the client broke the
   * carrier's own rules (a bad WebSocket frame), so the session sends its
   * Error frame before the carrier closes. Nothing is read unless called:
   * not calling it is the backpressure.
   */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes` (at least one), in order; resolves with how many. */
  write(bytes: Uint8Array): Promise<number>;
  /**
   * Ends the link after the session's last frames are written, telling the
   * client why where the carrier can (a WebSocket's close code and reason),
   * from the `reason` and `message` the session closed with. Never rejects.
   */
  close(reason: Reason, message: string): Promise<void>;
  /**
   * Bytes the carrier read off the socket since the last call that were not
   * stream bytes (a WebSocket's headers and control frames): charged to the
   * client's byte rate, not counted as life. Absent on TCP, where every byte
   * read is a stream byte.
   */
  takeOverheadBytes?(): number;
}

/**
 * A TCP or TLS connection as a carrier: its own read and write; the reason
 * of a close has nowhere to go beyond the session's Error frame. A link whose
 * first bytes are a TLS record (a TLS client at a plain relay) reads as ended
 * at once, after `onTls`: closed without a word, so the client's TLS
 * handshake fails as a closed link (which it words as such) rather than on a
 * garbled record.
 *
 * @param conn An accepted connection.
 * @param kind `"tls"` for a TLS connection, else `"tcp"`.
 * @param onTls Called if the link opens with a TLS record.
 * @returns The carrier.
 */
export function streamCarrier(
  conn: RelayConn,
  kind: "tcp" | "tls",
  onTls: () => void = () => {},
): RelayCarrier {
  const source = sniffFirstRead(conn, onTls);
  return {
    kind,
    remoteAddr: conn.remoteAddr,
    read: (buffer) => source.read(buffer),
    write: (bytes) => conn.write(bytes),
    close: () => {
      closeQuietly(conn);
      return Promise.resolve();
    },
  };
}

/**
 * Closes `conn`, which may already be closed (by the peer's reset, or by a
 * close's timer).
 *
 * @param conn An accepted connection.
 */
export function closeQuietly(conn: RelayConn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
