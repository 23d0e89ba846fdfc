/**
 * The relay's part in a cluster: the relay-link port, one authenticated link
 * per other relay, and the directory (NATS presence) through which it
 * announces its own clients and finds the relay that holds any other.
 *
 * A link between two relays is always dialed by the one whose node id is
 * lower: the higher asks it to, through the directory, and waits for the
 * link to arrive. So there is never more than one link per pair.
 *
 * @module
 */

import { Reason } from "../../protocol/reason.ts";
import { advertisedMesh } from "../config.ts";
import { splitHostPort } from "../host_port.ts";
import { hexOf } from "../registry_key.ts";
import type { Logger } from "../log.ts";
import type { Dispatch, Peer } from "../peer.ts";
import type { Router, RouterCluster } from "../router.ts";
import { MeshFrameReader, NODE_ID_BYTES } from "./mesh_frames.ts";
import { acceptHandshake, dialHandshake, importMeshKey } from "./mesh_handshake.ts";
import { MeshLink, type MeshLinkHost } from "./mesh_link.ts";
import { RemotePeer } from "./remote_peer.ts";
import { isNodeInfo, type NodeInfo } from "../cluster/presence_wire.ts";

/** A relay of the cluster as the directory knows it (its node id and link address). */
export type { NodeInfo };

/**
 * Where the relays of a cluster find each other's clients: the NATS
 * presence (`server/cluster/presence.ts`) implements it.
 */
export interface Directory {
  /** This relay now holds the client at `address`. */
  announce(address: number): void;
  /** This relay no longer holds it. */
  withdraw(address: number): void;
  /** Which other relay holds it; null at once when none does. Never rejects. */
  locate(address: number): Promise<NodeInfo | null>;
  /** Tells the other relays this one admitted the client at `address` at `at` (unix ms). */
  claim(address: number, at: number): void;
  /** Called when another relay claims an address. */
  onClaim: ((address: number, node: string, at: number) => void) | null;
  /** Answers other relays' requests that this one dial them. */
  serveDial(handler: (from: NodeInfo) => Promise<void>): void;
  /** Asks relay `node` to dial this one; resolves once it says the link is up. */
  requestDial(node: string, timeoutMs?: number): Promise<void>;
}

/** What the mesh needs of the relay. */
export interface MeshOptions {
  /** Where the relay-link port listens. */
  readonly hostname: string;
  /** The relay-link port; 0 picks a free one. */
  readonly port: number;
  /** The shared mesh key: 32 bytes. */
  readonly key: Uint8Array;
  /**
   * Serve the link port over TLS with this certificate, and dial the other
   * relays' over TLS; null for plain TCP (the key still authenticates).
   */
  readonly tls: { readonly cert: string; readonly key: string } | null;
  /** With `tls`: the authorities trusted for the other relays' certificates; null: the system's. */
  readonly caCerts: string[] | null;
  /** Where other relays dial: a host (with `port`'s real port), or `HOST:PORT`. */
  readonly advertise: string;
  /** How long a link's handshake may take, and a dial. */
  readonly handshakeTimeoutMs: number;
  /** A quiet link is pinged this often ... */
  readonly keepaliveMs: number;
  /** ... and closed when silent this long. */
  readonly peerTimeoutMs: number;
  /** Most clients of one other relay routed here at once. */
  readonly maxPeersPerLink: number;
  readonly log: Logger;
}

/** A relay link's socket: TCP, or TLS when the relay serves TLS. */
type LinkConn = Deno.TcpConn | Deno.TlsConn;

