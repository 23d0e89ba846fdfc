/**
 * Virtual socket addresses, shaped like `Deno.NetAddr`.
 *
 * @module
 */

/**
 * The address of a virtual socket: a virtual IPv4 and a virtual port.
 *
 * @example
 * ```ts
 * import type { VirtualAddr } from "@alphanet/net";
 * const addr: VirtualAddr = { transport: "alphanet", hostname: "83.12.4.200", port: 80 };
 * console.log(`${addr.hostname}:${addr.port}`);
 * ```
 */
export interface VirtualAddr {
  /** Always `"alphanet"`, to tell virtual from real addresses. */
  readonly transport: "alphanet";
  /** Virtual IPv4, dotted quad. */
  readonly hostname: string;
  /** Virtual port, 1..65535. */
  readonly port: number;
}
