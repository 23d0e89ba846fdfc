/**
 * Telling a TLS peer from an AlphaNET one by the first bytes of a link, so
 * that a client and a relay that disagree about TLS say so instead of
 * reporting a garbled frame.
 *
 * Every AlphaNET frame opens with its body length as a big-endian u32, and no
 * body reaches 16 MiB, so the first byte of a link is always 0x00. A TLS
 * record opens with its content type (20..23) and the major version 3: a TLS
 * client's ClientHello is `16 03 01 ..`, a TLS server's answer to bytes that
 * are not TLS is an alert, `15 03 03 00 02 02 ..`. The two never overlap.
 *
 * @module
 */

import type { ByteSource } from "./read_loop.ts";

/** TLS record content types (RFC 8446 §5.1): change_cipher_spec .. application_data. */
const TLS_CONTENT_TYPE_MIN = 20;
const TLS_CONTENT_TYPE_MAX = 23;
/** The major version byte of every TLS record since SSL 3.0. */
const TLS_MAJOR_VERSION = 3;
/** Bytes the check looks at: content type and major version. */
const TLS_SNIFF_BYTES = 2;

/**
 * Whether `bytes`, the first bytes of a link, look like a TLS record.
 *
 * @param bytes The start of what the peer sent.
 * @returns True for a TLS record header; false for anything else, or fewer than 2 bytes.
 */
export function looksLikeTlsRecord(bytes: Uint8Array): boolean {
  return bytes.length >= TLS_SNIFF_BYTES && bytes[0] >= TLS_CONTENT_TYPE_MIN &&
    bytes[0] <= TLS_CONTENT_TYPE_MAX && bytes[1] === TLS_MAJOR_VERSION;
}

/**
 * Wraps `conn` for a read loop so that its first read is checked for a TLS
 * record. If it is one, `onTls` runs and the read reports the end of the
 * stream (the link is over: nothing after it can be a frame). After the
 * first read the wrapper's `read` is the connection's own, so the check
 * costs nothing on the path data takes.
 *
 * @param conn Where the bytes come from.
 * @param onTls Called once, synchronously, when the first read is a TLS record.
 * @returns A source to hand to `readFrames` instead of `conn`.
 */
export function sniffFirstRead(conn: ByteSource, onTls: () => void): ByteSource {
  const source: ByteSource = {
    async read(buffer: Uint8Array): Promise<number | null> {
      source.read = conn.read.bind(conn);
      const count = await conn.read(buffer);
      if (count !== null && looksLikeTlsRecord(buffer.subarray(0, count))) {
        onTls();
        return null;
      }
      return count;
    },
  };
  return source;
}
