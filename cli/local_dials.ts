/**
 * `expose`'s connections to its local service, made before a virtual
 * connection is accepted: a service that is down turns into a refused
 * connection at the other end ("connection denied"), not an accepted one
 * that closes without a byte.
 *
 * @module
 */

import type { HostPort } from "./args.ts";
import { formatHostPort } from "./args.ts";
import { stateOf } from "./errors.ts";
import type { EventLog } from "./log.ts";

/**
 * How long a dialed connection waits for its virtual connection. The accept
 * filter said yes, but the client may still deny (a full backlog, a link
 * that dropped meanwhile): then nobody claims the dial and it is closed.
 */
const CLAIM_MS = 30_000;

/** The peer a virtual connection comes from, as the client reports it. */
export interface RemoteAddr {
  /** Virtual IPv4 of the peer. */
  readonly hostname: string;
  /** The peer's virtual port. */
  readonly port: number;
}

/** Local TCP connections dialed for virtual connections not yet accepted, by remote address. */
export class LocalDials {
  readonly #local: HostPort;
  readonly #command: string;
  readonly #log: EventLog;
  readonly #waiting = new Map<
    string,
    { tcp: Deno.TcpConn; timer: ReturnType<typeof setTimeout> }
  >();

  /** Dials `local`; `command` prefixes the one-line notices of failed dials, which go to `log`. */
  constructor(local: HostPort, command: string, log: EventLog) {
    this.#local = local;
    this.#command = command;
    this.#log = log;
  }

  /**
   * The accept filter: connects to the local service for a connection from
   * `remote`; true once connected, false (deny) with one line if the
   * service refuses: "<command>: connection from VIP:PORT: cannot connect
   * to HOST:PORT: <why>; denied".
   */
  async dial(remote: RemoteAddr): Promise<boolean> {
    const key = `${remote.hostname}:${remote.port}`;
    let tcp: Deno.TcpConn;
    try {
      tcp = await Deno.connect({ ...this.#local, transport: "tcp" });
    } catch (error) {
      const service = formatHostPort(this.#local);
      const line = `cannot connect to ${service}: ${stateOf(error)}`;
      this.#log.log(
        "warn",
        "dial-failed",
        `${this.#command}: connection from ${key}: ${line}; denied`,
        { from: key, service, error: line },
      );
      return false;
    }
    tcp.setNoDelay(true);
    this.#waiting.get(key)?.tcp.close(); // A stale dial for a reused port: never claimed.
    const timer = setTimeout(() => this.#drop(key), CLAIM_MS);
    this.#waiting.set(key, { tcp, timer });
    return true;
  }

  /** The connection dialed for `remote`, or null if there is none. */
  take(remote: RemoteAddr): Deno.TcpConn | null {
    const key = `${remote.hostname}:${remote.port}`;
    const entry = this.#waiting.get(key);
    if (entry === undefined) return null;
    clearTimeout(entry.timer);
    this.#waiting.delete(key);
    return entry.tcp;
  }

  /** Closes every unclaimed connection. */
  closeAll(): void {
    for (const key of [...this.#waiting.keys()]) this.#drop(key);
  }

  #drop(key: string): void {
    const entry = this.#waiting.get(key);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.#waiting.delete(key);
    try {
      entry.tcp.close();
    } catch {
      // Already closed.
    }
  }
}
