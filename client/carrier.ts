/**
 * What a link needs of the byte stream under it: a TCP (or TLS) connection
 * to the relay, or a WebSocket to it (`websocket_dial.ts`). A `Deno.Conn`
 * has this shape already; the WebSocket adapter takes it on.
 *
 * @module
 */

import type { ByteSource } from "../transport/read_loop.ts";
import type { ByteSink } from "../transport/frame_writer.ts";

/**
 * The byte stream of a link in both directions (docs/PROTOCOL.md §2): the
 * read loop reads it, the frame writer writes it, the link closes it.
 */
export interface Carrier extends ByteSource, ByteSink {
  /** Closes the stream; a pending read then settles. Throws if it is already closed. */
  close(): void;
  /** Lets the stream keep the process alive (Deno); absent where that cannot be chosen. */
  ref?(): void;
  /** Lets the process exit while the stream is open (Deno); absent where that cannot be chosen. */
  unref?(): void;
}
