/**
 * A hand-built WebSocket client of the relay for wire and hostile-input
 * tests: its own RFC 6455 framing over a bare TCP (or TLS) connection, so a
 * test can send any bytes (unmasked frames, RSV bits, text, huge lengths)
 * and read exactly as much as it asks for (a client that stops reading
 * reads nothing more). Its AlphaNET handshake is the real one, signed with
 * the client library's credentials (see raw_client.ts).
 */

import assert from "node:assert/strict";
import {
  type ChallengePacket,
  encode,
  type ErrorPacket,
  FrameDecoder,
  type Packet,
  PacketType,
  PROTOCOL_VERSION,
  reasonName,
} from "../../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./async.ts";
import { concatBytes } from "./bytes.ts";
import { proofFor, type ProofOptions, type RawIdentity } from "./raw_client.ts";

/** WebSocket opcodes (RFC 6455 §5.2). */
export const WsOpcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** How a test client frame is built; every field has the well-formed default. */
export interface ClientFrameOptions {
  /** FIN bit. @default {true} */
  readonly fin?: boolean;
  /** RSV1..3 as the 3 bits above the opcode. @default {0} */
  readonly rsv?: number;
  /** Whether to mask (clients must). @default {true} */
  readonly masked?: boolean;
  /** The mask key. @default {random} */
  readonly mask?: Uint8Array;
  /** The length the header announces, if not the payload's own. */
  readonly announcedLength?: number;
  /** The length field's form, if not the shortest one. */
  readonly lengthForm?: 7 | 16 | 64;
}

/** One client frame: header (masked unless told) and payload, built without the relay's codec. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array = new Uint8Array(0),
  options: ClientFrameOptions = {},
): Uint8Array {
  const { fin = true, rsv = 0, masked = true } = options;
  const length = options.announcedLength ?? payload.length;
  const form = options.lengthForm ?? (length < 126 ? 7 : length < 65_536 ? 16 : 64);
  const header: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (form === 7) {
    header.push(maskBit | length);
  } else if (form === 16) {
    header.push(maskBit | 126, length >>> 8, length & 0xff);
  } else {
    header.push(maskBit | 127);
    const high = Math.floor(length / 2 ** 32);
    for (const word of [high, length >>> 0]) {
      header.push(word >>> 24, (word >>> 16) & 0xff, (word >>> 8) & 0xff, word & 0xff);
    }
  }
  const mask = options.mask ?? crypto.getRandomValues(new Uint8Array(4));
  if (masked) header.push(...mask);
  const body = payload.slice();
  if (masked) { for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4]; }
  return concatBytes([new Uint8Array(header), body]);
}

/** A masked binary message carrying `bytes` in one frame. */
export function binaryMessage(bytes: Uint8Array): Uint8Array {
  return clientFrame(WsOpcode.Binary, bytes);
}

/** What the request head of a test upgrade says; every field has the well-formed default. */
export interface UpgradeOptions {
  readonly method?: string;
  readonly path?: string;
  readonly version?: string;
  /** The `Sec-WebSocket-Protocol` offer; null for none. @default {"alphanet"} */
  readonly protocol?: string | null;
  /** Headers replacing (by name, case-insensitive) or adding to the defaults; null drops one. */
  readonly headers?: Readonly<Record<string, string | null>>;
}

/** The test client's fixed key, and the accept value RFC 6455 §1.3 gives for it. */
export const SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
export const SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/** A request head (CRLF lines, blank line included) for an upgrade at `port`. */
export function upgradeHead(port: number, options: UpgradeOptions = {}): string {
  const { method = "GET", path = "/", version = "HTTP/1.1", protocol = "alphanet" } = options;
  const headers = new Map<string, [string, string]>();
  const set = (name: string, value: string | null) => {
    if (value === null) headers.delete(name.toLowerCase());
    else headers.set(name.toLowerCase(), [name, value]);
  };
  set("Host", `127.0.0.1:${port}`);
  set("Upgrade", "websocket");
  set("Connection", "Upgrade");
  set("Sec-WebSocket-Key", SAMPLE_KEY);
  set("Sec-WebSocket-Version", "13");
  if (protocol !== null) set("Sec-WebSocket-Protocol", protocol);
  for (const [name, value] of Object.entries(options.headers ?? {})) set(name, value);
  const lines = [`${method} ${path} ${version}`];
  for (const [name, value] of headers.values()) lines.push(`${name}: ${value}`);
  return lines.join("\r\n") + "\r\n\r\n";
}

