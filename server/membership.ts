/**
 * Join and leave, in one place for every carrier: the Hello's version and
 * the Challenge; the Proof's signatures, then, in the order of PROTOCOL.md
 * §4, the identity rules, a known key, a legacy claim, the join token, the
 * source IP's allowance of new addresses and the registry's address; the
 * takeover of an older peer with the same key, the attach to the router and
 * the VirtualIP reply; then, as the peer closes, the detach, the registry's
 * offline mark and the log line that says why.
 *
 * @module
 */

import { RelayMetrics } from "./metrics.ts";
import { joinTokenIdText } from "../crypto/join_token.ts";
import { formatIpv4 } from "../protocol/address.ts";
import { HandshakeBytes, PROTOCOL_VERSION } from "../protocol/constants.ts";
import { PacketType } from "../protocol/packet_type.ts";
import { Reason, reasonName } from "../protocol/reason.ts";
import type { ChallengePacket, HelloPacket, ProofPacket } from "../protocol/packets.ts";
import type { JoinMode } from "./config.ts";
import { type JoinTokenRefusal, joinTokenRefusal, JoinTokenRefused } from "./join_tokens.ts";
import type { Logger } from "./log.ts";
import { RateLimitedLog } from "./log_limiter.ts";
import type { Dispatch, Handshake, Peer, PeerHost } from "./peer.ts";
import { checkProof, copyProof, type ProofEvidence, type ProofVerdict } from "./proof_check.ts";
import { KeyReleased, PoolExhausted, type Registry, type RegistryKey } from "./registry.ts";
import { hexOf } from "./registry_key.ts";
import type { Router } from "./router.ts";
import type { SourceLimits } from "./source_limits.ts";

/** What membership asks of the per-IP limits: whether a source IP may register one more address. */
export type NewIdentityAllowance = Pick<SourceLimits, "admitNewIdentity" | "refundNewIdentity">;

/** How a {@linkcode Membership} admits peers, beyond the registry and the router it fills. */
export interface MembershipOptions {
  /** Where refusals a remote party can cause at will are logged. @default {a budget of its own over the log} */
  readonly refusals?: RateLimitedLog;
  /** Where joins and refusals are counted. @default {counters of its own} */
  readonly metrics?: RelayMetrics;
  /** A key new to the registry must fit its source IP's allowance; null: no limit. @default {null} */
  readonly newIdentities?: NewIdentityAllowance | null;
  /**
   * Whether a client without an identity may join, keyed by its real IP
   * (anyone behind the same NAT can then take its address). @default {true}
   */
  readonly ipIdentities?: boolean;
  /** Whether a new key needs a join token (`"token"`). @default {"open"} */
  readonly join?: JoinMode;
}

/** The Error reason of each join token refusal (PROTOCOL.md §5.5). */
const TOKEN_REFUSALS: Readonly<Record<JoinTokenRefusal, { reason: Reason; message: string }>> = {
  invalid: {
    reason: Reason.JoinTokenInvalid,
    message: "Cannot join: the join token is not valid (unknown, revoked, or its signature fails)",
  },
  expired: { reason: Reason.JoinTokenExpired, message: "Cannot join: the join token has expired" },
  "used-up": {
    reason: Reason.JoinTokenUsedUp,
    message: "Cannot join: the join token has been used as many times as it allows",
  },
};

