/**
 * The MACs of presence payloads (issue 12): anyone who can publish on the
 * cluster's NATS subjects could otherwise close any client (a forged claim),
 * point relays at any host (a forged locate answer) or make them dial one (a
 * forged dial request). Every payload a relay sends carries an HMAC-SHA-256
 * under a key of its own, derived from the mesh key, over its canonical
 * bytes (./presence_wire.ts); a receiver drops what does not verify.
 *
 * The key is HMAC-SHA-256(mesh key, "alphanet presence v1"), so the relay
 * link's handshake MACs (keyed by the mesh key itself) and presence MACs
 * never share a key: no presence MAC can stand in for a handshake MAC.
 *
 * @module
 */

import { MESH_KEY_BYTES } from "../config.ts";
import { bytesOfHex, hexOf } from "../registry_key.ts";

/** What the presence key is derived with: HMAC-SHA-256(mesh key, this label). */
export const PRESENCE_KEY_LABEL = "alphanet presence v1";
/**
 * MACs computed or checked at once for payloads others sent (a flood of
 * lookups or claims): past it, a payload is dropped, since each one would
 * hold a pending WebCrypto operation (a few hundred bytes). Well above the
 * lookups a relay may have in flight (4,096 in `server/mesh/mesh.ts`) times
 * the relays that may ask at once, so honest bursts are never dropped: a
 * dropped lookup answer would make an online client look Offline.
 */
export const MAX_PENDING_MACS = 16_384;

const HMAC = { name: "HMAC", hash: "SHA-256" } as const;
/** A MAC as it appears in a payload: 32 bytes in lowercase hex. */
const MAC_HEX = /^[0-9a-f]{64}$/;

/** Signs and verifies presence payloads under the presence key; never exports it. */
export class PresenceMac {
  readonly #key: CryptoKey;
  #pending = 0;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /** Derives the presence key from the 32-byte mesh key; a TypeError for anything else. */
  static async derive(meshKey: Uint8Array): Promise<PresenceMac> {
    if (!(meshKey instanceof Uint8Array) || meshKey.length !== MESH_KEY_BYTES) {
      throw new TypeError(`Cannot derive the presence key: the mesh key must be 32 bytes`);
    }
    const master = await crypto.subtle.importKey("raw", new Uint8Array(meshKey), HMAC, false, [
      "sign",
    ]);
    const label = new TextEncoder().encode(PRESENCE_KEY_LABEL);
    const raw = new Uint8Array(await crypto.subtle.sign("HMAC", master, label));
    try {
      return new PresenceMac(
        await crypto.subtle.importKey("raw", raw, HMAC, false, ["sign", "verify"]),
      );
    } finally {
      raw.fill(0); // the CryptoKey holds its own copy
    }
  }

  /**
   * Whether one more MAC may be computed for a payload someone else sent;
   * false past {@linkcode MAX_PENDING_MACS} pending ones.
   */
  get available(): boolean {
    return this.#pending < MAX_PENDING_MACS;
  }

  /** The MAC of `input` (canonical bytes), as 64 lowercase hex digits. */
  async sign(input: Uint8Array<ArrayBuffer>): Promise<string> {
    this.#pending++;
    try {
      return hexOf(new Uint8Array(await crypto.subtle.sign("HMAC", this.#key, input)));
    } finally {
      this.#pending--;
    }
  }

  /**
   * Whether `mac` (as read from the wire: anything) is the MAC of `input`.
   * WebCrypto compares in constant time. Never rejects.
   */
  async verify(input: Uint8Array<ArrayBuffer>, mac: unknown): Promise<boolean> {
    if (typeof mac !== "string" || !MAC_HEX.test(mac)) return false;
    this.#pending++;
    try {
      return await crypto.subtle.verify("HMAC", this.#key, bytesOfHex(mac)!, input);
    } catch {
      return false;
    } finally {
      this.#pending--;
    }
  }
}
