/**
 * A raw-frame client of the relay for hostile-input and wire tests: writes
 * arbitrary bytes or encoded packets and reads decoded packets one by one.
 * Its handshake is the real one (Hello, Challenge, Proof, VirtualIP), signed
 * with the client library's credentials, in steps a hostile test can break.
 */

import assert from "node:assert/strict";
import type { AlphaNetClient, VirtualConn, VirtualListener } from "../../mod.ts";
import { answerChallenge, resolveCredentials } from "../../client/credentials.ts";
import { generateIdentity, type Identity } from "../../client/identity.ts";
import {
  type ChallengePacket,
  encode,
  type ErrorPacket,
  FrameDecoder,
  type Packet,
  PacketType,
  type ProofPacket,
  PROTOCOL_VERSION,
  reasonName,
} from "../../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./async.ts";
import { concatBytes } from "./bytes.ts";
import { readPackets } from "./read_packets.ts";

/** Deep-copies a decoded packet: decoders hand out views valid only during the callback. */
function copyPacket(packet: Packet): Packet {
  switch (packet.type) {
    case PacketType.ArbitraryData:
      return { ...packet, payload: packet.payload.slice() };
    case PacketType.Challenge:
      return { ...packet, relayId: packet.relayId.slice(), nonce: packet.nonce.slice() };
    case PacketType.Proof: {
      const { identity, joinToken, legacyClaim } = packet;
      return {
        ...packet,
        identity: identity && {
          publicKey: identity.publicKey.slice(),
          signature: identity.signature.slice(),
        },
        joinToken: joinToken &&
          { id: joinToken.id.slice(), signature: joinToken.signature.slice() },
        legacyClaim: legacyClaim && { tag: legacyClaim.tag.slice(), mac: legacyClaim.mac.slice() },
      };
    }
    default:
      return { ...packet };
  }
}

/**
 * Who a raw client says it is: an Identity, a secret (a version 1 style
 * string or bytes: the identity derived from it, with a legacy claim), or
 * null for none (keyed on the real IP). Undefined: a fresh identity.
 */
export type RawIdentity = Identity | string | Uint8Array | null | undefined;

/** What a raw client's Proof carries beyond its identity. */
export interface ProofOptions {
  /** A join token's text. */
  readonly joinToken?: string;
}

/**
 * The Proof that answers `challenge` as `identity` would, through the client
 * library's own credentials (the same bytes a real client signs).
 */
export async function proofFor(
  challenge: ChallengePacket,
  identity: RawIdentity,
  options: ProofOptions = {},
): Promise<ProofPacket> {
  const resolved = identity === undefined ? await generateIdentity() : identity ?? undefined;
  const credentials = await resolveCredentials(resolved, options.joinToken);
  return await answerChallenge(challenge, credentials);
}

/** Packets a raw client will skip looking for an expected one, at most. */
const MAX_SKIPPED_PACKETS = 64;

/**
 * A hand-driven TCP client of the relay: writes arbitrary bytes or encoded
 * packets, and reads decoded packets one by one (null at end of stream).
 */
export class RawClient {
  readonly conn: Deno.TcpConn;
  /** The virtual address from the handshake, once {@linkcode handshake} ran. */
  address = 0;
  /** Whether the relay reset the link instead of closing it cleanly. */
  reset = false;
  /** Set when the relay's bytes could not be decoded. */
  decodeError: Error | null = null;

