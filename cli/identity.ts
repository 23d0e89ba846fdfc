/**
 * The identity file: a secret that keys this client's permanent virtual IP.
 * Created on first use with 32 random bytes as hex, readable by the owner only,
 * in folders created for it (`~/.alphanet/web` works on a fresh machine).
 *
 * @module
 */

import { dirname } from "node:path";
import { RuntimeError, stateOf } from "./errors.ts";

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

/** Mode of folders created for an identity file: the owner's only, like `~/.ssh`. */
const FOLDER_MODE = 0o700;
/** Mode of a new identity file. */
const FILE_MODE = 0o600;

/**
 * `path` with a leading `~/` taken as the home folder: the shell expands
 * `--identity-file ~/x` but not `--identity-file=~/x`.
 */
export function expandHome(path: string): string {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  return home !== undefined && (path === "~" || path.startsWith("~/"))
    ? home + path.slice(1)
    : path;
}

/**
 * The secret in the identity file at `path`; creates the file first (mode
 * 0600, never overwriting) if it does not exist, and any missing folders
 * on the way (mode 0700). The file holds the secret as hex on one line.
 */
export async function loadIdentity(given: string): Promise<Uint8Array> {
  const path = expandHome(given);
  try {
    // Recursive mkdir leaves existing folders (and their modes) alone.
    await Deno.mkdir(dirname(path), { recursive: true, mode: FOLDER_MODE });
  } catch (error) {
    throw new RuntimeError(`cannot create the folder of identity file ${path}: ${stateOf(error)}`, {
      cause: error,
    });
  }
  try {
    const secret = new Uint8Array(NEW_SECRET_BYTES);
    crypto.getRandomValues(secret);
    await Deno.writeTextFile(path, `${toHex(secret)}\n`, { createNew: true, mode: FILE_MODE });
    return secret;
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) {
      throw new RuntimeError(`cannot create identity file ${path}: ${stateOf(error)}`, {
        cause: error,
      });
    }
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new RuntimeError(`cannot read identity file ${path}: ${stateOf(error)}`, {
      cause: error,
    });
  }
  const secret = fromHex(text.trim());
  if (secret === null || secret.length < MIN_SECRET_BYTES || secret.length > MAX_SECRET_BYTES) {
    throw new RuntimeError(
      `cannot use identity file ${path}: expected ${MIN_SECRET_BYTES}..${MAX_SECRET_BYTES} bytes as hex`,
    );
  }
  return secret;
}
