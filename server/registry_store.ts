/**
 * The registry as the relay, the membership and the admin commands use it:
 * one asynchronous seam with two implementations, the SQLite file of a lone
 * relay ({@linkcode SqliteRegistryStore}, over the synchronous `Registry`)
 * and the PostgreSQL database a cluster shares (`PostgresRegistry`). Both
 * keep the same promises: an address is never given to two keys, an online
 * client is never released, a join token's use is spent in the transaction
 * that registers the key it admits.
 *
 * @module
 */

import { AlphaNetError } from "../errors.ts";
import type { AddressPool } from "./address_pool.ts";
import type { JoinTokenRecord } from "./join_tokens.ts";
import {
  type AssignOptions,
  type ClientRecord,
  type NewJoinToken,
  Registry,
  type RegistryOptions,
  type SecretRow,
} from "./registry.ts";
import type { RegistryKey } from "./registry_key.ts";

/**
 * How a store assigns: {@linkcode AssignOptions}, and the link an online
 * mark belongs to.
 */
export interface StoreAssignOptions extends AssignOptions {
  /**
   * The id of the link the client joins through, unique among this relay's
   * links (a counter): with `online`, the mark carries it, and only
   * {@linkcode RegistryStore.markOffline} with the same id clears it, so a
   * late offline mark of an earlier link never clears a newer link's mark
   * of the same address. @default {0}
   */
  readonly link?: number;
}

/**
 * A registry every relay of a cluster can use at once. Each method is one
 * atomic step (a statement or a transaction); errors are those of
 * `Registry` (`PoolExhausted`, `KeyReleased`, `JoinTokenRefused`, `Closed`),
 * and {@linkcode RegistryUnavailable} when the database cannot be reached.
 */
export interface RegistryStore {
  /**
   * The network's id, 32 bytes every Challenge carries: made with the
   * registry (one SQLite file, or one PostgreSQL database for every relay
   * of a cluster), the same on every open.
   */
  readonly relayId: Uint8Array<ArrayBuffer>;
  /** The key's address, or null if it was never assigned. */
  lookup(key: RegistryKey): Promise<number | null>;
  /** The unclaimed version 1 row tagged `tag`, or null. */
  secretRow(tag: Uint8Array): Promise<SecretRow | null>;
  /** Re-keys the version 1 row tagged `tag` to `key`; its address, or null if it is gone. */
  claimSecretRow(
    tag: Uint8Array,
    key: RegistryKey,
    now?: number,
    options?: StoreAssignOptions,
  ): Promise<number | null>;
  /** The key's address, assigning a free one on first sight (see `Registry.assign`). */
  assign(key: RegistryKey, now?: number, options?: StoreAssignOptions): Promise<number>;
  /** The join token `id`, or null. */
  joinToken(id: string): Promise<JoinTokenRecord | null>;
  /** Every join token, oldest first. */
  joinTokens(): Promise<JoinTokenRecord[]>;
  /** Stores a new join token with no uses; rejects if its id is taken. */
  createJoinToken(token: NewJoinToken, now?: number): Promise<JoinTokenRecord>;
  /** Revokes the join token `id`; false if there is none or it was revoked already. */
  revokeJoinToken(id: string, now?: number): Promise<boolean>;
  /**
   * Records that the link `link` of the client at `address` ended: clears
   * the online mark only if this relay holds it for that link, so a client
   * that moved on to another relay, or joined again through a newer link,
   * stays online whatever order the marks land in.
   */
  markOffline(address: number, link: number, now?: number): Promise<void>;
  /** Marks offline every client this relay held: it starts with no links (after a crash too). */
  markAllOffline(): Promise<void>;
  /** The client at `address`, or null. */
  get(address: number): Promise<ClientRecord | null>;
  /** Every registered client, by ascending address. */
  list(): Promise<ClientRecord[]>;
  /** Forgets the client at `address` if it is offline, in one statement. */
  release(address: number): Promise<boolean>;
  /** Frees a batch of addresses offline and unseen for the address TTL; how many. */
  expire(now?: number): Promise<number>;
  /** The address TTL in ms the relays run with, as recorded (0: none). */
  addressTtlMs(): Promise<number>;
  /** Closes the store; calling it again does nothing. */
  close(): Promise<void>;
}

/**
 * The registry's database cannot be reached now (refused, timed out, shut
 * down): nothing was written, and the same call may succeed later. A join
 * refused for it is one the client retries.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryUnavailable } from "./registry_store.ts";
 *
 * assert.equal(new RegistryUnavailable("Cannot assign: refused").name, "RegistryUnavailable");
 * ```
 */
export class RegistryUnavailable extends AlphaNetError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RegistryUnavailable";
  }
}

