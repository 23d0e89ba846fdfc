/**
 * `HOST:PORT` text, as relays name each other's link ports (`--advertise`,
 * the address a relay dials): a host without colons, or a bracketed IPv6
 * address, then a port 1..65535.
 *
 * @module
 */

/**
 * Splits `HOST:PORT` (`[IPV6]:PORT`) into what `Deno.connect` takes.
 *
 * @param text The text, e.g. `relay1.example:7337` or `[::1]:7337`.
 * @returns The host (without brackets) and the port, or null when `text` is not that shape.
 */
export function splitHostPort(text: string): { hostname: string; port: number } | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  if (match === null) return null;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return null;
  return { hostname: match[1] ?? match[2], port };
}
