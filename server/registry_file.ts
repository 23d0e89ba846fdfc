/**
 * The registry's files on disk: created private (0600, in a folder created
 * 0700), and held by one relay at a time through a lock file beside them.
 *
 * The lock is a separate file, not SQLite's own locking: `locking_mode =
 * EXCLUSIVE` would also lock out the `clients` commands that must work beside
 * a running relay, and a second descriptor on the database file itself would
 * drop SQLite's POSIX locks when closed.
 *
 * @module
 */

import { dirname } from "node:path";
import { AlphaNetError } from "../errors.ts";

/** Owner read and write only: the registry holds clients' real IPs. */
const PRIVATE_FILE_MODE = 0o600;
/** Owner only, for folders the relay creates to hold its registry. */
const PRIVATE_DIR_MODE = 0o700;

/** Suffix of the lock file, in the style of SQLite's `-wal` and `-shm`. */
export const LOCK_SUFFIX = "-lock";

/** POSIX modes mean nothing on Windows, where `chmod` is not supported. */
function chmod(path: string, mode: number): void {
  if (Deno.build.os !== "windows") Deno.chmodSync(path, mode);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Creates the folders leading to `path` (each 0700) and `path` itself (empty,
 * 0600) if they are missing; an existing file or folder keeps its mode, as
 * its owner chose it. The modes are set with `chmod`, so the umask cannot
 * widen or narrow them; SQLite gives the `-wal` and `-shm` files it creates
 * the mode of the database file.
 *
 * @param path The database file.
 */
export function createPrivateFile(path: string): void {
  const missing: string[] = [];
  for (let dir = dirname(path); !exists(dir); dir = dirname(dir)) {
    missing.push(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing.reverse()) {
    try {
      Deno.mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
    } catch (error) {
      // Another process made it first: its mode is its creator's.
      if (error instanceof Deno.errors.AlreadyExists) continue;
      throw error;
    }
    chmod(dir, PRIVATE_DIR_MODE);
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { createNew: true, write: true, mode: PRIVATE_FILE_MODE });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return;
    throw error;
  }
  file.close();
  chmod(path, PRIVATE_FILE_MODE);
}

/**
 * Takes the exclusive lock on `path` + {@linkcode LOCK_SUFFIX} without
 * waiting; throws {@linkcode AlphaNetError} if another relay (in this
 * process or another) holds it. Closing the returned file releases the lock,
 * and so does the holder's death, `kill -9` included: a lock file left
 * behind holds nothing.
 *
 * @param path The database file.
 * @returns The open lock file.
 */
export function lockRegistryFile(path: string): Deno.FsFile {
  const lockPath = `${path}${LOCK_SUFFIX}`;
  const file = Deno.openSync(lockPath, {
    read: true,
    write: true,
    create: true,
    mode: PRIVATE_FILE_MODE,
  });
  let locked: boolean;
  try {
    locked = file.tryLockSync(true);
  } catch (error) {
    file.close();
    throw error;
  }
  if (!locked) {
    file.close();
    throw new AlphaNetError(
      `Cannot open registry ${path}: another relay holds it (lock ${lockPath})`,
    );
  }
  return file;
}
