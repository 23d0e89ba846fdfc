/**
 * The identity file: who this client is, which keys its permanent virtual
 * IP. Every command uses one: `--identity-file PATH`, or else the default
 * file in the user's config folder ({@linkcode defaultIdentityPath}).
 *
 * A new file holds an Ed25519 key pair as `exportIdentity()` writes it, one
 * line: `alphanet-identity-1 ed25519 PUBLIC PRIVATE` (each key 43 base64url
 * characters) and a newline. It is created on first use, readable by the
 * owner only (0600), in folders created for it (0700).
 *
 * A file of the old format (protocol version 1: a secret of 32 random bytes
 * as 64 lowercase hex digits and an optional newline) keeps working and is
 * never rewritten: the client derives its key pair from the secret and
 * claims the address a version 1 relay gave it (docs/PROTOCOL.md §5.6), so
 * the address carries over.
 *
 * An existing file is never overwritten. It is refused, with a one-line
 * RuntimeError that says how to fix it, if it is not a regular file, is owned
 * by another user, can be read or written by others, or is damaged in any way
 * (in either format: both are checked whole, so damage is never read as
 * another identity). On Windows, whose files carry no Unix mode or owner,
 * only the content is checked; the owner is checked only with
 * `--allow-sys=uid` (`Deno.uid()`).
 *
 * @module
 */

import { dirname, join } from "node:path";
import {
  exportIdentity,
  generateIdentity,
  type Identity,
  readIdentityText,
} from "../client/identity.ts";
import { RuntimeError, stateOf } from "./errors.ts";

/** Bytes of an old-format secret. */
const SECRET_BYTES = 32;
/** Hex digits of an old-format secret in the file. */
const SECRET_DIGITS = 2 * SECRET_BYTES;
/** The old format's last byte: one newline after the digits, optional. */
const NEWLINE = 0x0a;
/** How every file of the current format starts; a file that does not is read as the old format. */
const FORMAT_MARK = new TextEncoder().encode("alphanet");
/**
 * Longest file worth reading: an identity's line (117 bytes with CRLF) with
 * room to spare, and one byte more to see that there is more.
 */
const READ_LIMIT_BYTES = 1025;

/** Mode of folders created for an identity file: the owner's only, like `~/.ssh`. */
const FOLDER_MODE = 0o700;
/** Mode of a new identity file. */
const FILE_MODE = 0o600;
/** Mode bits that give the group or the world any access. */
const OTHERS_BITS = 0o077;
const OTHERS_READ_BITS = 0o044;
const OTHERS_WRITE_BITS = 0o022;
/** Folder and file name of the default identity, in the user's config folder. */
const APP_FOLDER = "alphanet";
const DEFAULT_FILE = "identity";
/** How to fix a damaged file, after its "it is damaged: <why>". */
const DAMAGED_FIX = "restore it from a backup, or move it away to get a new address";

/**
 * What an identity file holds: an identity (a file of the current format)
 * or an old-format secret, which `connect()` takes as it is.
 */
export type IdentityFileContent = Identity | Uint8Array<ArrayBuffer>;

/**
 * The content of an identity file's bytes, or why they are not one (a few
 * words that read on after "it is damaged: "). A file that starts with
 * "alphanet" is of the current format (`importIdentity`'s checks); any other
 * is of the old one ({@linkcode decodeOldSecret}).
 */
export async function decodeIdentityFile(bytes: Uint8Array): Promise<IdentityFileContent | string> {
  const current = bytes.length >= FORMAT_MARK.length &&
    FORMAT_MARK.every((byte, i) => bytes[i] === byte);
  if (!current) return decodeOldSecret(bytes);
  if (bytes.length >= READ_LIMIT_BYTES) return `longer than one identity line`;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return "not UTF-8 text";
  }
  // The key is used, never exported again: nothing in the process can read it back.
  return await readIdentityText(text, false);
}

/**
 * The secret in the bytes of an old-format identity file, or why they are
 * not one (a few words that read on after "it is damaged: "). Exactly 64
 * lowercase hex digits and an optional newline, nothing else: a truncated or
 * edited file is refused rather than read as another secret (another address).
 */
