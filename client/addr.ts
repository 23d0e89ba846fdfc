/**
 * Virtual socket addresses, in `Deno.NetAddr`'s shape.
 *
 * @module
 */

/**
 * The address of a virtual socket: a virtual IPv4 and a virtual port. It is
 * a `Deno.NetAddr` (`transport: "tcp"`), the way a tailnet library reports
 * TCP addresses carrying tailnet IPs: code written for `Deno.Conn` reads it
 * unchanged. Virtual IPs exist only inside AlphaNET; the hostname is never a
 * real address of the peer.
 *
 * @example Print and compare addresses
 * ```ts
 * import type { VirtualAddr } from "@alphanet/net";
 * import assert from "node:assert/strict";
 *
 * const addr: VirtualAddr = { transport: "tcp", hostname: "83.12.4.200", port: 80 };
 * const asDeno: Deno.NetAddr = addr;
 * assert.equal(`${asDeno.hostname}:${asDeno.port}`, "83.12.4.200:80");
 * ```
 */
export interface VirtualAddr {
  /** Always `"tcp"`: a virtual connection is a reliable byte stream, as TCP is. */
  readonly transport: "tcp";
  /** Virtual IPv4, dotted quad. */
  readonly hostname: string;
  /** Virtual port, 1..65535. */
  readonly port: number;
}
