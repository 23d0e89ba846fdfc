/**
 * Join and leave, in one place for every carrier: the Hello checks, the
 * source IP's allowance of new addresses, the registry's address, the takeover of an older peer with the same key, the
 * attach to the router and the VirtualIP reply; then, as the peer closes,
 * the detach, the registry's offline mark and the log line that says why.
 *
 * @module
 */

import { formatIpv4 } from "../protocol/address.ts";
import { PROTOCOL_VERSION } from "../protocol/constants.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason, reasonName } from "../protocol/reason.ts";
import type { HelloPacket } from "../protocol/packets.ts";
import type { Logger } from "./log.ts";
import { RateLimitedLog } from "./log_limiter.ts";
import type { Dispatch, Peer, PeerHost } from "./peer.ts";
import { identityKey, PoolExhausted, type Registry, type RegistryKey } from "./registry.ts";
import type { Router } from "./router.ts";
import type { SourceLimits } from "./source_limits.ts";

/** What membership asks of the per-IP limits: whether a source IP may register one more address. */
export type NewIdentityAllowance = Pick<SourceLimits, "admitNewIdentity">;

/** How a {@linkcode Membership} admits peers, beyond the registry and the router it fills. */
export interface MembershipOptions {
  /** Where refusals a remote party can cause at will are logged. @default {a budget of its own over the log} */
  readonly refusals?: RateLimitedLog;
  /** A key new to the registry must fit its source IP's allowance; null: no limit. @default {null} */
  readonly newIdentities?: NewIdentityAllowance | null;
  /**
   * Whether a client without an identity may join, keyed by its real IP
   * (anyone behind the same NAT can then take its address). @default {true}
   */
  readonly ipIdentities?: boolean;
}

/** The relay's {@linkcode PeerHost}: admits peers into the router and lets them go. */
export class Membership implements PeerHost {
  // Static after construction; the registry and the router are the relay's.
  readonly #log: Logger;
  readonly #registry: Registry;
  readonly #router: Router;
  /** Refusals a remote party can cause at will (a Hello flood) are logged within a budget. */
  readonly #refusals: RateLimitedLog;
  readonly #newIdentities: NewIdentityAllowance | null;
  readonly #ipIdentities: boolean;

  /** Admits peers into `router` under the addresses `registry` gives them, as `options` say. */
  constructor(log: Logger, registry: Registry, router: Router, options: MembershipOptions = {}) {
    this.#log = log;
    this.#registry = registry;
    this.#router = router;
    this.#refusals = options.refusals ?? new RateLimitedLog(log);
    this.#newIdentities = options.newIdentities ?? null;
    this.#ipIdentities = options.ipIdentities ?? true;
  }

  /**
   * Completes a handshake synchronously, so frames a client pipelines behind
   * its Hello are routed in order. Closes the peer and returns null when it
   * cannot join.
   */
  join(peer: Peer, hello: HelloPacket): Dispatch | null {
    if (hello.version !== PROTOCOL_VERSION) {
      void peer.close(
        Reason.UnsupportedVersion,
        `Cannot join: protocol version ${hello.version} is not supported, this relay speaks ${PROTOCOL_VERSION}`,
      );
      return null;
    }
    if (!hello.identity && !this.#ipIdentities) {
      // Checked before the registry: a refused join writes nothing.
      void peer.close(
        Reason.InvalidIdentity,
        "Cannot join: this relay requires an identity (it does not key clients by their IP)",
      );
      return null;
    }
    const key: RegistryKey = hello.identity
      ? identityKey(hello.identity)
      : { kind: "ip", realIp: peer.realIp };
    if (!this.#assign(peer, key)) return null;
    const previous = this.#router.peerAt(peer.address);
    const dispatch = this.#router.attach(peer);
    if (previous !== undefined && previous !== peer) {
      // Audit: a takeover moves an address between links; an operator must see who took it from whom.
      this.#log.log("warn", "takeover", {
        vip: formatIpv4(peer.address),
        kind: key.kind,
        from: previous.realIp,
        to: peer.realIp,
      });
      void previous.close(
        Reason.Replaced,
        "a newer client with your identity or real IP took over",
      );
    }
    peer.send({ type: PacketType.VirtualIP, address: peer.address });
    this.#log.log("info", "connect", {
      client: peer.realIp,
      vip: formatIpv4(peer.address),
      kind: key.kind,
    });
    return dispatch;
  }

  /** Lets a closing peer go; for one that never joined, logs why it was refused. */
  leave(peer: Peer, reason: Reason, message: string): void {
    if (this.#router.detach(peer, reason)) {
      // After a takeover the address is online again under the newer peer.
      if (this.#router.peerAt(peer.address) === undefined) this.#markOffline(peer.address);
      this.#log.log("info", "disconnect", {
        client: peer.realIp,
        vip: formatIpv4(peer.address),
        reason: reasonName(reason),
      });
    } else if (reason !== Reason.PeerDisconnected) {
      this.#refusals.log("warn", "refused", {
        client: peer.realIp,
        reason: reasonName(reason),
        message,
      });
    }
  }

  /** Gives `peer` its address and marks it online; closes it and returns false on failure. */
  #assign(peer: Peer, key: RegistryKey): boolean {
    try {
      const known = this.#registry.lookup(key);
      if (known === null && this.#newIdentities !== null) {
        // Refused before the registry is written: a refusal costs one indexed read.
        const refusal = this.#newIdentities.admitNewIdentity(peer.realIp, performance.now());
        if (refusal !== null) {
          void peer.close(Reason.RateLimited, refusal);
          return false;
        }
      }
      peer.address = this.#registry.assign(key, Date.now(), { online: true });
      if (known === null) {
        this.#log.log("info", "assign", {
          client: peer.realIp,
          vip: formatIpv4(peer.address),
          kind: key.kind,
        });
      }
      return true;
    } catch (error) {
      if (error instanceof PoolExhausted) {
        void peer.close(Reason.PoolExhausted, "Cannot assign a virtual IP: the pool is exhausted");
        return false;
      }
      this.#log.log("error", "registry-error", { client: peer.realIp, error: String(error) });
      void peer.close(Reason.Internal, "Cannot assign a virtual IP: registry error");
      return false;
    }
  }

  #markOffline(address: number): void {
    try {
      this.#registry.markOnline(address, false);
    } catch (error) {
      // The registry closes last on shutdown; a failure here must not stop the close.
      this.#log.log("error", "registry-error", { vip: formatIpv4(address), error: String(error) });
    }
  }
}
