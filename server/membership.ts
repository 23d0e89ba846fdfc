/**
 * Join and leave, in one place for every carrier: the Hello's version and
 * the Challenge; then, in the order of PROTOCOL.md §4, the identity's
 * signature and the identity rules (before any registry read, so a junk
 * Proof costs no round trip), a known key, a legacy claim, the join token,
 * the source IP's allowance of new addresses and the registry's address; the
 * takeover of an older peer with the same key, the attach to the router and
 * the VirtualIP reply; then, as the peer closes, the detach, the registry's
 * offline mark and the log line that says why.
 *
 * The registry is asynchronous (a PostgreSQL one is a round trip away): a
 * peer may close during any of its steps. After each, a closed peer goes no
 * further and gets nothing attached; one that closed after its row was
 * marked online has it marked offline again. Each link has an id of its own
 * that its online mark carries, and its offline mark clears only a mark of
 * that link: in whatever order the registry runs them, an older link's late
 * offline mark never clears a newer link's mark of the same address.
 *
 * @module
 */

import { Closed } from "../errors.ts";
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
import {
  type AdmissionVerdict,
  checkAdmission,
  copyProof,
  type ProofEvidence,
  verifyIdentity,
} from "./proof_check.ts";
import { KeyReleased, PoolExhausted, type RegistryKey } from "./registry.ts";
import { hexOf } from "./registry_key.ts";
import { type RegistryStore, RegistryUnavailable } from "./registry_store.ts";
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

/** What a client that joined while the registry was unreachable is told: it retries (Internal). */
const UNAVAILABLE_MESSAGE = "Cannot join: the registry is unavailable; try again shortly";

/** How a registry write ended for a join: the address it holds and how it got it. */
interface Assignment {
  readonly address: number;
  /** A key already registered, a version 1 row claimed, or a new row. */
  readonly how: "known" | "claimed" | "new";
  /** The join token spent on a new row, or null. */
  readonly token: string | null;
}

/** Bytes of a Challenge's nonce. */
const NONCE_BYTES = HandshakeBytes.nonce;

/** The relay's {@linkcode PeerHost}: admits peers into the router and lets them go. */
export class Membership implements PeerHost {
  // Static after construction; the registry and the router are the relay's.
  readonly #log: Logger;
  readonly #registry: RegistryStore;
  readonly #router: Router;
  /** Refusals a remote party can cause at will (a Hello flood) are logged within a budget. */
  readonly #refusals: RateLimitedLog;
  readonly #newIdentities: NewIdentityAllowance | null;
  readonly #ipIdentities: boolean;
  readonly #tokens: boolean;
  readonly #metrics: RelayMetrics;

  // Owned by the joins: each link's id, which its online and offline marks carry.
  /** The id of the last link that reached the registry write; unique per relay run. */
  #lastLink = 0;
  readonly #links = new WeakMap<Peer, number>();

