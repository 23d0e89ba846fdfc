/**
 * The byte stream under a link: a TCP connection to the relay, wrapped in
 * TLS when the client is configured for it, with the TLS handshake done (and
 * its failures worded) before the first frame is sent.
 *
 * @module
 */

import { Closed, TimedOut } from "../errors.ts";
import type { ClientConfig } from "./options.ts";
import { relayName } from "./relays.ts";

/** The settings dialling reads. */
export type DialConfig = Pick<ClientConfig, "hostname" | "port" | "tls">;

/**
 * What a plain client says when the relay answers with a TLS record: the
 * relay was started with a certificate.
 */
export const RELAY_SPEAKS_TLS = "the relay speaks TLS (use --tls / tls: true)";

/**
 * What a TLS client says when the relay closes the link during the TLS
 * handshake: an AlphaNET relay without TLS closes a link that opens with a
 * TLS record without answering.
 */
export const RELAY_MAY_NOT_SPEAK_TLS =
  "TLS handshake failed: the relay may not speak TLS (drop --tls)";

/**
 * Connects to the relay, with `TCP_NODELAY`, and completes the TLS handshake
 * if `config.tls` says so. Rejects with Deno's connection error, TimedOut
 * when no TCP connection is made within `timeoutMs` (a relay whose machine
 * is gone answers nothing, and the OS would wait minutes), a
 * `Deno.errors.InvalidData` whose message starts "TLS handshake failed: "
 * (the relay's certificate, or a relay that does not speak TLS), TimedOut
 * when the handshake takes longer than `timeoutMs`, or Closed when `signal`
 * aborts. A rejected dial leaves nothing open.
 *
 * @param config Where the relay is and whether it speaks TLS.
 * @param timeoutMs How long the TCP connect, then the TLS handshake, may take (each).
 * @param signal Aborts the dial.
 * @returns The connection, ready for the first frame.
 */
export async function dialRelay(
  config: DialConfig,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Deno.Conn> {
  const tcp = await connectTcp(config, timeoutMs, signal);
  // Set before TLS takes the socket over: a TlsConn has no setNoDelay of its own.
  tcp.setNoDelay(true);
  if (config.tls === null) return tcp;
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.startTls(tcp, {
      hostname: config.hostname,
      caCerts: config.tls.caCerts && [...config.tls.caCerts],
    });
  } catch (error) {
    tcp.close();
    throw error;
  }
  await handshake(conn, timeoutMs, signal);
  return conn;
}

/**
 * Opens the TCP connection, bounded by `timeoutMs`: so a pass over several
 * relays moves on from one that answers nothing. Rejects with Deno's error,
 * or TimedOut.
 */
async function connectTcp(
  config: DialConfig,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Deno.TcpConn> {
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeoutMs);
  const forward = (): void => abort.abort(signal?.reason);
  signal?.addEventListener("abort", forward);
  try {
    if (signal?.aborted) forward();
    return await Deno.connect({
      hostname: config.hostname,
      port: config.port,
      transport: "tcp",
      signal: abort.signal,
    });
  } catch (error) {
    if (!timedOut) throw error;
    throw new TimedOut(
      `Cannot join relay: no TCP connection to ${relayName(config.hostname, config.port)} within ` +
        `${timeoutMs} ms`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", forward);
  }
}

/** Completes the TLS handshake of `conn` or closes it and rejects with the worded failure. */
async function handshake(
  conn: Deno.TlsConn,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  let stopped: Error | null = null;
  const stop = (error: Error): void => {
    stopped ??= error;
    try {
      conn.close(); // ends the pending handshake with an error
    } catch {
      // Already closed.
    }
  };
  const timer = setTimeout(
    () => stop(new TimedOut(`Cannot join relay: no TLS handshake within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const abort = (): void => stop(new Closed("Cannot join relay: the client is closed"));
  signal?.addEventListener("abort", abort);
  try {
    if (signal?.aborted) abort();
    await conn.handshake();
  } catch (error) {
    if (stopped === null) stop(handshakeFailure(error));
    throw stopped;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", abort);
  }
  if (stopped !== null) throw stopped;
}

/** The error a failed TLS handshake rejects with, its message naming the likely cause. */
function handshakeFailure(error: unknown): Error {
  if (
    error instanceof Deno.errors.UnexpectedEof || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe
  ) {
    return new Deno.errors.InvalidData(RELAY_MAY_NOT_SPEAK_TLS, { cause: error });
  }
  // Deno's own words name the certificate's fault: "invalid peer certificate: UnknownIssuer".
  const why = error instanceof Error ? error.message : String(error);
  return new Deno.errors.InvalidData(`TLS handshake failed: ${why}`, { cause: error });
}