/** Bytes of a Challenge's nonce. */
const NONCE_BYTES = HandshakeBytes.nonce;

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
  readonly #tokens: boolean;
  readonly #metrics: RelayMetrics;

  /** Admits peers into `router` under the addresses `registry` gives them, as `options` say. */
  constructor(log: Logger, registry: Registry, router: Router, options: MembershipOptions = {}) {
    this.#log = log;
    this.#registry = registry;
    this.#router = router;
    this.#refusals = options.refusals ?? new RateLimitedLog(log);
    this.#newIdentities = options.newIdentities ?? null;
    this.#ipIdentities = options.ipIdentities ?? true;
    this.#tokens = (options.join ?? "open") === "token";
    this.#metrics = options.metrics ?? new RelayMetrics();
  }

  /**
   * Checks the Hello's version and sends the Challenge: this relay's id and
   * a nonce no other link gets. Closes the peer and returns null for
   * another version.
   */
  greet(peer: Peer, hello: HelloPacket): Handshake | null {
    if (hello.version !== PROTOCOL_VERSION) {
      void peer.close(
        Reason.UnsupportedVersion,
        `Cannot join: protocol version ${hello.version} is not supported, this relay speaks ${PROTOCOL_VERSION}`,
      );
      return null;
    }
    const challenge: ChallengePacket = {
      type: PacketType.Challenge,
      relayId: this.#registry.relayId,
      nonce: crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
    };
    peer.send(challenge);
    let proved = false;
    return {
      prove: (proof) => {
        if (proved) {
          void peer.close(Reason.UnexpectedPacket, "Cannot accept packet: a second Proof");
          return Promise.resolve(null);
        }
        proved = true;
        return this.#prove(peer, challenge, copyProof(proof));
      },
    };
  }

  /**
   * Verifies, then joins if the peer is still open. The guard: whatever
   * goes wrong costs this peer its link (Internal) and a log line, never an
   * unhandled rejection.
   */
  async #prove(
    peer: Peer,
    challenge: ChallengePacket,
    proof: ProofPacket,
  ): Promise<Dispatch | null> {
    try {
      const evidence = this.#evidence(peer, proof);
      const verdict = await checkProof(challenge, proof, evidence);
      // The client may have left, or timed out, while its signatures were checked.
      if (peer.closed) return null;
      return this.#join(peer, proof, evidence, verdict);
    } catch (error) {
      this.#log.log("error", "internal-error", {
        client: peer.realIp,
        during: "handshake",
        error: String(error),
      });
      void peer.close(Reason.Internal, "Cannot join: internal error");
      return null;
    }
  }

  /** What the registry holds for the Proof's join token and legacy claim (reads only). */
  #evidence(peer: Peer, proof: ProofPacket): ProofEvidence {
    // A known key reconnects on its signature alone: its token and claim cost no verification.
    const registered = this.#registry.lookup(keyOf(peer, proof)) !== null;
    const token = !registered && this.#tokens && proof.joinToken !== null
      ? this.#registry.joinToken(joinTokenIdText(proof.joinToken.id))
      : null;
    const secret = !registered && proof.identity !== null && proof.legacyClaim !== null
      ? this.#registry.secretRow(proof.legacyClaim.tag)
      : null;
    return { token, secret, registered };
  }

  /**
   * The join proper, synchronous from the first check to the VirtualIP, in
   * the order of PROTOCOL.md §4: nothing can change the registry between a
   * check and the write it allows (but another process, whose changes the
   * registry's statements re-check).
   */
  #join(
    peer: Peer,
    proof: ProofPacket,
    evidence: ProofEvidence,
    verdict: ProofVerdict,
  ): Dispatch | null {
    if (!verdict.identity) {
      return this.#refuse(
        peer,
        Reason.InvalidIdentity,
        "Cannot join: the identity's signature does not verify",
      );
    }
    if (proof.identity === null && !this.#ipIdentities) {
      // Checked before the registry: a refused join writes nothing.
      return this.#refuse(
        peer,
        Reason.InvalidIdentity,
        "Cannot join: this relay requires an identity (it does not key clients by their IP)",
      );
    }
    const key = keyOf(peer, proof);
    if (!this.#assign(peer, key, proof, evidence, verdict)) return null;
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
    this.#metrics.joins++;
    this.#log.log("info", "connect", {
      client: peer.realIp,
      vip: formatIpv4(peer.address),
      kind: key.kind,
    });
    return dispatch;
  }

  /**
   * Gives `peer` its address and marks it online: a known key's, a claimed
   * version 1 row's, or a new one, each only past its checks. Closes the
   * peer and returns false when it is refused or the registry fails.
   */
  #assign(
    peer: Peer,
    key: RegistryKey,
    proof: ProofPacket,
    evidence: ProofEvidence,
    verdict: ProofVerdict,
  ): boolean {
    try {
      const now = Date.now();
      const known = this.#registry.lookup(key);
      if (known === null && evidence.registered) {
        // Released by an operator during the verification: its token was not checked, so join again.
        throw new KeyReleased("Cannot assign: the address was released while its client joined");
      }
      if (known === null && evidence.secret !== null) {
        if (!verdict.legacy) {
          this.#refuse(
            peer,
            Reason.InvalidIdentity,
            "Cannot join: the claim of a version 1 address does not verify",
          );
          return false;
        }
        const claimed = this.#registry.claimSecretRow(proof.legacyClaim!.tag, key, now, {
          online: true,
        });
        // Null: another link claimed it a moment ago; this one goes on as a new key.
        if (claimed !== null) {
          peer.address = claimed;
          // Audit: an address moved from a version 1 secret to a key pair.
          this.#log.log("info", "legacy-claim", {
            client: peer.realIp,
            vip: formatIpv4(claimed),
            publicKey: hexOf(proof.identity!.publicKey),
          });
          return true;
        }
      }
      const token = known === null ? this.#admitNewKey(peer, proof, evidence, verdict, now) : null;
      if (token === false) return false;
      try {
        peer.address = this.#registry.assign(key, now, {
          online: true,
          joinToken: token,
          registered: known !== null,
        });
      } catch (error) {
        // Nothing registered (a full pool, a token spent elsewhere meanwhile): no allowance used.
        if (known === null) this.#newIdentities?.refundNewIdentity(peer.realIp, performance.now());
        throw error;
      }
      if (known === null) {
        this.#log.log("info", "assign", {
          client: peer.realIp,
          vip: formatIpv4(peer.address),
          kind: key.kind,
        });
        // Audit: which token let whom in.
        if (token !== null) {
          this.#log.log("info", "token-used", {
            token,
            client: peer.realIp,
            vip: formatIpv4(peer.address),
          });
        }
      }
      return true;
    } catch (error) {
      if (error instanceof JoinTokenRefused) {
        const { reason, message } = TOKEN_REFUSALS[error.refusal];
        this.#refuse(peer, reason, message);
        return false;
      }
      if (error instanceof KeyReleased) {
        // Released by an operator between the lookup and the write: joined again, it is a new key.
        this.#refuse(peer, Reason.Internal, "Cannot join: your address was released; join again");
        return false;
      }
      if (error instanceof PoolExhausted) {
        this.#refuse(
          peer,
          Reason.PoolExhausted,
          "Cannot assign a virtual IP: the pool is exhausted",
        );
        return false;
      }
      this.#log.log("error", "registry-error", { client: peer.realIp, error: String(error) });
      this.#refuse(peer, Reason.Internal, "Cannot assign a virtual IP: registry error");
      return false;
    }
  }

  /**
   * The checks of a key new to the registry: the join token at a `token`
   * relay, then the source IP's allowance. Returns the token id to spend
   * (null: none), or false when the peer was refused (and closed).
   */
  #admitNewKey(
    peer: Peer,
    proof: ProofPacket,
    evidence: ProofEvidence,
    verdict: ProofVerdict,
    now: number,
  ): string | null | false {
    let token: string | null = null;
    if (this.#tokens) {
      if (proof.joinToken === null) {
        this.#refuse(
          peer,
          Reason.JoinTokenRequired,
          "Cannot join: this relay registers new clients only with a join token",
        );
        return false;
      }
      // Read again: a use may have been spent, or the token revoked, during the checks.
      const record = evidence.token === null ? null : this.#registry.joinToken(evidence.token.id);
      const refusal = verdict.token ? joinTokenRefusal(record, now) : "invalid";
      if (refusal !== null) {
        const { reason, message } = TOKEN_REFUSALS[refusal];
        this.#refuse(peer, reason, message);
        return false;
      }
      token = record!.id;
    }
    if (this.#newIdentities !== null) {
      // Refused before the registry is written: a refusal costs one indexed read.
      const refusal = this.#newIdentities.admitNewIdentity(peer.realIp, performance.now());
      if (refusal !== null) {
        this.#refuse(peer, Reason.RateLimited, refusal);
        return false;
      }
    }
    return token;
  }

  /** Closes a refused peer; its close logs the refusal (see {@linkcode leave}). Returns null. */
  #refuse(peer: Peer, reason: Reason, message: string): null {
    void peer.close(reason, message);
    return null;
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
      this.#metrics.refused(reasonName(reason));
      this.#refusals.log("warn", "refused", {
        client: peer.realIp,
        reason: reasonName(reason),
        message,
      });
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

/** The registry key a Proof joins under: its public key, or the peer's real IP without one. */
function keyOf(peer: Peer, proof: ProofPacket): RegistryKey {
  return proof.identity === null
    ? { kind: "ip", realIp: peer.realIp }
    : { kind: "key", publicKey: proof.identity.publicKey };
}