/** An HTTP response as the relay sent it. */
export interface HttpResponse {
  readonly status: number;
  /** The status line. */
  readonly statusLine: string;
  /** Header names lowercased. */
  readonly headers: ReadonlyMap<string, string>;
  /** The body, when the response had one (read by Content-Length). */
  readonly body: string;
}

/** A server frame as the test client read it. */
export interface ServerFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Uint8Array;
}

/** A Close frame's code and reason. */
export interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

/** Copies a decoded packet: the decoder hands out views valid only during its callback. */
function copyPacket(packet: Packet): Packet {
  const copy: Record<string, unknown> = { ...packet };
  for (const [key, value] of Object.entries(copy)) {
    if (value instanceof Uint8Array) copy[key] = value.slice();
  }
  return copy as unknown as Packet;
}

/** Reads bytes from a connection on demand, keeping what a parse did not take. */
class PullReader {
  #bytes: Uint8Array = new Uint8Array(0);
  ended = false;
  /** Whether the connection ended with a reset rather than a close. */
  reset = false;

  constructor(readonly conn: Deno.Conn) {}

  /** Bytes read and not yet taken. */
  get buffered(): Uint8Array {
    return this.#bytes;
  }

  /** Reads once more; false at the end of the stream. */
  async fill(what: string, ms = STEP_MS): Promise<boolean> {
    if (this.ended) return false;
    const chunk = new Uint8Array(64 * 1024);
    let count: number | null;
    try {
      count = await withTimeout(this.conn.read(chunk), ms, what);
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
      this.reset = true;
      count = null;
    }
    if (count === null) {
      this.ended = true;
      return false;
    }
    this.#bytes = concatBytes([this.#bytes, chunk.subarray(0, count)]);
    return true;
  }

  /** Takes the first `count` buffered bytes. */
  take(count: number): Uint8Array {
    const taken = this.#bytes.slice(0, count);
    this.#bytes = this.#bytes.slice(count);
    return taken;
  }
}

/** Reads one HTTP response head (and a Content-Length body) from `reader`. */
async function readResponse(reader: PullReader, what: string): Promise<HttpResponse> {
  for (let reads = 0; reads < 1024; reads++) {
    const text = new TextDecoder().decode(reader.buffered);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const lines = text.slice(0, end).split("\r\n");
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const bodyLength = Number(headers.get("content-length") ?? 0);
      const headBytes = new TextEncoder().encode(text.slice(0, end + 4)).length;
      while (reader.buffered.length < headBytes + bodyLength) {
        assert.ok(await reader.fill(what), `${what}: the body was cut short`);
      }
      reader.take(headBytes);
      const body = new TextDecoder().decode(reader.take(bodyLength));
      return { status: Number(lines[0].split(" ")[1]), statusLine: lines[0], headers, body };
    }
    assert.ok(await reader.fill(what), `${what}: the link ended before a response: ${text}`);
  }
  throw new Error(`${what}: no response head within 1024 reads`);
}

/** Connects to 127.0.0.1:`port`, over TLS trusting `caCerts` when given. */
async function dial(port: number, caCerts?: string[]): Promise<Deno.Conn> {
  if (caCerts !== undefined) {
    return await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts });
  }
  const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
  conn.setNoDelay(true);
  return conn;
}

/**
 * Sends `head` (a request head, or any bytes) to the WebSocket port and
 * reads the relay's HTTP answer, then waits for it to close the link.
 */
export async function httpExchange(
  port: number,
  head: string | Uint8Array,
  caCerts?: string[],
): Promise<HttpResponse> {
  const conn = await dial(port, caCerts);
  const reader = new PullReader(conn);
  try {
    await writeAll(conn, typeof head === "string" ? new TextEncoder().encode(head) : head);
    const response = await readResponse(reader, "the relay's HTTP answer");
    for (let reads = 0; reads < 16 && !reader.ended; reads++) {
      await reader.fill("the relay to close after its answer");
    }
    assert.ok(reader.ended, "the relay keeps the link open after its answer");
    assert.equal(reader.buffered.length, 0, "bytes after the HTTP answer");
    return response;
  } finally {
    conn.close();
  }
}