export function decodeOldSecret(bytes: Uint8Array): Uint8Array<ArrayBuffer> | string {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === NEWLINE
    ? bytes.length - 1
    : bytes.length;
  if (end === 0) return "empty";
  const digits = Math.min(end, SECRET_DIGITS);
  for (let i = 0; i < digits; i++) {
    if (hexValue(bytes[i]) < 0) {
      return `byte ${i + 1} is ${describeByte(bytes[i])}, not a lowercase hex digit`;
    }
  }
  if (end < SECRET_DIGITS) return `truncated to ${end} of ${SECRET_DIGITS} hex digits`;
  if (end > SECRET_DIGITS) return `longer than ${SECRET_DIGITS} hex digits and a newline`;
  const secret = new Uint8Array(SECRET_BYTES);
  for (let i = 0; i < SECRET_BYTES; i++) {
    secret[i] = hexValue(bytes[2 * i]) * 16 + hexValue(bytes[2 * i + 1]);
  }
  return secret;
}

/** Value of a lowercase hex digit's byte, or -1. */
function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30; // 0-9
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10; // a-f
  return -1;
}

/** A byte as a reader would name it: `"G"`, or `0x0d` for one that does not print. */
function describeByte(byte: number): string {
  return byte > 0x20 && byte < 0x7f
    ? JSON.stringify(String.fromCharCode(byte))
    : `0x${byte.toString(16).padStart(2, "0")}`;
}

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
 * The identity file used without `--identity-file`, in the user's config
 * folder: `$XDG_CONFIG_HOME/alphanet/identity` (else
 * `$HOME/.config/alphanet/identity`) on Linux and the BSDs,
 * `$HOME/Library/Application Support/alphanet/identity` on macOS,
 * `%APPDATA%\alphanet\identity` on Windows. RuntimeError if the variable it
 * needs is not set.
 */
export function defaultIdentityPath(): string {
  const os = Deno.build.os;
  if (os === "windows") return join(requireEnv("APPDATA"), APP_FOLDER, DEFAULT_FILE);
  if (os === "darwin") {
    return join(requireEnv("HOME"), "Library", "Application Support", APP_FOLDER, DEFAULT_FILE);
  }
  // The XDG spec says a relative $XDG_CONFIG_HOME is invalid and to be ignored.
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  const config = xdg !== undefined && xdg.startsWith("/")
    ? xdg
    : join(requireEnv("HOME"), ".config");
  return join(config, APP_FOLDER, DEFAULT_FILE);
}

/** The value of environment variable `name`; RuntimeError if it is unset or empty. */
function requireEnv(name: string): string {
  const value = Deno.env.get(name);
  if (value === undefined || value === "") {
    throw new RuntimeError(
      `cannot find the default identity file: $${name} is not set; give --identity-file PATH`,
    );
  }
  return value;
}

/**
 * The identity in the file at `given` (`~/` is the home folder): an
 * Identity, or an old-format secret; creates the file first if it does not
 * exist (see the module's doc), and checks it otherwise. RuntimeError (one
 * line, naming the file, saying how to fix it) if the file cannot be created,
 * read or used.
 */
export async function loadIdentity(given: string): Promise<IdentityFileContent> {
  const path = expandHome(given);
  const created = await createIdentity(path);
  return created ?? await readIdentity(path);
}

/**
 * Creates the identity file at `path` with a new identity and returns it, or
 * null if the file exists. The content is written to a temporary file first
 * and linked into place, so a command starting at the same moment never reads
 * a half-written file, and an existing one is never replaced.
 */