/**
 * The SQLite registry behind the asynchronous seam: every call runs the
 * synchronous `Registry` at once, so a join costs a resolved promise per
 * step (a microtask) over the file's statements, and the order of the
 * statements is the order of the calls.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AddressPool } from "./address_pool.ts";
 * import { SqliteRegistryStore } from "./registry_store.ts";
 *
 * const store = SqliteRegistryStore.open(":memory:", AddressPool.fromCidr("10.0.0.0/29"));
 * const address = await store.assign({ kind: "ip", realIp: "192.0.2.7" });
 * assert.equal(await store.lookup({ kind: "ip", realIp: "192.0.2.7" }), address);
 * await store.close();
 * ```
 */
export class SqliteRegistryStore implements RegistryStore {
  readonly #registry: Registry;

  /** The store over `registry`, which it closes on {@linkcode close}. */
  constructor(registry: Registry) {
    this.#registry = registry;
  }

  /** Opens the SQLite registry at `path` (see `Registry.open`) as a store. */
  static open(path: string, pool: AddressPool, options: RegistryOptions = {}): SqliteRegistryStore {
    return new SqliteRegistryStore(Registry.open(path, pool, options));
  }

  /** The synchronous registry underneath, for tests and tools that read it directly. */
  get registry(): Registry {
    return this.#registry;
  }

  /** The id made with the file. */
  get relayId(): Uint8Array<ArrayBuffer> {
    return this.#registry.relayId;
  }

  /** See {@linkcode RegistryStore.lookup}. */
  lookup(key: RegistryKey): Promise<number | null> {
    return Promise.try(() => this.#registry.lookup(key));
  }

  /** See {@linkcode RegistryStore.secretRow}. */
  secretRow(tag: Uint8Array): Promise<SecretRow | null> {
    return Promise.try(() => this.#registry.secretRow(tag));
  }

  /** See {@linkcode RegistryStore.claimSecretRow}. */
  claimSecretRow(
    tag: Uint8Array,
    key: RegistryKey,
    now?: number,
    options?: StoreAssignOptions,
  ): Promise<number | null> {
    return Promise.try(() => this.#registry.claimSecretRow(tag, key, now, options));
  }

  /** See {@linkcode RegistryStore.assign}. */
  assign(key: RegistryKey, now?: number, options?: StoreAssignOptions): Promise<number> {
    return Promise.try(() => this.#registry.assign(key, now, options));
  }

  /** See {@linkcode RegistryStore.joinToken}. */
  joinToken(id: string): Promise<JoinTokenRecord | null> {
    return Promise.try(() => this.#registry.joinToken(id));
  }

  /** See {@linkcode RegistryStore.joinTokens}. */
  joinTokens(): Promise<JoinTokenRecord[]> {
    return Promise.try(() => this.#registry.joinTokens());
  }

  /** See {@linkcode RegistryStore.createJoinToken}. */
  createJoinToken(token: NewJoinToken, now?: number): Promise<JoinTokenRecord> {
    return Promise.try(() => this.#registry.createJoinToken(token, now));
  }

  /** See {@linkcode RegistryStore.revokeJoinToken}. */
  revokeJoinToken(id: string, now?: number): Promise<boolean> {
    return Promise.try(() => this.#registry.revokeJoinToken(id, now));
  }

  /**
   * See {@linkcode RegistryStore.markOffline}. The link is not needed here:
   * one relay holds the file, and every statement runs when it is called,
   * in the order of the calls, so a link's offline mark can never land after
   * a newer link's online mark of the same address.
   */
  markOffline(address: number, _link: number, now?: number): Promise<void> {
    return Promise.try(() => this.#registry.markOnline(address, false, now));
  }

  /** See {@linkcode RegistryStore.markAllOffline}. */
  markAllOffline(): Promise<void> {
    return Promise.try(() => this.#registry.markAllOffline());
  }

  /** See {@linkcode RegistryStore.get}. */
  get(address: number): Promise<ClientRecord | null> {
    return Promise.try(() => this.#registry.get(address));
  }

  /** See {@linkcode RegistryStore.list}. */
  list(): Promise<ClientRecord[]> {
    return Promise.try(() => this.#registry.list());
  }

  /** See {@linkcode RegistryStore.release}. */
  release(address: number): Promise<boolean> {
    return Promise.try(() => this.#registry.release(address));
  }

  /** See {@linkcode RegistryStore.expire}. */
  expire(now?: number): Promise<number> {
    return Promise.try(() => this.#registry.expire(now));
  }

  /** See {@linkcode RegistryStore.addressTtlMs}. */
  addressTtlMs(): Promise<number> {
    return Promise.try(() => this.#registry.addressTtlMs);
  }

  /** Closes the file. */
  close(): Promise<void> {
    return Promise.try(() => this.#registry.close());
  }
}
