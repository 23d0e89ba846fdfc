/**
 * The identity file: a secret that keys this client's permanent virtual IP.
 * Created on first use with 32 random bytes as hex, readable by the owner only.
 *
 * @module
 */

import { describe, RuntimeError } from "./errors.ts";

/** Bytes of a newly created secret. */
const NEW_SECRET_BYTES = 32;
/** Bounds of a secret the relay accepts. */
const MIN_SECRET_BYTES = 16;
const MAX_SECRET_BYTES = 256;

/** Lowercase hex of `bytes`. */
function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes of a hex string, or null if it is not one. */
function fromHex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/**
 * The secret in the identity file at `path`; creates the file first (mode
 * 0600, never overwriting) if it does not exist. The file holds the secret
 * as hex on one line.
 */
export async function loadIdentity(path: string): Promise<Uint8Array> {
  try {
    const secret = new Uint8Array(NEW_SECRET_BYTES);
    crypto.getRandomValues(secret);
    await Deno.writeTextFile(path, `${toHex(secret)}\n`, { createNew: true, mode: 0o600 });
    return secret;
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) {
      throw new RuntimeError(`cannot create identity file ${path}: ${describe(error)}`, {
        cause: error,
      });
    }
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new RuntimeError(`cannot read identity file ${path}: ${describe(error)}`, {
      cause: error,
    });
  }
  const secret = fromHex(text.trim());
  if (secret === null || secret.length < MIN_SECRET_BYTES || secret.length > MAX_SECRET_BYTES) {
    throw new RuntimeError(
      `bad identity file ${path}: expected ${MIN_SECRET_BYTES}..${MAX_SECRET_BYTES} bytes as hex`,
    );
  }
  return secret;
}
