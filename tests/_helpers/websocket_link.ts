/**
 * A well-formed WebSocket client of the relay: Deno's own `WebSocket`
 * (subprotocol `alphanet`, binary messages), carrying AlphaNET frames the
 * test encodes and decodes itself, so the relay's carrier is tested against
 * a WebSocket implementation that is not ours.
 */

import assert from "node:assert/strict";
import {
  type ChallengePacket,
  encode,
  FrameDecoder,
  type Packet,
  PacketType,
  PROTOCOL_VERSION,
} from "../../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./async.ts";
import { concatBytes } from "./bytes.ts";
import { proofFor, type ProofOptions, type RawIdentity } from "./raw_client.ts";

/** Copies a decoded packet: the decoder hands out views valid only during its callback. */
function copyPacket(packet: Packet): Packet {
  const copy: Record<string, unknown> = { ...packet };
  for (const [key, value] of Object.entries(copy)) {
    if (value instanceof Uint8Array) copy[key] = value.slice();
  }
  return copy as unknown as Packet;
}

/** A Deno WebSocket to the relay, read as a stream of AlphaNET packets. */
export class WebSocketLink {
  readonly socket: WebSocket;
  /** The virtual address from the handshake, once {@linkcode handshake} ran. */
  address = 0;
  /** Resolves with the close event, however the socket closed. */
  readonly closed: Promise<CloseEvent>;
  /** Text messages received (the relay must send none). */
  textMessages = 0;

  readonly #decoder = new FrameDecoder();
  readonly #packets: Packet[] = [];
  #ended = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        this.textMessages++;
        return;
      }
      this.#decoder.push(
        new Uint8Array(event.data as ArrayBuffer),
        (packet) => this.#packets.push(copyPacket(packet)),
      );
      this.#wake();
    };
    this.closed = new Promise((resolve) => {
      socket.onclose = (event) => {
        this.#ended = true;
        this.#wake();
        resolve(event);
      };
    });
  }

  /** Opens `url` with the subprotocol `alphanet` (or `protocols`) and waits for it to open. */
  static async open(url: string, protocols: string[] = ["alphanet"]): Promise<WebSocketLink> {
    const socket = new WebSocket(url, protocols);
    const link = new WebSocketLink(socket);
    const opened = new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`the WebSocket to ${url} failed`));
    });
    try {
      await withTimeout(opened, STEP_MS, `the WebSocket to ${url} to open`);
    } catch (error) {
      await link.close();
      throw error;
    }
    return link;
  }

  /** Encodes `packets` and sends them as one binary message. */
  send(...packets: Packet[]): void {
    this.socket.send(concatBytes(packets.map((packet) => encode(packet))));
  }

  /** The next packet, or null once the socket has closed and every packet was taken. */
  async next(what = "the next packet from the relay", ms = STEP_MS): Promise<Packet | null> {
    const deadline = performance.now() + ms;
    // Each pass waits for one message; the deadline bounds them.
    for (let waits = 0; this.#packets.length === 0 && !this.#ended; waits++) {
      const left = deadline - performance.now();
      if (left <= 0 || waits > 1_000_000) throw new Error(`Timed out after ${ms} ms: ${what}`);
      await withTimeout(new Promise<void>((resolve) => this.#waiters.push(resolve)), left, what);
    }
    return this.#packets.shift() ?? null;
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet["type"]>(
    type: T,
    what: string,
  ): Promise<Extract<Packet, { type: T }>> {
    const packet = await this.next(what);
    assert.ok(packet !== null, `${what}: the socket closed instead`);
    assert.equal(packet.type, type, `${what}: got ${JSON.stringify(packet)}`);
    return packet as Extract<Packet, { type: T }>;
  }

  /** Sends a Hello and waits for the relay's Challenge. */
  async greet(): Promise<ChallengePacket> {
    this.send({ type: PacketType.Hello, version: PROTOCOL_VERSION });
    return await this.expect(PacketType.Challenge, "Challenge after Hello");
  }

  /** The whole AlphaNET handshake; returns the address. */
  async handshake(identity?: RawIdentity, options: ProofOptions = {}): Promise<number> {
    const challenge = await this.greet();
    this.send(await proofFor(challenge, identity, options));
    const answer = await this.expect(PacketType.VirtualIP, "VirtualIP after Proof");
    this.address = answer.address;
    return answer.address;
  }

  /** Closes the socket (code 1000) and waits for its close event. */
  async close(): Promise<CloseEvent> {
    if (
      this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN
    ) {
      this.socket.close(1000);
    }
    return await withTimeout(this.closed, STEP_MS, "the WebSocket to close");
  }

  #wake(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}
