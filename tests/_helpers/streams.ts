/** Bounded reads of a whole connection or byte stream. */

import assert from "node:assert/strict";
import type { VirtualConn } from "../../mod.ts";
import { concatBytes } from "./bytes.ts";

/** Largest stream readAll accepts before failing: a bound on its loop. */
const READ_ALL_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Reads `conn` until end of stream and returns every byte. Fails if more
 * than `limit` bytes arrive (each read yields at least one byte, so the loop
 * runs at most `limit + 1` times).
 */
export async function readAll(
  conn: VirtualConn,
  limit: number = READ_ALL_LIMIT_BYTES,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(64 * 1024);
  for (let reads = 0; reads <= limit; reads++) {
    const count = await conn.read(buffer);
    if (count === null) return concatBytes(chunks);
    assert.ok(count > 0, "read returned 0 bytes into a non-empty buffer");
    chunks.push(buffer.slice(0, count));
    total += count;
    assert.ok(total <= limit, `readAll: more than ${limit} bytes arrived`);
  }
  throw new Error(`readAll: no end of stream after ${limit + 1} reads`);
}

/** Reads exactly `length` bytes from `conn`; fails on an early end of stream. */
export async function readExactly(conn: VirtualConn, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  for (let reads = 0; reads <= length && filled < length; reads++) {
    const count = await conn.read(out.subarray(filled));
    if (count === null) throw new Error(`readExactly: end of stream after ${filled}/${length}`);
    filled += count;
  }
  assert.equal(filled, length);
  return out;
}

/** Collects a byte stream (bounded like {@linkcode readAll}). */
export async function readStreamAll(
  stream: ReadableStream<Uint8Array>,
  limit: number = READ_ALL_LIMIT_BYTES,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (let reads = 0; reads <= limit; reads++) {
      const { value, done } = await reader.read();
      if (done) return concatBytes(chunks);
      chunks.push(value.slice());
      total += value.length;
      assert.ok(total <= limit, `readStreamAll: more than ${limit} bytes arrived`);
    }
  } finally {
    reader.releaseLock();
  }
  throw new Error(`readStreamAll: no end of stream after ${limit + 1} reads`);
}

/**
 * A byte source that hands out `parts` one read at a time, then ends; each
 * part must fit the buffer it is read into.
 */
export function chunkSource(
  ...parts: Uint8Array[]
): { read(buffer: Uint8Array): Promise<number | null> } {
  return {
    read(buffer: Uint8Array): Promise<number | null> {
      const next = parts.shift();
      if (next === undefined) return Promise.resolve(null);
      assert.ok(
        next.length <= buffer.length,
        `a part of ${next.length} bytes, a read of ${buffer.length}`,
      );
      buffer.set(next);
      return Promise.resolve(next.length);
    },
  };
}