async function createIdentity(path: string): Promise<Identity | null> {
  try {
    await Deno.lstat(path);
    return null;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return null; // readIdentity says why.
  }
  const fail = (error: unknown): RuntimeError =>
    new RuntimeError(`cannot create identity file ${path}: ${stateOf(error)}`, { cause: error });
  try {
    // Recursive mkdir leaves existing folders (and their modes) alone.
    await Deno.mkdir(dirname(path), { recursive: true, mode: FOLDER_MODE });
  } catch (error) {
    throw new RuntimeError(`cannot create the folder of identity file ${path}: ${stateOf(error)}`, {
      cause: error,
    });
  }
  const identity = await generateIdentity();
  const text = await exportIdentity(identity);
  const temporary = join(dirname(path), `.${crypto.randomUUID()}.tmp`);
  try {
    await Deno.writeTextFile(temporary, text, { createNew: true, mode: FILE_MODE });
  } catch (error) {
    throw fail(error);
  }
  try {
    await Deno.link(temporary, path);
    return identity;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return null;
    throw fail(error);
  } finally {
    await Deno.remove(temporary).catch(() => {});
  }
}

/** Reads and checks the existing identity file at `path`. */
async function readIdentity(path: string): Promise<IdentityFileContent> {
  const refuse = (why: string, cause?: unknown): RuntimeError =>
    new RuntimeError(`cannot use identity file ${path}: ${why}`, { cause });
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new RuntimeError(`cannot read identity file ${path}: ${stateOf(error)}`, {
      cause: error,
    });
  }
  try {
    // The opened file's own stat: what is checked is what is read.
    const info = await file.stat();
    if (!info.isFile) throw refuse("it is not a regular file");
    const problem = accessProblem(info, path);
    if (problem !== null) throw refuse(problem);
    const bytes = await readAtMost(file, READ_LIMIT_BYTES);
    const content = await decodeIdentityFile(bytes);
    if (typeof content === "string") throw refuse(`it is damaged: ${content}; ${DAMAGED_FIX}`);
    return content;
  } catch (error) {
    if (error instanceof RuntimeError) throw error;
    throw new RuntimeError(`cannot read identity file ${path}: ${stateOf(error)}`, {
      cause: error,
    });
  } finally {
    file.close();
  }
}

/**
 * Why the file `info` describes may not be trusted with a secret (owned by
 * another user, open to others), with the command that fixes it; null if it
 * may. Windows reports no mode or owner: nothing is checked there.
 */
function accessProblem(info: Deno.FileInfo, path: string): string | null {
  if (Deno.build.os === "windows") return null;
  const uid = ownUid();
  if (uid !== null && info.uid !== null && info.uid !== uid) {
    return `it is owned by another user (uid ${info.uid}); run: chown ${uid} ${shellWord(path)}` +
      `, or run as that user`;
  }
  const mode = info.mode;
  if (mode !== null && (mode & OTHERS_BITS) !== 0) {
    const what = (mode & OTHERS_READ_BITS) !== 0
      ? "readable"
      : (mode & OTHERS_WRITE_BITS) !== 0
      ? "writable"
      : "usable";
    const octal = (mode & 0o777).toString(8).padStart(4, "0");
    return `it is ${what} by others (mode ${octal}); run: chmod 600 ${shellWord(path)}`;
  }
  return null;
}

/**
 * This process's user id, or null where it cannot be known without asking:
 * `Deno.uid()` needs `--allow-sys=uid`, and is not called without it (it would
 * prompt, or throw). Without it the owner check is skipped; only a user who can
 * read others' files (root) gets past the OS's own check to a file another
 * user owns.
 */
function ownUid(): number | null {
  const { state } = Deno.permissions.querySync({ name: "sys", kind: "uid" });
  return state === "granted" ? Deno.uid() : null;
}

/** `path` as one word for sh, quoted only if it needs to be. */
function shellWord(path: string): string {
  return /^[A-Za-z0-9_\/.,:@%+=-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

/** Up to `limit` bytes from the start of `file` (fewer if it ends first). */
async function readAtMost(file: Deno.FsFile, limit: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(limit);
  let filled = 0;
  // Each pass reads what is there; the file's end or the limit ends it.
  while (filled < limit) {
    const count = await file.read(buffer.subarray(filled));
    if (count === null) break;
    filled += count;
  }
  return buffer.subarray(0, filled);
}