function closeQuietly(conn: LinkConn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/** Links still in their handshake at once, at most: the port is for relays, not the public. */
const MAX_HANDSHAKES = 16;
/**
 * Of those, from one source IP. Past either bound the oldest handshake (of
 * that IP, or of all) is closed for the newest: idle sockets cannot keep a
 * relay out, since its handshake takes one round trip, and an address with
 * many sockets open only ever displaces its own.
 */
const MAX_HANDSHAKES_PER_IP = 2;
/**
 * Relays whose link address is remembered (for dials and redials): relays
 * get a new node id at every start, so without a bound restarts would grow it.
 */
const MAX_KNOWN_RELAYS = 1024;
/** Lookups in flight at once, relay-wide; past that, a request finds its destination Offline. */
const MAX_LOOKUPS = 4096;
/** Redials of a broken link: the first after this, doubling... */
const REDIAL_FIRST_MS = 250;
/** ... up to this, ... */
const REDIAL_MAX_MS = 4000;
/** ... this many times. */
const REDIAL_ATTEMPTS = 8;

/** The relay's links to the other relays of its cluster. */
export class Mesh implements RouterCluster {
  /** This relay as the directory knows it. */
  readonly self: NodeInfo;

  // Static after construction.
  readonly #options: MeshOptions;
  readonly #listener: Deno.Listener<LinkConn>;
  readonly #key: CryptoKey;
  readonly #nodeBytes: Uint8Array;
  // Set once, by join().
  #router: Router | null = null;
  #linkHost: MeshLinkHost | null = null;
  #directory: Directory | null = null;

  // Owned by the accept loop, the dials and close().
  readonly #links = new Map<string, MeshLink>();
  readonly #runs = new Set<Promise<void>>();
  readonly #dials = new Map<string, Promise<MeshLink | null>>();
  readonly #linkWaiters = new Map<string, Set<(link: MeshLink | null) => void>>();
  /** Where each relay seen was reached: what a redial dials. */
  readonly #known = new Map<string, string>();
  readonly #lookups = new Map<number, Promise<void>>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  /** Links in their handshake, oldest first, with their source IPs. */
  readonly #handshakes = new Map<LinkConn, string>();
  readonly #handshakesPerIp = new Map<string, number>();
  #accepting: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(options: MeshOptions, listener: Deno.Listener<LinkConn>, key: CryptoKey) {
    this.#options = options;
    this.#listener = listener;
    this.#key = key;
    this.#nodeBytes = crypto.getRandomValues(new Uint8Array(NODE_ID_BYTES));
    this.self = {
      node: hexOf(this.#nodeBytes),
      mesh: advertisedMesh(options.advertise, (listener.addr as Deno.NetAddr).port),
    };
  }

  /**
   * Listens on the relay-link port (links are accepted once the mesh
   * {@linkcode join}s its router). Throws `Deno.listen`'s error (a port in use).
   */
  static async listen(options: MeshOptions): Promise<Mesh> {
    const key = await importMeshKey(options.key);
    const address = { hostname: options.hostname, port: options.port, transport: "tcp" } as const;
    const listener: Deno.Listener<LinkConn> = options.tls === null
      ? Deno.listen(address)
      : Deno.listenTls({ ...address, cert: options.tls.cert, key: options.tls.key });
    return new Mesh(options, listener, key);
  }

  /** The relay-link port's address, with the real port. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** Links open now. */
  get linkCount(): number {
    return this.#links.size;
  }

  /** The open link to relay `node`, if any (for tests and the status of the cluster). */
  linkTo(node: string): MeshLink | undefined {
    return this.#links.get(node);
  }

  /**
   * Starts serving the cluster: makes `router` part of it (before any client
   * joins it), finds other relays' clients through `directory`, and accepts links.
   */
  join(directory: Directory, router: Router): void {
    if (this.#router !== null) throw new Error("Cannot join: the mesh has joined already");
    this.#router = router;
    this.#linkHost = {
      log: this.#options.log,
      maxPeers: this.#options.maxPeersPerLink,
      attachRemote: (peer: Peer): Dispatch | null => router.attachRemote(peer),
      holdsLocally: (address: number) => {
        const peer = router.peerAt(address);
        return peer !== undefined && peer.remote !== true;
      },
      detach: (peer: Peer, reason: Reason) => void router.detach(peer, reason),
      ended: (link, reason) => this.#ended(link, reason),
    };
    this.#directory = directory;
    directory.onClaim = (address, node, at) => this.#onClaim(address, node, at);
    directory.serveDial(async (from) => {
      if (!isNodeInfo(from)) {
        throw new Error("a dial request names no relay-link address");
      }
      this.#remember(from);
      const link = await this.#dial(from.node);
      if (link === null) throw new Error(`could not dial ${from.mesh}`);
    });
    router.joinCluster(this);
    this.#accepting = this.#accept();
    const interval = Math.max(50, Math.min(1000, Math.floor(this.#options.keepaliveMs / 4)));
    this.#sweepTimer = setInterval(() => this.#sweep(), interval);
  }

  /** See {@linkcode RouterCluster.joined}: announce, and claim it from any relay that held it. */
  joined(address: number, at: number): void {
    this.#directory?.announce(address);
    this.#directory?.claim(address, at);
  }

  /** See {@linkcode RouterCluster.left}. */
  left(address: number): void {
    this.#directory?.withdraw(address);
    for (const link of this.#links.values()) link.gone(address);
  }

  /** See {@linkcode RouterCluster.locate}: at most one lookup per address at a time. */
  readonly locate = (address: number): Promise<void> => {
    const running = this.#lookups.get(address);
    if (running !== undefined) return running;
    if (this.#lookups.size >= MAX_LOOKUPS || this.#closed) return Promise.resolve();
    const lookup = this.#locate(address).catch((error) => {
      this.#options.log.log("error", "internal-error", { during: "lookup", error: String(error) });
    }).finally(() => this.#lookups.delete(address));
    this.#lookups.set(address, lookup);
    return lookup;
  };

  async #locate(address: number): Promise<void> {
    const holder = await this.#directory?.locate(address) ?? null;
    if (holder === null || holder.node === this.self.node || this.#closed) return;
    if (!isNodeInfo(holder)) return;
    this.#remember(holder);
    const link = this.#links.get(holder.node) ?? await this.#connect(holder.node);
    // Attached unless a client of this relay took the address meanwhile.
    link?.peerFor(address);
  }

  /** Notes where relay `info.node` is reached, forgetting the longest-known past a bound. */
  #remember(info: NodeInfo): void {
    this.#known.delete(info.node);
    if (this.#known.size >= MAX_KNOWN_RELAYS) this.#known.delete(this.#known.keys().next().value!);
    this.#known.set(info.node, info.mesh);
  }

  /** A link to `node`: dialed when this relay's id is the lower, else asked for. */
  #connect(node: string): Promise<MeshLink | null> {
    if (this.self.node < node) return this.#dial(node);
    const arrived = this.#waitForLink(node);
    return this.#directory!.requestDial(node, this.#options.handshakeTimeoutMs).then(
      () => arrived,
      (error) => {
        this.#options.log.log("warn", "mesh-dial-refused", { node, error: String(error) });
        return null;
      },
    );
  }

  /** Resolves with the link to `node` once it is open, or null after the handshake time-out. */
  #waitForLink(node: string): Promise<MeshLink | null> {
    const open = this.#links.get(node);
    if (open !== undefined) return Promise.resolve(open);
    return new Promise((resolve) => {
      const waiters = this.#linkWaiters.get(node) ?? new Set();
      this.#linkWaiters.set(node, waiters);
      const done = (link: MeshLink | null) => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.#linkWaiters.get(node) === waiters) {
          this.#linkWaiters.delete(node);
        }
        resolve(link);
      };
      const timer = setTimeout(() => done(null), this.#options.handshakeTimeoutMs);
      this.#timers.add(timer);
      waiters.add(done);
    });
  }

  /** Dials relay `node` at its known address, once at a time; null when it fails. */
  #dial(node: string): Promise<MeshLink | null> {
    const open = this.#links.get(node);
    if (open !== undefined) return Promise.resolve(open);
    let dial = this.#dials.get(node);
    if (dial === undefined) {
      dial = this.#dialOnce(node).finally(() => this.#dials.delete(node));
      this.#dials.set(node, dial);
    }
    return dial;
  }

  async #dialOnce(node: string): Promise<MeshLink | null> {
    const target = splitHostPort(this.#known.get(node) ?? "");
    if (target === null || this.#closed) return null;
    let conn: LinkConn | null = null;
    const timer = setTimeout(() => {
      try {
        conn?.close();
      } catch {
        // Closed already.
      }
    }, this.#options.handshakeTimeoutMs);
    try {
      const tls = this.#options.tls;
      conn = tls === null
        ? await Deno.connect({ hostname: target.hostname, port: target.port })
        : await Deno.connectTls({
          hostname: target.hostname,
          port: target.port,
          caCerts: this.#options.caCerts ?? undefined,
        });
      if ("setNoDelay" in conn) conn.setNoDelay(true);
      const reader = new MeshFrameReader();
      const theirs = hexOf(await dialHandshake(conn, reader, this.#key, this.#nodeBytes));
      if (theirs !== node) throw new Error(`${target.hostname}:${target.port} is relay ${theirs}`);
      clearTimeout(timer);
      return this.#opened(conn, reader, theirs);
    } catch (error) {
      clearTimeout(timer);
      try {
        conn?.close();
      } catch {
        // Closed already.
      }
      if (!this.#closed) {
        this.#options.log.log("warn", "mesh-dial-failed", {
          relay: this.#known.get(node) ?? node,
          error: error instanceof Error ? error.message : String(error),
        });
      }
      return null;
    }
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
        const fromIp = this.#handshakesPerIp.get(ip) ?? 0;
        // A closed handshake's #welcome fails and frees its place.
        if (fromIp >= MAX_HANDSHAKES_PER_IP) {
          for (const [pending, from] of this.#handshakes) {
            if (from === ip) {
              closeQuietly(pending);
              break;
            }
          }
        } else if (this.#handshakes.size >= MAX_HANDSHAKES) {
          const [oldest] = this.#handshakes.keys();
          closeQuietly(oldest);
        }
        this.#handshakes.set(conn, ip);
        this.#handshakesPerIp.set(ip, fromIp + 1);
        void this.#welcome(conn).finally(() => {
          this.#handshakes.delete(conn);
          const left = (this.#handshakesPerIp.get(ip) ?? 1) - 1;
          if (left === 0) this.#handshakesPerIp.delete(ip);
          else this.#handshakesPerIp.set(ip, left);
        });
      }
    } catch (error) {
      if (!this.#closed) {
        this.#options.log.log("error", "accept-failed", { port: "mesh", error: String(error) });
      }
    }
  }

  async #welcome(conn: LinkConn): Promise<void> {
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }, this.#options.handshakeTimeoutMs);
    try {
      if ("setNoDelay" in conn) conn.setNoDelay(true);
      const reader = new MeshFrameReader();
      const node = hexOf(await acceptHandshake(conn, reader, this.#key, this.#nodeBytes));
      clearTimeout(timer);
      if (this.#closed) return conn.close();
      this.#opened(conn, reader, node);
    } catch (error) {
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // Closed already.
      }
      // Anyone can reach the port: refusals are logged at debug only.
      this.#options.log.log("debug", "mesh-refused", {
        client: (conn.remoteAddr as Deno.NetAddr).hostname,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** Makes an authenticated socket the link to `node`, replacing an older one. */
  #opened(conn: LinkConn, reader: MeshFrameReader, node: string): MeshLink {
    const link = new MeshLink(
      conn,
      reader,
      node,
      (conn.remoteAddr as Deno.NetAddr).hostname,
      this.#linkHost!,
    );
    // The newer link wins: the old one's other end thought it dead, or will.
    this.#links.get(node)?.close("replaced by a newer link");
    this.#links.set(node, link);
    this.#options.log.log("info", "mesh-link", { relay: link.remoteIp, node });
    const run = link.run().finally(() => this.#runs.delete(run));
    this.#runs.add(run);
    for (const wake of [...(this.#linkWaiters.get(node) ?? [])]) wake(link);
    return link;
  }

  #ended(link: MeshLink, reason: string): void {
    if (this.#links.get(link.node) !== link) return;
    this.#links.delete(link.node);
    if (this.#closed) return;
    this.#options.log.log("warn", "mesh-link-down", { relay: link.remoteIp, reason });
    if (this.self.node < link.node) this.#redial(link.node, 0);
  }

  /** Dials a lost link again, backing off, while the other relay may still be there. */
  #redial(node: string, attempt: number): void {
    if (attempt >= REDIAL_ATTEMPTS || this.#closed) return;
    const delay = Math.min(REDIAL_MAX_MS, REDIAL_FIRST_MS * 2 ** attempt);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#links.has(node) || this.#closed) return;
      void this.#dial(node).then((link) => {
        if (link === null) this.#redial(node, attempt + 1);
      });
    }, delay);
    this.#timers.add(timer);
  }

  /**
   * Another relay admitted `address` at `at`: an older link of that client
   * here goes. Older by (admission time, node id), so of two joins that
   * cross, exactly one survives, whichever way the clocks differ.
   */
  #onClaim(address: number, node: string, at: number): void {
    if (node === this.self.node) return;
    const peer = this.#router?.peerAt(address);
    if (peer === undefined) return;
    if (peer instanceof RemotePeer) {
      // Reached through the claimant already; else stale: its relay lost the client to the claimant.
      if (peer.relayNode !== node) void peer.close(Reason.Replaced);
      return;
    }
    const joinedAt = this.#router!.joinedAt(address) ?? 0;
    if (joinedAt > at || (joinedAt === at && this.self.node > node)) return;
    void peer.close(
      Reason.Replaced,
      "a newer client with your identity joined another relay of the cluster",
    );
  }

  #sweep(): void {
    const now = performance.now();
    for (const link of [...this.#links.values()]) {
      link.checkLiveness(now, this.#options.keepaliveMs, this.#options.peerTimeoutMs);
    }
  }

  /** Stops listening and closes every link; the directory is the relay's to close. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    // Lookups waiting for a link that will never come now end (their timers go below).
    for (const waiters of [...this.#linkWaiters.values()]) {
      for (const wake of [...waiters]) wake(null);
    }
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    try {
      this.#listener.close();
    } catch {
      // Closed already.
    }
    await this.#accepting;
    for (const link of [...this.#links.values()]) link.close("the relay is shutting down");
    await Promise.all([...this.#runs, ...this.#dials.values()]);
    await Promise.all(this.#lookups.values());
  }
}
