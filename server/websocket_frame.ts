/**
 * The WebSocket framing of RFC 6455 §5 as the relay's carrier needs it, pure
 * (no I/O): a streaming reader that turns a client's masked frames, in
 * place, into the AlphaNET byte stream their binary messages carry, and the
 * encoders of the relay's own unmasked frames.
 *
 * @module
 */

import { WEBSOCKET_REASON_CLOSE_BASE } from "../protocol/constants.ts";

/** Largest message a client may send, the parts of a fragmented one together. */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 1_048_576;

/** Largest payload of a control frame (Close, Ping, Pong). */
export const MAX_CONTROL_PAYLOAD_BYTES = 125;

/** Largest close reason: a control payload less its 2-byte code. */
export const MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD_BYTES - 2;

/** Longest frame header: 2 bytes, a 64-bit length, a mask key. */
export const MAX_FRAME_HEADER_BYTES = 14;

/** Frame opcodes (RFC 6455 §5.2). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** Close codes the relay sends (RFC 6455 §7.4); an AlphaNET reason R closes with 4000 + R. */
export const CloseCode = {
  Normal: 1000,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  MessageTooBig: 1009,
  /** Close code of AlphaNET reason 0; reason R is this plus R. */
  ReasonBase: WEBSOCKET_REASON_CLOSE_BASE,
} as const;

/** A client frame that breaks RFC 6455 or the carrier's rules: the close code and the text. */
export interface WebSocketViolation {
  readonly code: number;
  readonly message: string;
}

const FIN = 0x80;
const RSV_BITS = 0x70;
const OPCODE_BITS = 0x0f;
const MASK_BIT = 0x80;
const LENGTH_BITS = 0x7f;
const LENGTH_16 = 126;
const LENGTH_64 = 127;
/** Payload lengths at and above this take a 64-bit length field. */
const MIN_LENGTH_64 = 0x10000;
const MASK_BYTES = 4;
/** Below this many bytes, unmasking a word at a time saves nothing over the byte loop. */
const MIN_WORD_UNMASK_BYTES = 16;

/** A scratch word that lays a rotated mask out in memory order, whatever the platform's endianness. */
const maskScratch = new Uint8Array(4);
const maskScratchWord = new Uint32Array(maskScratch.buffer);

/**
 * XORs `bytes[start..end)` with the 4-byte `mask`, `phase` being the index
 * in the mask of the byte at `start` (how far into its payload it is). Four
 * bytes at a time where the memory is aligned.
 *
 * @param bytes The payload bytes, changed in place.
 * @param start First byte to unmask.
 * @param end One past the last byte.
 * @param mask The frame's mask key.
 * @param phase The payload offset of `bytes[start]`, modulo 4.
 */
export function unmask(
  bytes: Uint8Array,
  start: number,
  end: number,
  mask: Uint8Array,
  phase: number,
): void {
  let i = start;
  let p = phase & 3;
  if (end - start >= MIN_WORD_UNMASK_BYTES) {
    const base = bytes.byteOffset;
    for (; ((base + i) & 3) !== 0; i++, p = (p + 1) & 3) bytes[i] ^= mask[p];
    const words = (end - i) >>> 2;
    for (let k = 0; k < 4; k++) maskScratch[k] = mask[(p + k) & 3];
    const key = maskScratchWord[0];
    const view = new Uint32Array(bytes.buffer, base + i, words);
    for (let k = 0; k < words; k++) view[k] ^= key;
    i += words << 2; // whole words: the phase is unchanged
  }
  for (; i < end; i++, p = (p + 1) & 3) bytes[i] ^= mask[p];
}

/**
 * The length of the header of a relay frame (never masked) whose payload
 * is `payloadLength` bytes: 2, 4 or 10.
 *
 * @param payloadLength The payload's length.
 * @returns The header's length.
 */
export function frameHeaderLength(payloadLength: number): number {
  return payloadLength < LENGTH_16 ? 2 : payloadLength < MIN_LENGTH_64 ? 4 : 10;
}

/**
 * Writes the header of one unfragmented, unmasked frame into `target` at
 * `offset`, with each length in its shortest form.
 *
 * @param target Where the header goes.
 * @param offset Where in `target`.
 * @param opcode The frame's opcode.
 * @param payloadLength The payload's length (below 2^53).
 * @returns The header's length.
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  payloadLength: number,
): number {
  target[offset] = FIN | opcode;
  if (payloadLength < LENGTH_16) {
    target[offset + 1] = payloadLength;
    return 2;
  }
  if (payloadLength < MIN_LENGTH_64) {
    target[offset + 1] = LENGTH_16;
    target[offset + 2] = payloadLength >>> 8;
    target[offset + 3] = payloadLength & 0xff;
    return 4;
  }
  target[offset + 1] = LENGTH_64;
  const high = Math.floor(payloadLength / 0x1_0000_0000);
  const view = new DataView(target.buffer, target.byteOffset + offset + 2, 8);
  view.setUint32(0, high);
  view.setUint32(4, payloadLength >>> 0);
  return 10;
}

/**
 * One whole unmasked frame: header and payload.
 *
 * @param opcode The frame's opcode.
 * @param payload Its payload.
 * @returns The frame's bytes.
 */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(frameHeaderLength(payload.length) + payload.length);
  frame.set(payload, writeFrameHeader(frame, 0, opcode, payload.length));
  return frame;
}