/** Writes every byte of `bytes` to `conn`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0, writes = 0; written < bytes.length && writes <= bytes.length; writes++) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Options of {@linkcode RawWebSocket.open}. */
export interface RawWebSocketOptions extends UpgradeOptions {
  /** Connect over TLS trusting these CA certificates (wss://). */
  readonly caCerts?: string[];
  /** Bytes (frames) written in the same write as the request head, before any answer. */
  readonly pipelined?: Uint8Array;
}

/**
 * A hand-driven WebSocket client: writes arbitrary frames, reads the
 * relay's frames only when asked (message by message), decoding the
 * AlphaNET packets its binary messages carry.
 */
export class RawWebSocket {
  readonly conn: Deno.Conn;
  /** The relay's answer to the upgrade. */
  readonly response: HttpResponse;
  /** The virtual address from the handshake, once {@linkcode handshake} ran. */
  address = 0;
  /** The relay's Close frame, once read. */
  closeFrame: CloseFrame | null = null;
  /** Payloads of the Pongs read so far. */
  readonly pongs: Uint8Array[] = [];
  /** Binary messages read so far (their count), to see how the relay batches. */
  messages = 0;

  readonly #reader: PullReader;
  readonly #decoder = new FrameDecoder();
  readonly #packets: Packet[] = [];

  private constructor(conn: Deno.Conn, reader: PullReader, response: HttpResponse) {
    this.conn = conn;
    this.#reader = reader;
    this.response = response;
  }

  /**
   * Opens a WebSocket to the relay's WebSocket port and checks that the
   * relay switched protocols (for `alphanet` unless `options` say otherwise).
   */
  static async open(port: number, options: RawWebSocketOptions = {}): Promise<RawWebSocket> {
    const conn = await dial(port, options.caCerts);
    const reader = new PullReader(conn);
    try {
      const head = new TextEncoder().encode(upgradeHead(port, options));
      await writeAll(conn, concatBytes([head, options.pipelined ?? new Uint8Array(0)]));
      const response = await readResponse(reader, "the upgrade's answer");
      assert.equal(
        response.status,
        101,
        `upgrade refused: ${response.statusLine} ${response.body}`,
      );
      return new RawWebSocket(conn, reader, response);
    } catch (error) {
      conn.close();
      throw error;
    }
  }

  /** Whether the relay reset the link instead of closing it. */
  get reset(): boolean {
    return this.#reader.reset;
  }

