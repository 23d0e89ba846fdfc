/**
 * The relay's listening sockets: the relay port and, when asked for, the
 * WebSocket port; each plain TCP, or TLS when the relay has a certificate.
 * Either way the frames are the same; TLS only wraps the bytes.
 *
 * @module
 */

import type { RelayConfig } from "./config.ts";

/** A connection the relay accepts: plain TCP, or TLS over it. */
export type RelayConn = Deno.TcpConn | Deno.TlsConn;

/** What the relay accepts links from. */
export type RelayListener = Deno.Listener<RelayConn, Deno.NetAddr>;

/**
 * Listens on `config.hostname:config.port` with `config.tcpBacklog`, over TLS
 * when `config.tls` is set. The TLS handshake of each link runs inside its
 * first read, so a slow or silent TLS client holds up neither the accept loop
 * nor anyone else, and counts against the relay's Hello time-out.
 *
 * @param config The relay's settings.
 * @returns The listener; throws `Deno.listen`'s error (such as AddrInUse), or
 * an Error that says the certificate or key is unusable.
 */
export function listenRelay(
  config: Pick<RelayConfig, "hostname" | "port" | "tcpBacklog" | "tls">,
): RelayListener {
  return listenOn(config, config.port);
}

/**
 * Listens for WebSocket links on `config.hostname:config.websocketPort`,
 * with the relay port's backlog and, when `config.tls` is set, its
 * certificate (wss://). The HTTP upgrade of each link runs inside its first
 * read, after the TLS handshake.
 *
 * @param config The relay's settings; `websocketPort` must not be null.
 * @returns The listener; throws as {@linkcode listenRelay} does.
 */
export function listenWebSocket(
  config: Pick<RelayConfig, "hostname" | "websocketPort" | "tcpBacklog" | "tls">,
): RelayListener {
  if (config.websocketPort === null) throw new TypeError("no websocketPort to listen on");
  return listenOn(config, config.websocketPort);
}

function listenOn(
  config: Pick<RelayConfig, "hostname" | "tcpBacklog" | "tls">,
  port: number,
): RelayListener {
  const options = {
    hostname: config.hostname,
    port,
    transport: "tcp",
    tcpBacklog: config.tcpBacklog,
  } as const;
  if (config.tls === null) return Deno.listen(options);
  try {
    return Deno.listenTls({ ...options, cert: config.tls.cert, key: config.tls.key });
  } catch (error) {
    // Deno checks the PEM text (InvalidData) and that the key matches the certificate (a plain
    // Error) here, at start; anything else, such as AddrInUse, is not about the files.
    const unusable = error instanceof Deno.errors.InvalidData ||
      (error instanceof Error && error.constructor === Error);
    if (!unusable) throw error;
    throw new Error(
      `Cannot use the TLS certificate and key: ${error.message}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Turns Nagle's algorithm off on a plain TCP link (the frame writer already
 * writes once per batch). A TLS link has no such switch in Deno: its socket
 * keeps Deno's default.
 *
 * @param conn An accepted link.
 */
export function setNoDelay(conn: RelayConn): void {
  if ("setNoDelay" in conn) conn.setNoDelay(true);
}