/**
 * `text` as UTF-8 of at most `maxBytes` bytes, cut on a character boundary.
 *
 * @param text Any text.
 * @param maxBytes The most bytes the result may have.
 * @returns The UTF-8 bytes.
 */
export function truncateUtf8(text: string, maxBytes: number): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes;
  // Back off over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * A Close frame with `code` and `reason` (cut to 123 UTF-8 bytes on a
 * character boundary).
 *
 * @param code The close code.
 * @param reason The close reason, for people.
 * @returns The frame's bytes.
 */
export function encodeCloseFrame(code: number, reason: string): Uint8Array {
  const text = truncateUtf8(reason, MAX_CLOSE_REASON_BYTES);
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return encodeFrame(Opcode.Close, payload);
}

/** What a frame's payload is for, while it is being read. */
type PayloadKind = "data" | "control";

/**
 * Reads a client's frames as they arrive, in place: each call takes the
 * bytes of one read and leaves at the front of the same buffer the unmasked
 * payload of its binary (and continuation) frames, the AlphaNET stream.
 * Frame boundaries may fall anywhere between reads. It checks every header
 * as soon as its bytes are there, before any of the payload is taken, and
 * holds at most one header (14 bytes) and one control payload (125 bytes).
 *
 * After a violation or the client's Close it takes no more bytes; the
 * caller looks at {@linkcode violation} and {@linkcode closeReceived}.
 */
export class WebSocketFrameReader {
  /** Set at the first frame that breaks the rules; nothing is read after it. */
  violation: WebSocketViolation | null = null;
  /** Set when the client's Close frame has been read; nothing is read after it. */
  closeReceived = false;

  readonly #maxMessageBytes: number;
  /** The header being read, and how many of its bytes are here and needed. */
  readonly #header = new Uint8Array(MAX_FRAME_HEADER_BYTES);
  #headerHave = 0;
  #headerNeed = 2;
  /** The payload being read: its kind, bytes left, mask key and mask phase. */
  #payloadKind: PayloadKind | null = null;
  #payloadLeft = 0;
  readonly #mask = new Uint8Array(MASK_BYTES);
  #maskPhase = 0;
  /** The frame's FIN bit and opcode, kept from its header until its payload ends. */
  #fin = false;
  #opcode = 0;
  /** Whether a fragmented data message has started and not yet ended. */
  #inMessage = false;
  /** Payload bytes of the current data message so far. */
  #messageBytes = 0;
  /** A control frame's payload as it arrives; created at the first one. */
  #control: Uint8Array | null = null;
  #controlHave = 0;
  /** The payload of the latest Ping not yet taken. */
  #ping: Uint8Array | null = null;

  /** A reader at the start of a stream; `maxMessageBytes` caps a message. */
  constructor(maxMessageBytes: number = MAX_WEBSOCKET_MESSAGE_BYTES) {
    this.#maxMessageBytes = maxMessageBytes;
  }

  /** Whether the reader is between frames (no header or payload half read). */
  get betweenFrames(): boolean {
    return this.#payloadKind === null && this.#headerHave === 0;
  }

  /**
   * The payload of the latest Ping since the last call, or null: only the
   * latest is kept, so a flood of Pings costs one Pong.
   */
  takePing(): Uint8Array | null {
    const ping = this.#ping;
    this.#ping = null;
    return ping;
  }

