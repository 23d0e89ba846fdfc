/**
 * Two relays' routing cores joined by a real relay link on 127.0.0.1: each a
 * Router with a Mesh, their clients stand-ins that record what the router
 * sends them. The directory between them is in memory (the NATS presence
 * has tests of its own), so these tests are about the link: the handshake,
 * the translation of frames and ids, the end of a link.
 */

import { DEFAULT_RELAY_CONFIG } from "../../server/config.ts";
import { Logger } from "../../server/log.ts";
import { Router } from "../../server/router.ts";
import type { Dispatch, Peer } from "../../server/peer.ts";
import { type Directory, Mesh, type NodeInfo } from "../../server/mesh/mesh.ts";
import type { Packet } from "../../protocol/packets.ts";
import type { Reason } from "../../protocol/reason.ts";
import { withTimeout } from "../_helpers/async.ts";

/** A client of one relay: records every frame the router sends it. */
export class RecordingPeer implements Peer {
  address: number;
  readonly realIp = "127.0.0.1";
  dataWritten: ((bytes: number) => void) | undefined;
  readonly received: Packet[] = [];
  closedWith: Reason | null = null;
  dispatch: Dispatch | null = null;
  #waiters: (() => void)[] = [];

  constructor(address: number) {
    this.address = address;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }
  get congested(): boolean {
    return false;
  }
  room(): undefined {
    return undefined;
  }
  takeRequestToken(): boolean {
    return true;
  }
  send(packet: Packet): void {
    this.received.push(packet);
    this.#wake();
  }
  sendData(connectionId: number, payload: Uint8Array): void {
    this.send({ type: 0x20, connectionId, payload: payload.slice() } as Packet);
    this.dataWritten?.(payload.length + 9);
  }
  sendWindowUpdate(connectionId: number, increment: number): void {
    this.send({ type: 0x21, connectionId, increment } as Packet);
  }
  close(reason: Reason): void {
    this.closedWith ??= reason;
    this.#wake();
  }

  /** The next frame of `type` received from now on or already waiting (taken out). */
  async next<T extends Packet["type"]>(
    type: T,
    what = `frame 0x${type.toString(16)}`,
  ): Promise<Extract<Packet, { type: T }>> {
    return await withTimeout(
      (async () => {
        for (;;) {
          const at = this.received.findIndex((packet) => packet.type === type);
          if (at >= 0) return this.received.splice(at, 1)[0] as Extract<Packet, { type: T }>;
          await new Promise<void>((resolve) => this.#waiters.push(resolve));
        }
      })(),
      5000,
      what,
    );
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** The in-memory directory of a test cluster: who holds which address. */
export class TestDirectoryHub {
  readonly holders = new Map<number, NodeInfo>();
  readonly dialers = new Map<string, (from: NodeInfo) => Promise<void>>();
  readonly members: { self: NodeInfo; directory: Directory }[] = [];
  /** Dial requests made through the hub. */
  dialRequests = 0;

  directoryFor(self: NodeInfo): Directory {
    const directory: Directory = {
      onClaim: null,
      announce: (address) => void this.holders.set(address, self),
      withdraw: (address) => {
        if (this.holders.get(address)?.node === self.node) this.holders.delete(address);
      },
      locate: (address) => {
        const holder = this.holders.get(address);
        return Promise.resolve(holder === undefined || holder.node === self.node ? null : holder);
      },
      claim: (address, at) => {
        for (const member of this.members) {
          if (member.self.node !== self.node) member.directory.onClaim?.(address, self.node, at);
        }
      },
      serveDial: (handler) => void this.dialers.set(self.node, handler),
      requestDial: (node) => {
        this.dialRequests++;
        const handler = this.dialers.get(node);
        return handler === undefined ? Promise.reject(new Error("no such relay")) : handler(self);
      },
    };
    this.members.push({ self, directory });
    return directory;
  }
}

/** One relay's core: a router and its mesh. */
export interface TestRelay {
  readonly router: Router;
  readonly mesh: Mesh;
  /** A joined client at `address`. */
  client(address: number): RecordingPeer;
}

/** Starts a relay core on a free loopback port, in `hub`'s cluster, with `key`. */
export async function startTestRelay(
  hub: TestDirectoryHub,
  key: Uint8Array,
  overrides: Partial<typeof DEFAULT_RELAY_CONFIG> = {},
): Promise<TestRelay> {
  const config = { ...DEFAULT_RELAY_CONFIG, ...overrides };
  const log = new Logger("silent");
  const router = new Router(config, log);
  const mesh = await Mesh.listen({
    hostname: "127.0.0.1",
    port: 0,
    key,
    tls: null,
    caCerts: null,
    advertise: "127.0.0.1",
    handshakeTimeoutMs: 2000,
    keepaliveMs: config.keepaliveMs,
    peerTimeoutMs: config.peerTimeoutMs,
    maxPeersPerLink: 1000,
    log,
  });
  mesh.join(hub.directoryFor(mesh.self), router);
  return {
    router,
    mesh,
    client(address: number): RecordingPeer {
      const peer = new RecordingPeer(address);
      peer.dispatch = router.attach(peer);
      return peer;
    },
  };
}

/** A fresh 32-byte mesh key. */
export function meshKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}
