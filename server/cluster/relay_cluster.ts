/**
 * What a relay started with `nats` (and `meshPort`, `meshKey`) runs beside
 * its client ports: the relay-link port and its links, and its presence in
 * NATS. Started before the relay accepts clients, joined to its router
 * before any client joins, closed before its clients are let go.
 *
 * @module
 */

import { splitHostPort } from "../host_port.ts";
import type { RelayConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { Mesh } from "../mesh/mesh.ts";
import type { Router } from "../router.ts";
import { Presence } from "./presence.ts";

/** Longest a relay link's handshake (and a dial) may take. */
const MESH_HANDSHAKE_MS = 5_000;

/** Hex digits of the network id in the NATS subject prefix: enough to keep two networks apart. */
const PREFIX_ID_DIGITS = 16;

/** Whether a `host:port` names this machine only (127.0.0.0/8, ::1, localhost). */
function isLoopbackMesh(mesh: string): boolean {
  const host = splitHostPort(mesh)?.hostname ?? "";
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The NATS subject prefix of the network whose id is `networkId` (hex). */
function subjectPrefix(networkId: string): string {
  return `alphanet.${networkId.slice(0, PREFIX_ID_DIGITS)}`;
}

/** A relay's links and presence in its cluster. */
export class RelayCluster {
  /** The relay links. */
  readonly mesh: Mesh;
  /** The presence in NATS. */
  readonly presence: Presence;
  #closing: Promise<void> | null = null;

  private constructor(mesh: Mesh, presence: Presence) {
    this.mesh = mesh;
    this.presence = presence;
  }

  /**
   * Listens on the relay-link port; null for a relay without `nats`. The
   * port comes first: the registry names this relay by it. Throws when it
   * cannot listen (a port in use).
   */
  static listen(config: RelayConfig, log: Logger): Promise<Mesh | null> {
    if (config.nats === null || config.meshPort === null || config.meshKey === null) {
      return Promise.resolve(null);
    }
    return Mesh.listen({
      hostname: config.hostname,
      port: config.meshPort,
      key: config.meshKey,
      tls: config.tls,
      caCerts: config.meshCaCerts,
      advertise: config.advertise ?? config.hostname,
      // A relay's handshake is one round trip: a silent socket is not kept as long as a client's.
      handshakeTimeoutMs: Math.min(config.helloTimeoutMs, MESH_HANDSHAKE_MS),
      keepaliveMs: config.keepaliveMs,
      peerTimeoutMs: config.peerTimeoutMs,
      maxPeersPerLink: config.maxClients,
      log,
    });
  }

  /**
   * Connects `mesh`'s relay to NATS, in the subjects of the network whose id
   * is `networkId` (hex). Throws (and closes the mesh) when NATS cannot be
   * reached: a relay that cannot be part of its cluster does not start.
   */
  static async connect(
    mesh: Mesh,
    config: RelayConfig,
    networkId: string,
    log: Logger,
  ): Promise<RelayCluster> {
    try {
      const presence = await Presence.connect({
        url: config.nats!,
        prefix: subjectPrefix(networkId),
        self: mesh.self,
        key: config.meshKey!,
        log,
      });
      log.log("info", "cluster", { node: mesh.self.node, mesh: mesh.self.mesh });
      if (config.tls === null && !isLoopbackMesh(mesh.self.mesh)) {
        // After the handshake a plain link carries client bytes unprotected: the operator must know.
        log.log("warn", "mesh-plaintext", {
          mesh: mesh.self.mesh,
          note: "relay links are plain TCP: serve TLS (--tls-cert) or keep the mesh port private",
        });
      }
      return new RelayCluster(mesh, presence);
    } catch (error) {
      await mesh.close();
      throw error;
    }
  }

  /** Makes `router` part of the cluster; before any client joins it. */
  join(router: Router): void {
    this.mesh.join(this.presence, router);
  }

  /**
   * Leaves the cluster: the presence first (other relays find this one's
   * clients nowhere from then on), then the links. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.presence.close().finally(() => this.mesh.close());
    return this.#closing;
  }
}
