/**
 * HTTP on the virtual network in tests: a real relay in-process, a client
 * that serves and another that fetches, and byte streams to send and hash.
 */

import { createHash } from "node:crypto";
import { type AlphaNetClient, connect } from "../../mod.ts";
import { STEP_MS, withTimeout } from "./async.ts";
import { randomIdentity } from "./bytes.ts";
import { startRelay, type TestRelay } from "./relay_fixture.ts";

/** A relay and two clients joined to it. */
export interface HttpPair {
  readonly relay: TestRelay;
  /** The client that serves. */
  readonly server: AlphaNetClient;
  /** The client that fetches. */
  readonly client: AlphaNetClient;
  /** `http://SERVER-VIP:port` + path. */
  url(port: number, path?: string): string;
}

/** Runs `body` with a relay and two real clients, then closes all of it (clients first). */
export async function withHttpPair(body: (pair: HttpPair) => Promise<void>): Promise<void> {
  const relay = await startRelay({ db: ":memory:" });
  const clients: AlphaNetClient[] = [];
  try {
    const join = async (who: string): Promise<AlphaNetClient> => {
      const client = await withTimeout(
        connect({ port: relay.port, identity: randomIdentity() }),
        STEP_MS,
        `${who} to join`,
      );
      clients.push(client);
      return client;
    };
    const server = await join("the serving client");
    const client = await join("the fetching client");
    await body({
      relay,
      server,
      client,
      url: (port, path = "/") => `http://${server.virtualIp}:${port}${path}`,
    });
  } finally {
    for (const client of clients) await withTimeout(client.close(), STEP_MS, "client.close()");
    await relay.close();
  }
}

/** Size of the chunks {@linkcode patternStream} yields. */
const CHUNK_BYTES = 64 * 1024;

/**
 * `total` reproducible bytes (byte i is a function of i and `seed`) as a
 * stream of 64 KiB chunks, made only as the reader pulls: a 50 MiB body
 * never sits in memory whole. `onPull` sees each chunk's offset.
 */
export function patternStream(
  total: number,
  seed: number,
  onPull?: (offset: number) => void,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  let offset = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller): void {
      if (offset >= total) {
        controller.close();
        return;
      }
      onPull?.(offset);
      const size = Math.min(CHUNK_BYTES, total - offset);
      controller.enqueue(patternBytes(offset, size, seed));
      offset += size;
    },
  }, { highWaterMark: 0 });
}

/** Bytes `offset..offset+size` of the pattern {@linkcode patternStream} yields. */
export function patternBytes(offset: number, size: number, seed: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const n = offset + i;
    bytes[i] = (Math.imul(n, 2654435761) >>> 24) ^ (n & 0xff) ^ seed;
  }
  return bytes;
}

/** SHA-256 (hex) and length of everything `stream` yields, hashed as it comes. */
export async function hashStream(
  stream: ReadableStream<Uint8Array>,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** SHA-256 (hex) and length of the pattern, computed locally. */
export function hashPattern(total: number, seed: number): { sha256: string; bytes: number } {
  const hash = createHash("sha256");
  for (let offset = 0; offset < total; offset += CHUNK_BYTES) {
    hash.update(patternBytes(offset, Math.min(CHUNK_BYTES, total - offset), seed));
  }
  return { sha256: hash.digest("hex"), bytes: total };
}

/** A promise with its resolve function, for "the handler got here" events. */
export function deferred<T = void>(): PromiseWithResolvers<T> {
  return Promise.withResolvers<T>();
}