  /** Writes raw bytes (frames built by the test). */
  write(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  /** Encodes packets and sends them as one binary message. */
  send(...packets: Packet[]): Promise<void> {
    return this.write(binaryMessage(concatBytes(packets.map((packet) => encode(packet)))));
  }

  /** The relay's next frame (any opcode), or null at the end of the stream. */
  async nextFrame(what = "the relay's next frame", ms = STEP_MS): Promise<ServerFrame | null> {
    const reader = this.#reader;
    for (let reads = 0; reads < 100_000; reads++) {
      const bytes = reader.buffered;
      if (bytes.length >= 2) {
        assert.equal(bytes[1] & 0x80, 0, "the relay masked a frame");
        assert.equal(bytes[0] & 0x70, 0, "the relay set RSV bits");
        const length7 = bytes[1] & 0x7f;
        const extra = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
        if (bytes.length >= 2 + extra) {
          const view = new DataView(bytes.buffer, bytes.byteOffset);
          const length = extra === 0
            ? length7
            : extra === 2
            ? view.getUint16(2)
            : Number(view.getBigUint64(2));
          if (bytes.length >= 2 + extra + length) {
            const frame = reader.take(2 + extra + length);
            return {
              fin: (frame[0] & 0x80) !== 0,
              opcode: frame[0] & 0x0f,
              payload: frame.subarray(2 + extra),
            };
          }
        }
      }
      if (!(await reader.fill(what, ms))) {
        assert.equal(reader.buffered.length, 0, `${what}: the link ended inside a frame`);
        return null;
      }
    }
    throw new Error(`${what}: no frame within 100000 reads`);
  }

  /**
   * The next AlphaNET packet, or null once the relay's Close frame (kept in
   * {@linkcode closeFrame}) or the end of the stream came first.
   */
  async next(what = "the next packet from the relay", ms = STEP_MS): Promise<Packet | null> {
    for (let frames = 0; frames < 100_000 && this.#packets.length === 0; frames++) {
      if (this.closeFrame !== null) return null;
      const frame = await this.nextFrame(what, ms);
      if (frame === null) return null;
      if (frame.opcode === WsOpcode.Binary || frame.opcode === WsOpcode.Continuation) {
        if (frame.opcode === WsOpcode.Binary) this.messages++;
        this.#decoder.push(frame.payload, (packet) => this.#packets.push(copyPacket(packet)));
      } else if (frame.opcode === WsOpcode.Close) {
        const view = new DataView(frame.payload.buffer, frame.payload.byteOffset);
        this.closeFrame = frame.payload.length >= 2
          ? { code: view.getUint16(0), reason: new TextDecoder().decode(frame.payload.subarray(2)) }
          : { code: 1005, reason: "" };
      } else if (frame.opcode === WsOpcode.Pong) {
        this.pongs.push(frame.payload.slice());
      } else {
        throw new Error(`${what}: unexpected opcode ${frame.opcode} from the relay`);
      }
    }
    return this.#packets.shift() ?? null;
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet["type"]>(
    type: T,
    what: string,
  ): Promise<Extract<Packet, { type: T }>> {
    const packet = await this.next(what);
    assert.ok(
      packet !== null,
      `${what}: link ended instead (close ${JSON.stringify(this.closeFrame)})`,
    );
    assert.equal(packet.type, type, `${what}: got ${JSON.stringify(packet)}`);
    return packet as Extract<Packet, { type: T }>;
  }

  /**
   * Reads until the relay's Close frame, which must have `code` (and
   * `reason`, when given), then the end of the stream; fails on any packet
   * in between. Returns the Close frame.
   */
  async expectClose(
    code: number,
    reason?: string,
    what = "the relay's Close",
  ): Promise<CloseFrame> {
    const packet = await this.next(what);
    assert.equal(packet, null, `${what}: got ${JSON.stringify(packet)} first`);
    assert.ok(this.closeFrame !== null, `${what}: the link ended without a Close frame`);
    assert.equal(this.closeFrame.code, code, `${what}: ${JSON.stringify(this.closeFrame)}`);
    if (reason !== undefined) assert.equal(this.closeFrame.reason, reason);
    assert.equal(await this.nextFrame(`${what}: the end of the stream after it`), null);
    return this.closeFrame;
  }

  /**
   * Waits for an Error frame with `reason` (skipping at most 64 other
   * packets), then the Close frame 4000 + `reason` with the same text, then
   * the end of the stream. Returns the Error frame.
   */
  async expectError(reason: number, what = "an Error frame"): Promise<ErrorPacket> {
    for (let skipped = 0; skipped <= 64; skipped++) {
      const packet = await this.next(`${what} (${reasonName(reason)})`);
      assert.ok(
        packet !== null,
        `${what}: no Error frame (close ${JSON.stringify(this.closeFrame)})`,
      );
      if (packet.type !== PacketType.Error) continue;
      assert.equal(reasonName(packet.reason), reasonName(reason), packet.message);
      await this.expectClose(4000 + reason, packet.message, `${what}: the Close after it`);
      return packet;
    }
    throw new Error(`${what}: no Error frame among 64 packets`);
  }

  /** Sends a Hello and waits for the relay's Challenge. */
  async greet(version: number = PROTOCOL_VERSION): Promise<ChallengePacket> {
    await this.send({ type: PacketType.Hello, version });
    return await this.expect(PacketType.Challenge, "Challenge after Hello");
  }

  /** The whole AlphaNET handshake; returns the address. */
  async handshake(identity?: RawIdentity, options: ProofOptions = {}): Promise<number> {
    const challenge = await this.greet();
    await this.send(await proofFor(challenge, identity, options));
    const answer = await this.expect(PacketType.VirtualIP, "VirtualIP after Proof");
    this.address = answer.address;
    return answer.address;
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
