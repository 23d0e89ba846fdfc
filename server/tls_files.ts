/**
 * Reads the PEM files the relay's `--tls-cert` and `--tls-key` name.
 *
 * @module
 */

import { oneLine } from "../flags/one_line.ts";
import type { RelayTls } from "./config.ts";
import type { TlsFiles } from "./flags.ts";

/**
 * Reads both files as text. Whether they hold a usable certificate and key
 * is checked when the relay starts listening.
 *
 * @param files The paths given on the command line.
 * @returns The certificate chain and key as PEM text; throws an Error whose
 * one-line message names the flag, the path and why it cannot be read.
 */
export function readTlsFiles(files: TlsFiles): RelayTls {
  return { cert: readPem("--tls-cert", files.cert), key: readPem("--tls-key", files.key) };
}

/**
 * Reads `--mesh-ca-file`, if given.
 *
 * @param files The paths given on the command line.
 * @returns The CA as PEM text in a list, or null when the flag was not given.
 */
export function readMeshCa(files: TlsFiles): string[] | null {
  return files.meshCa === null ? null : [readPem("--mesh-ca-file", files.meshCa)];
}

function readPem(flag: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    throw new Error(`Cannot read ${flag} ${path}: ${oneLine(error)}`, { cause: error });
  }
}