  /**
   * Takes `buffer[0..length)`, the bytes of one read, and moves the stream
   * bytes they carry to the front of `buffer`, unmasked.
   *
   * @param buffer The read's bytes; overwritten.
   * @param length How many bytes the read gave.
   * @returns How many stream bytes are now at the front of `buffer`.
   */
  push(buffer: Uint8Array, length: number): number {
    let read = 0;
    let written = 0;
    while (read < length && this.violation === null && !this.closeReceived) {
      if (this.#payloadKind === null) {
        read = this.#readHeader(buffer, read, length);
        continue;
      }
      const count = Math.min(this.#payloadLeft, length - read);
      if (this.#payloadKind === "data") {
        if (written !== read) buffer.copyWithin(written, read, read + count);
        unmask(buffer, written, written + count, this.#mask, this.#maskPhase);
        written += count;
      } else {
        const control = this.#control!;
        control.set(buffer.subarray(read, read + count), this.#controlHave);
        unmask(control, this.#controlHave, this.#controlHave + count, this.#mask, this.#maskPhase);
        this.#controlHave += count;
      }
      read += count;
      this.#payloadLeft -= count;
      this.#maskPhase = (this.#maskPhase + count) & 3;
      if (this.#payloadLeft === 0) this.#endFrame();
    }
    return written;
  }

  /** Takes header bytes from `buffer[read..length)`; returns where it stopped. */
  #readHeader(buffer: Uint8Array, read: number, length: number): number {
    const header = this.#header;
    while (read < length && this.#headerHave < this.#headerNeed) {
      header[this.#headerHave++] = buffer[read++];
      if (this.#headerHave === 2) {
        const need = this.#checkStart(header[0], header[1]);
        if (need < 0) return read;
        this.#headerNeed = need;
      }
    }
    if (this.#headerHave === this.#headerNeed) this.#startPayload();
    return read;
  }

  /**
   * Checks a header's first two bytes: everything but the extended length.
   * Returns the header's whole length, or -1 after recording a violation.
   */
  #checkStart(first: number, second: number): number {
    const opcode = first & OPCODE_BITS;
    const fin = (first & FIN) !== 0;
    const length7 = second & LENGTH_BITS;
    if ((first & RSV_BITS) !== 0) {
      return this.#fail(CloseCode.ProtocolError, "frame with RSV bits set (no extension agreed)");
    }
    const control = opcode >= Opcode.Close;
    if (
      !(control
        ? opcode <= Opcode.Pong
        : opcode === Opcode.Continuation || opcode === Opcode.Text || opcode === Opcode.Binary)
    ) {
      return this.#fail(
        CloseCode.ProtocolError,
        `frame with unknown opcode 0x${opcode.toString(16)}`,
      );
    }
    if ((second & MASK_BIT) === 0) {
      return this.#fail(CloseCode.ProtocolError, "unmasked frame (a client must mask its frames)");
    }
    if (control) {
      if (!fin) return this.#fail(CloseCode.ProtocolError, "fragmented control frame");
      if (length7 > MAX_CONTROL_PAYLOAD_BYTES) {
        return this.#fail(CloseCode.ProtocolError, "control frame over 125 bytes");
      }
    } else if (opcode === Opcode.Continuation) {
      if (!this.#inMessage) {
        return this.#fail(
          CloseCode.ProtocolError,
          "continuation frame without a message to continue",
        );
      }
    } else if (this.#inMessage) {
      return this.#fail(CloseCode.ProtocolError, "new message inside a fragmented one");
    } else if (opcode === Opcode.Text) {
      return this.#fail(
        CloseCode.UnsupportedData,
        "text message: AlphaNET carries binary messages only",
      );
    }
    this.#fin = fin;
    this.#opcode = opcode;
    const lengthBytes = length7 === LENGTH_16 ? 2 : length7 === LENGTH_64 ? 8 : 0;
    return 2 + lengthBytes + MASK_BYTES;
  }

  /** The header is complete: checks its length and gets ready for the payload. */
  #startPayload(): void {
    const header = this.#header;
    const length7 = header[1] & LENGTH_BITS;
    let length = length7;
    let at = 2;
    if (length7 === LENGTH_16) {
      length = (header[2] << 8) | header[3];
      at = 4;
      if (length < LENGTH_16) return void this.#failLength();
    } else if (length7 === LENGTH_64) {
      const high = ((header[2] << 24) | (header[3] << 16) | (header[4] << 8) | header[5]) >>> 0;
      const low = ((header[6] << 24) | (header[7] << 16) | (header[8] << 8) | header[9]) >>> 0;
      at = 10;
      if (high >= 0x8000_0000) {
        return void this.#fail(CloseCode.ProtocolError, "frame length with its top bit set");
      }
      // Anything at or over 2^32 is far over the message cap; keep it at a safe integer.
      length = high > 0 ? Number.MAX_SAFE_INTEGER : low;
      if (length < MIN_LENGTH_64) return void this.#failLength();
    }
    this.#mask.set(header.subarray(at, at + MASK_BYTES));
    this.#maskPhase = 0;
    this.#headerHave = 0;
    this.#headerNeed = 2;
    if (this.#opcode >= Opcode.Close) {
      this.#payloadKind = "control";
      this.#control ??= new Uint8Array(MAX_CONTROL_PAYLOAD_BYTES);
      this.#controlHave = 0;
    } else {
      // Checked before a byte of the payload is taken: the client is told, not waited for.
      if (length > this.#maxMessageBytes - this.#messageBytes) {
        return void this.#fail(
          CloseCode.MessageTooBig,
          `message over ${this.#maxMessageBytes} bytes`,
        );
      }
      this.#messageBytes += length;
      this.#inMessage = !this.#fin;
      this.#payloadKind = "data";
    }
    this.#payloadLeft = length;
    if (length === 0) this.#endFrame();
  }

  /** A frame's payload is complete. */
  #endFrame(): void {
    if (this.#payloadKind === "data") {
      if (this.#fin) this.#messageBytes = 0;
    } else if (this.#opcode === Opcode.Ping) {
      this.#ping = this.#control!.slice(0, this.#controlHave);
    } else if (this.#opcode === Opcode.Close) {
      this.closeReceived = true;
    }
    // A Pong needs nothing: the relay sends no Pings of its own, so there is nothing to match.
    this.#payloadKind = null;
  }

  #failLength(): void {
    this.#fail(CloseCode.ProtocolError, "frame length not in its shortest form");
  }

  #fail(code: number, message: string): -1 {
    this.violation = { code, message };
    return -1;
  }
}