  readonly #queue: Packet[] = [];
  #ended = false;
  #waiters: (() => void)[] = [];
  readonly #loop: Promise<void>;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#loop = this.#readLoop();
  }

  /** Wraps a TCP connection accepted by a test's own fake relay (see {@linkcode FakeRelay}). */
  static adopt(conn: Deno.TcpConn): RawClient {
    conn.setNoDelay(true);
    return new RawClient(conn);
  }

  /** Opens a TCP link to the relay on 127.0.0.1:`port`. */
  static async open(port: number): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
    conn.setNoDelay(true);
    return new RawClient(conn);
  }

  /** Writes every byte of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    let written = 0;
    for (let writes = 0; writes <= bytes.length && written < bytes.length; writes++) {
      written += await this.conn.write(bytes.subarray(written));
    }
    assert.equal(written, bytes.length, "raw write incomplete");
  }

  /** Encodes and writes packets in one write. */
  send(...packets: Packet[]): Promise<void> {
    const frames: Uint8Array[] = [];
    for (const packet of packets) frames.push(encode(packet));
    return this.write(concatBytes(frames));
  }

  /** The next packet from the relay, or null once the link has ended. */
  async next(
    ms: number = STEP_MS,
    what = "the next packet from the relay",
  ): Promise<Packet | null> {
    const ready = () => this.#queue.length > 0 || this.#ended;
    if (!ready()) {
      await withTimeout(
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        ms,
        what,
      );
    }
    const packet = this.#queue.shift();
    if (packet) return packet;
    if (this.decodeError) throw this.decodeError;
    return null;
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet["type"]>(
    type: T,
    what: string,
  ): Promise<Extract<Packet, { type: T }>> {
    const packet = await this.next(STEP_MS, what);
    assert.ok(packet !== null, `${what}: link ended instead`);
    assert.equal(
      packet.type,
      type,
      `${what}: got type 0x${packet.type.toString(16)} ${JSON.stringify(packet)}`,
    );
    return packet as Extract<Packet, { type: T }>;
  }

  /** Waits for the end of the link; fails if another packet arrives first. */
  async expectEof(what = "the relay to close the link"): Promise<void> {
    const packet = await this.next(STEP_MS, what);
    assert.equal(packet, null, `${what}: got ${JSON.stringify(packet)} instead`);
  }

  /**
   * Waits for an Error frame with `reason` (skipping a bounded number of
   * other packets), then for the relay to close the link.
   */
  async expectError(reason: number, what = "an Error frame"): Promise<ErrorPacket> {
    const skipped: string[] = [];
    for (let i = 0; i <= MAX_SKIPPED_PACKETS; i++) {
      const packet = await this.next(STEP_MS, `${what} (${reasonName(reason)})`);
      assert.ok(packet !== null, `${what}: link ended without an Error frame`);
      if (packet.type !== PacketType.Error) {
        skipped.push(`0x${packet.type.toString(16)}`);
        continue;
      }
      assert.equal(
        reasonName(packet.reason),
        reasonName(reason),
        `${what}: wrong reason, message: ${packet.message}`,
      );
      await this.expectEof(`${what}: the relay to close the link after the Error frame`);
      return packet;
    }
    throw new Error(`${what}: no Error frame among ${skipped.join(", ")}`);
  }

  /** Sends a Hello of `version` and waits for the relay's Challenge. */
  async greet(version: number = PROTOCOL_VERSION): Promise<ChallengePacket> {
    await this.send({ type: PacketType.Hello, version });
    return await this.expect(PacketType.Challenge, "Challenge after Hello");
  }

  /** Greets the relay and sends the Proof of `identity` (and `options`); does not wait for more. */
  async prove(identity?: RawIdentity, options: ProofOptions = {}): Promise<ProofPacket> {
    const challenge = await this.greet();
    const proof = await proofFor(challenge, identity, options);
    await this.send(proof);
    return proof;
  }

  /**
   * The whole handshake: Hello, Challenge, the Proof of `identity` (a fresh
   * one by default; null for none), VirtualIP. Returns the address.
   */
  async handshake(identity?: RawIdentity, options: ProofOptions = {}): Promise<number> {
    await this.prove(identity, options);
    const answer = await this.expect(PacketType.VirtualIP, "VirtualIP after Proof");
    this.address = answer.address;
    return answer.address;
  }

  /** Closes the link and waits for the read loop to finish. Idempotent. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #readLoop(): Promise<void> {
    try {
      await readPackets(this.conn, (packet) => this.#queue.push(copyPacket(packet)), () => {
        this.#wake();
      });
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) this.reset = true;
      else if (
        !(error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted)
      ) {
        this.decodeError = error as Error;
      }
    } finally {
      this.#ended = true;
      this.#wake();
    }
  }

  #wake(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}

/** Fills `into` from `conn` exactly; fails if the link ends first. */
async function readFull(conn: Deno.Conn, into: Uint8Array, what: string): Promise<void> {
  let filled = 0;
  for (let reads = 0; reads <= into.length && filled < into.length; reads++) {
    const count = await withTimeout(conn.read(into.subarray(filled)), STEP_MS, what);
    assert.ok(count !== null, `the relay closed the link before ${what}`);
    filled += count;
  }
}

/**
 * Reads exactly one frame from `conn`, not a byte beyond it, which must be
 * of `type`: for tests whose client must otherwise leave the relay's frames
 * unread.
 */
export async function readFrame<T extends Packet["type"]>(
  conn: Deno.Conn,
  type: T,
  what: string,
): Promise<Extract<Packet, { type: T }>> {
  const header = new Uint8Array(5);
  await readFull(conn, header, what);
  const length = new DataView(header.buffer).getUint32(0);
  const frame = new Uint8Array(5 + length);
  frame.set(header);
  await readFull(conn, frame.subarray(5), what);
  const packets: Packet[] = [];
  new FrameDecoder().push(frame, (decoded) => packets.push(copyPacket(decoded)));
  assert.equal(packets.length, 1, `${what}: no frame decoded`);
  assert.equal(packets[0].type, type, `${what}: got ${JSON.stringify(packets[0])}`);
  return packets[0] as Extract<Packet, { type: T }>;
}

/**
 * The handshake over a bare connection (Hello, Challenge, Proof, VirtualIP),
 * reading nothing beyond the VirtualIP: for clients that then stop reading.
 * Returns the address.
 */
export async function bareHandshake(
  conn: Deno.Conn,
  identity?: RawIdentity,
  options: ProofOptions = {},
): Promise<number> {
  await writeAllTo(conn, encode({ type: PacketType.Hello, version: PROTOCOL_VERSION }));
  const challenge = await readFrame(conn, PacketType.Challenge, "Challenge");
  await writeAllTo(conn, encode(await proofFor(challenge, identity, options)));
  return (await readFrame(conn, PacketType.VirtualIP, "VirtualIP")).address;
}

async function writeAllTo(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0, writes = 0; written < bytes.length && writes <= bytes.length; writes++) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Opens a raw client (see {@linkcode RawClient}). */
export function rawClient(port: number): Promise<RawClient> {
  return RawClient.open(port);
}

/** A client's virtual IP as a u32. */
export function addressOf(client: AlphaNetClient): number {
  const [a, b, c, d] = client.virtualIp.split(".").map(Number);
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/**
 * Opens a connection from a handshaken raw client to `owner`'s listener on
 * `port` by hand (status request, then connection request with window 16384),
 * and returns the raw client's connection id, the accepted window and the
 * owner's end.
 */
export async function rawConnect(
  raw: RawClient,
  owner: AlphaNetClient,
  listener: VirtualListener,
  port: number,
): Promise<{ connectionId: number; window: number; ownerEnd: VirtualConn }> {
  const destination = addressOf(owner);
  await raw.send({
    type: PacketType.SocketStatusRequest,
    requestId: 1,
    source: raw.address,
    destination,
    destinationPort: port,
  });
  const status = await raw.expect(PacketType.SocketStatusResponse, "status response");
  assert.equal(status.requestId, 1);
  assert.equal(status.listening, true);
  const accepting = listener.accept();
  await raw.send({
    type: PacketType.SocketConnectionRequest,
    requestId: 2,
    connectionId: 0,
    source: raw.address,
    sourcePort: 50_000,
    destination,
    destinationPort: port,
    window: 16_384,
  });
  const answer = await raw.expect(PacketType.SocketConnectionResponse, "connection response");
  assert.equal(answer.requestId, 2);
  assert.equal(answer.accepted, true);
  assert.ok(answer.connectionId >= 1);
  const ownerEnd = await withTimeout(accepting, STEP_MS, "owner to accept the raw connection");
  return { connectionId: answer.connectionId, window: answer.window, ownerEnd };
}