  /** Admits peers into `router` under the addresses `registry` gives them, as `options` say. */
  constructor(
    log: Logger,
    registry: RegistryStore,
    router: Router,
    options: MembershipOptions = {},
  ) {
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
   * Verifies the identity, then joins if the peer is still open. The guard:
   * whatever goes wrong costs this peer its link (Internal) and a log line,
   * never an unhandled rejection.
   */
  async #prove(
    peer: Peer,
    challenge: ChallengePacket,
    proof: ProofPacket,
  ): Promise<Dispatch | null> {
    try {
      // Before any registry read: a junk Proof costs a signature check, never a round trip.
      const identity = await verifyIdentity(challenge, proof);
      // The client may have left, or timed out, while its signature was checked.
      if (peer.closed) return null;
      if (!identity) {
        return this.#refuse(
          peer,
          Reason.InvalidIdentity,
          "Cannot join: the identity's signature does not verify",
        );
      }
      if (proof.identity === null && !this.#ipIdentities) {
        return this.#refuse(
          peer,
          Reason.InvalidIdentity,
          "Cannot join: this relay requires an identity (it does not key clients by their IP)",
        );
      }
      return await this.#join(peer, challenge, proof);
    } catch (error) {
      if (error instanceof RegistryUnavailable) return this.#unavailable(peer, error);
      this.#log.log("error", "internal-error", {
        client: peer.realIp,
        during: "handshake",
        error: String(error),
      });
      void peer.close(Reason.Internal, "Cannot join: internal error");
      return null;
    }
  }

  /** What the registry holds for a new key's join token and legacy claim (reads only). */
  async #evidence(proof: ProofPacket): Promise<ProofEvidence> {
    const wantsToken = this.#tokens && proof.joinToken !== null;
    const wantsSecret = proof.identity !== null && proof.legacyClaim !== null;
    if (!wantsToken && !wantsSecret) return { token: null, secret: null };
    // Both reads at once, settled together: neither rejection is left unhandled.
    const [token, secret] = await Promise.all([
      wantsToken ? this.#registry.joinToken(joinTokenIdText(proof.joinToken!.id)) : null,
      wantsSecret ? this.#registry.secretRow(proof.legacyClaim!.tag) : null,
    ]);
    return { token, secret };
  }

  /**
   * The join proper, in the order of PROTOCOL.md §4. Another join may run
   * between its steps (an await each), and other relays share a PostgreSQL
   * registry: the registry's statements re-check what a step relies on (a
   * key registered meanwhile, a token spent, a row released).
   */
  async #join(
    peer: Peer,
    challenge: ChallengePacket,
    proof: ProofPacket,
  ): Promise<Dispatch | null> {
    const key = keyOf(peer, proof);
    this.#links.set(peer, ++this.#lastLink);
    let assignment: Assignment | null;
    try {
      assignment = await this.#write(peer, challenge, key, proof);
    } catch (error) {
      return this.#refuseFailure(peer, error);
    }
    if (assignment === null || !this.#place(peer, key, proof, assignment)) return null;
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
   * Logs what the registry wrote for `peer` (it stays written if the peer
   * closed meanwhile), then gives an open peer its address (true). A peer
   * that closed while its row was marked online has its link's mark cleared,
   * unless a newer link holds the address (false).
   */
  #place(peer: Peer, key: RegistryKey, proof: ProofPacket, assignment: Assignment): boolean {
    const vip = formatIpv4(assignment.address);
    if (assignment.how === "claimed") {
      // Audit: an address moved from a version 1 secret to a key pair.
      this.#log.log("info", "legacy-claim", {
        client: peer.realIp,
        vip,
        publicKey: hexOf(proof.identity!.publicKey),
      });
    } else if (assignment.how === "new") {
      this.#log.log("info", "assign", { client: peer.realIp, vip, kind: key.kind });
      // Audit: which token let whom in.
      if (assignment.token !== null) {
        this.#log.log("info", "token-used", { token: assignment.token, client: peer.realIp, vip });
      }
    }
    if (peer.closed) {
      if (this.#router.peerAt(assignment.address) === undefined) {
        this.#markOffline(assignment.address, peer);
      }
      return false;
    }
    peer.address = assignment.address;
    return true;
  }

  /**
   * Gives `peer` an address and marks it online, in the order of PROTOCOL.md
   * §4: a known key's, a claimed version 1 row's, or a new one, each only
   * past its checks. Null when the peer was refused (and closed), or closed
   * before anything was written; rejects when the registry fails.
   *
   * A new key's steps rely on the registry's own re-checks rather than reads
   * of their own: its assignment finds a key registered meanwhile (and then
   * spends no token), and spends the token's use only if the token still
   * has one, in the transaction that registers the key.
   */
  async #write(
    peer: Peer,
    challenge: ChallengePacket,
    key: RegistryKey,
    proof: ProofPacket,
  ): Promise<Assignment | null> {
    const now = Date.now();
    const link = this.#links.get(peer);
    // A known key reconnects on its signature alone: its token and claim are neither read nor
    // checked, and one statement finds its address and marks it online.
    const known = await this.#known(key, now, link);
    if (known !== null) return { address: known, how: "known", token: null };
    if (peer.closed) return null;
    const evidence = await this.#evidence(proof);
    if (peer.closed) return null;
    const verdict = await checkAdmission(challenge, proof, evidence);
    // The client may have left while its token or claim was checked.
    if (peer.closed) return null;
    if (evidence.secret !== null) {
      // Looked for again right before the claim, which needs the key unregistered (SQLite
      // refuses a second row of one key): a key registered meanwhile by another of its links
      // joins as known, its claim ignored.
      const registered = await this.#known(key, now, link);
      if (registered !== null) return { address: registered, how: "known", token: null };
      if (peer.closed) return null;
      if (!verdict.legacy) {
        return this.#refuse(
          peer,
          Reason.InvalidIdentity,
          "Cannot join: the claim of a version 1 address does not verify",
        );
      }
      const claimed = await this.#registry.claimSecretRow(proof.legacyClaim!.tag, key, now, {
        online: true,
        link,
      });
      // Null: another link claimed it a moment ago; this one goes on as a new key.
      if (claimed !== null) return { address: claimed, how: "claimed", token: null };
      if (peer.closed) return null;
    }
    const token = this.#admitNewKey(peer, proof, evidence, verdict, now);
    if (token === false) return null;
    let registered = false;
    try {
      const address = await this.#registry.assign(key, now, {
        online: true,
        joinToken: token,
        link,
        onKnown: () => {
          registered = true;
        },
      });
      if (!registered) return { address, how: "new", token };
      // Registered meanwhile by another link of the same key: a known key's join, which takes
      // no allowance (and spent no token).
      this.#newIdentities?.refundNewIdentity(peer.realIp, performance.now());
      return { address, how: "known", token: null };
    } catch (error) {
      // Nothing registered (a full pool, a token spent or revoked meanwhile): no allowance used.
      this.#newIdentities?.refundNewIdentity(peer.realIp, performance.now());
      throw error;
    }
  }

  /**
   * The address of a key already registered, seen now and marked online for
   * `link` in the same statement; null for a key new to the registry
   * (nothing written).
   */
  async #known(key: RegistryKey, now: number, link: number | undefined): Promise<number | null> {
    try {
      return await this.#registry.assign(key, now, { online: true, registered: true, link });
    } catch (error) {
      // Not registered (or released by an operator since): a new key, with a new key's checks.
      if (error instanceof KeyReleased) return null;
      throw error;
    }
  }

  /** Refuses a peer whose registry write failed, with the reason its error calls for. Null. */
  #refuseFailure(peer: Peer, error: unknown): null {
    if (error instanceof JoinTokenRefused) {
      const { reason, message } = TOKEN_REFUSALS[error.refusal];
      return this.#refuse(peer, reason, message);
    }
    if (error instanceof PoolExhausted) {
      return this.#refuse(
        peer,
        Reason.PoolExhausted,
        "Cannot assign a virtual IP: the pool is exhausted",
      );
    }
    if (error instanceof RegistryUnavailable) return this.#unavailable(peer, error);
    this.#log.log("error", "registry-error", { client: peer.realIp, error: String(error) });
    return this.#refuse(peer, Reason.Internal, "Cannot assign a virtual IP: registry error");
  }

  /**
   * Refuses a peer because the registry cannot be reached: Internal, which
   * clients retry; logged within the refusal budget (a database outage
   * refuses every join at once).
   */
  #unavailable(peer: Peer, error: RegistryUnavailable): null {
    this.#refusals.log("warn", "registry-unavailable", {
      client: peer.realIp,
      error: error.message,
    });
    return this.#refuse(peer, Reason.Internal, UNAVAILABLE_MESSAGE);
  }

  /**
   * The checks of a key new to the registry: the join token at a `token`
   * relay, then the source IP's allowance, which it takes. Returns the token
   * id to spend (null: none), or false when the peer was refused (and
   * closed). The token is judged as read for this join: a use spent, or a
   * revocation, since is caught where the use is spent, in the registry's
   * transaction, which refuses the join with the same reason.
   */
  #admitNewKey(
    peer: Peer,
    proof: ProofPacket,
    evidence: ProofEvidence,
    verdict: AdmissionVerdict,
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
      const refusal = verdict.token ? joinTokenRefusal(evidence.token, now) : "invalid";
      if (refusal !== null) {
        const { reason, message } = TOKEN_REFUSALS[refusal];
        this.#refuse(peer, reason, message);
        return false;
      }
      token = evidence.token!.id;
    }
    if (this.#newIdentities !== null) {
      // Refused before the registry is written.
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
      if (this.#router.peerAt(peer.address) === undefined) this.#markOffline(peer.address, peer);
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

  /** Clears the online mark of `peer`'s link at `address` (none if a newer link holds it). */
  #markOffline(address: number, peer: Peer): void {
    const link = this.#links.get(peer) ?? 0;
    this.#registry.markOffline(address, link).catch((error) => this.#markFailed(address, error));
  }

  #markFailed(address: number, error: unknown): void {
    // The registry closes last on shutdown, and a closing PostgreSQL store clears this
    // relay's marks itself; a mark that fails otherwise is logged, and left to the store.
    if (error instanceof Closed) return;
    if (error instanceof RegistryUnavailable) {
      // An outage fails every client's mark at once: logged within the budget.
      this.#refusals.log("warn", "registry-unavailable", {
        vip: formatIpv4(address),
        error: error.message,
      });
      return;
    }
    this.#log.log("error", "registry-error", { vip: formatIpv4(address), error: String(error) });
  }
}

/** The registry key a Proof joins under: its public key, or the peer's real IP without one. */
function keyOf(peer: Peer, proof: ProofPacket): RegistryKey {
  return proof.identity === null
    ? { kind: "ip", realIp: peer.realIp }
    : { kind: "key", publicKey: proof.identity.publicKey };
}
