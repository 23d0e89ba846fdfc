/**
 * The test CA and the relay certificate of tests/testdata/tls/ (valid
 * 2024-01-01 to 2051-01-01; see the README there), and a TLS relay subprocess.
 */

import { type ServerProcess, startServer } from "./server_process.ts";

const dir = new URL("../testdata/tls/", import.meta.url);

/** Path of the test CA's certificate. */
export const CA_FILE: string = new URL("ca.pem", dir).pathname;
/** Path of the relay's certificate for 127.0.0.1, ::1 and localhost, signed by the test CA. */
export const CERT_FILE: string = new URL("localhost.crt", dir).pathname;
/** Path of the relay certificate's private key. */
export const KEY_FILE: string = new URL("localhost.key", dir).pathname;

/** The test CA's certificate as PEM, for `caCerts`. */
export function testCa(): string {
  return Deno.readTextFileSync(CA_FILE);
}

/** Starts `server.ts` with the test certificate, an in-memory registry, and `args`. */
export function startTlsServer(args: string[] = []): Promise<ServerProcess> {
  return startServer([
    "--port",
    "0",
    "--db",
    ":memory:",
    "--log-level",
    "warn",
    "--tls-cert",
    CERT_FILE,
    "--tls-key",
    KEY_FILE,
    ...args,
  ]);
}
