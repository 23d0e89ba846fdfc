/**
 * A relay played by the test, frame by frame, over real TCP on 127.0.0.1:
 * for the client's side of the handshake, where the test must send what a
 * real relay never would (a VirtualIP before the Proof, a second Challenge).
 * Self-contained on purpose: only the protocol codec and the bare test
 * helpers (a listener, a read loop), no relay or client code.
 */

import assert from "node:assert/strict";
import { encode, type Packet, PacketType } from "../../protocol/mod.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { LinkListener } from "../_helpers/link_listener.ts";
import { readPackets } from "../_helpers/read_packets.ts";

/** Deep-copies a decoded packet: the decoder's byte fields are views valid during the callback only. */
function copyPacket(packet: Packet): Packet {
  return structuredClone(packet);
}

/** One client link as the scripted relay sees it. */
export class ScriptedLink {
  readonly conn: Deno.TcpConn;
  readonly #queue: Packet[] = [];
  #ended = false;
  #wake: (() => void) | null = null;
  readonly #loop: Promise<void>;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#loop = this.#read();
  }

  async #read(): Promise<void> {
    try {
      await readPackets(this.conn, (packet) => this.#queue.push(copyPacket(packet)), () => {
        this.#wake?.();
      });
    } catch {
      // Reset or closed by close(): the link is over either way.
    } finally {
      this.#ended = true;
      this.#wake?.();
    }
  }

  /** The next packet from the client, or null once its link ended. */
  async next(what = "the next packet from the client"): Promise<Packet | null> {
    if (this.#queue.length === 0 && !this.#ended) {
      await withTimeout(new Promise<void>((wake) => this.#wake = wake), STEP_MS, what);
      this.#wake = null;
    }
    return this.#queue.shift() ?? null;
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet["type"]>(
    type: T,
    what: string,
  ): Promise<Extract<Packet, { type: T }>> {
    const packet = await this.next(what);
    assert.ok(packet !== null, `${what}: the client's link ended instead`);
    assert.equal(packet.type, type, `${what}: got ${JSON.stringify(packet)}`);
    return packet as Extract<Packet, { type: T }>;
  }

  /** Resolves once the client has closed its side (and nothing more came before). */
  async expectEnd(what: string): Promise<void> {
    const packet = await this.next(what);
    assert.equal(packet, null, `${what}: got ${JSON.stringify(packet)}`);
  }

  /** Encodes and writes `packets` in one write. */
  async send(...packets: Packet[]): Promise<void> {
    const frames = packets.map((packet) => encode(packet));
    const bytes = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
    let at = 0;
    for (const frame of frames) {
      bytes.set(frame, at);
      at += frame.length;
    }
    for (let written = 0, writes = 0; written < bytes.length && writes <= bytes.length; writes++) {
      written += await this.conn.write(bytes.subarray(written));
    }
  }

  /** Closes the link (idempotent) and waits for its read loop. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}

/** A TCP listener on 127.0.0.1 whose links the test scripts. */
export class ScriptedRelay extends LinkListener<ScriptedLink> {
  constructor() {
    super((conn) => new ScriptedLink(conn));
  }
}

/** A Challenge with `relayId` filled with `fill` and a fresh random nonce. */
export function challenge(fill = 0x11): Extract<Packet, { type: typeof PacketType.Challenge }> {
  return {
    type: PacketType.Challenge,
    relayId: new Uint8Array(32).fill(fill),
    nonce: crypto.getRandomValues(new Uint8Array(32)),
  };
}
