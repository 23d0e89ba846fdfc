/**
 * The AlphaNET wire protocol: constants, packets, the pure codec and the
 * streaming decoder. No I/O.
 *
 * @module
 */

export * from "./constants.ts";
export type * from "./packets.ts";
export { decode, type Decoded, encode, encodedLength, encodeInto } from "./codec.ts";
export { FrameDecoder } from "./frame_decoder.ts";
export { formatIpv4, type Ipv4Range, parseCidr, parseIpv4 } from "./address.ts";
export { ProtocolError } from "./errors.ts";
