/** Free loopback ports for what a test starts and must tell a port to. */

/** A free TCP port on 127.0.0.1: bound, then released for the caller's process to take. */
export function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}
