/**
 * The field rules of every packet, in one place: what encode refuses with
 * RangeError and decode refuses with ProtocolError.
 *
 * @module
 */

import {
  HandshakeBytes,
  MAX_DATA_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_PORT,
  MAX_WINDOW_BYTES,
  MIN_WINDOW_BYTES,
} from "./constants.ts";
import { PacketType } from "./packet_type.ts";
import { isReason } from "./reason.ts";
import type { Packet } from "./packets.ts";

const utf8Encoder = new TextEncoder();

/** Why a fixed-size byte field has the wrong size, or null. */
function sizeError(field: string, bytes: Uint8Array, size: number): string | null {
  return bytes.length === size ? null : `${field} has ${bytes.length} bytes, not ${size}`;
}

/**
 * Why a packet's fields are out of range. The one rule book for both
 * directions: encode throws RangeError on it, decode throws ProtocolError.
 *
 * @param packet The packet to check.
 * @returns What is wrong, for an error message, or null when every field is valid.
 */
export function packetFieldError(packet: Packet): string | null {
  const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
  const isPort = (n: number) => Number.isInteger(n) && n >= 1 && n <= MAX_PORT;
  const isWindow = (n: number) =>
    Number.isInteger(n) && n >= MIN_WINDOW_BYTES && n <= MAX_WINDOW_BYTES;
  switch (packet.type) {
    case PacketType.Hello:
      return Number.isInteger(packet.version) && packet.version >= 0 && packet.version <= 0xffff
        ? null
        : `version ${packet.version} is not a u16`;
    case PacketType.Challenge:
      return sizeError("relay id", packet.relayId, HandshakeBytes.relayId) ??
        sizeError("nonce", packet.nonce, HandshakeBytes.nonce);
    case PacketType.Proof: {
      const { identity, joinToken, legacyClaim } = packet;
      if (legacyClaim && !identity) return "a legacy claim needs an identity";
      return (identity &&
        (sizeError("public key", identity.publicKey, HandshakeBytes.publicKey) ??
          sizeError("signature", identity.signature, HandshakeBytes.signature))) ??
        (joinToken &&
          (sizeError("token id", joinToken.id, HandshakeBytes.tokenId) ??
            sizeError("token signature", joinToken.signature, HandshakeBytes.signature))) ??
        (legacyClaim &&
          (sizeError("legacy tag", legacyClaim.tag, HandshakeBytes.legacyTag) ??
            sizeError("legacy mac", legacyClaim.mac, HandshakeBytes.legacyMac))) ??
        null;
    }
    case PacketType.VirtualIP:
      return isU32(packet.address) ? null : `address ${packet.address} is not a u32`;
    case PacketType.Error:
      if (!isReason(packet.reason)) return `reason ${packet.reason} is unknown`;
      if (utf8Encoder.encode(packet.message).length > MAX_ERROR_MESSAGE_BYTES) {
        return `message exceeds ${MAX_ERROR_MESSAGE_BYTES} bytes`;
      }
      return null;
    case PacketType.Ping:
    case PacketType.Pong:
      return isU32(packet.nonce) ? null : `nonce ${packet.nonce} is not a u32`;
    case PacketType.SocketStatusRequest:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      if (!isU32(packet.source) || !isU32(packet.destination)) return "address is not a u32";
      return isPort(packet.destinationPort)
        ? null
        : `destination port ${packet.destinationPort} is outside 1..${MAX_PORT}`;
    case PacketType.SocketStatusResponse:
      return isU32(packet.requestId) ? null : `request id ${packet.requestId} is not a u32`;
    case PacketType.SocketConnectionRequest:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      if (!isU32(packet.source) || !isU32(packet.destination)) return "address is not a u32";
      if (!isPort(packet.sourcePort) || !isPort(packet.destinationPort)) {
        return `port is outside 1..${MAX_PORT}`;
      }
      return isWindow(packet.window)
        ? null
        : `window ${packet.window} is outside ${MIN_WINDOW_BYTES}..${MAX_WINDOW_BYTES}`;
    case PacketType.SocketConnectionResponse:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      if (packet.accepted) {
        return isWindow(packet.window)
          ? null
          : `window ${packet.window} is outside ${MIN_WINDOW_BYTES}..${MAX_WINDOW_BYTES}`;
      }
      return packet.window === 0 ? null : "a denied connection carries window 0";
    case PacketType.RequestFailed:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      return isReason(packet.reason) ? null : `reason ${packet.reason} is unknown`;
    case PacketType.EchoRequest:
      if (!isU32(packet.requestId)) return `request id ${packet.requestId} is not a u32`;
      return isU32(packet.source) && isU32(packet.destination) ? null : "address is not a u32";
    case PacketType.EchoReply:
      return isU32(packet.requestId) ? null : `request id ${packet.requestId} is not a u32`;
    case PacketType.ArbitraryData:
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      return packet.payload.length >= 1 && packet.payload.length <= MAX_DATA_BYTES
        ? null
        : `payload of ${packet.payload.length} bytes is outside 1..${MAX_DATA_BYTES}`;
    case PacketType.WindowUpdate:
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      return Number.isInteger(packet.increment) && packet.increment >= 1 &&
          packet.increment <= MAX_WINDOW_BYTES
        ? null
        : `increment ${packet.increment} is outside 1..${MAX_WINDOW_BYTES}`;
    case PacketType.SocketShutdown:
      return isU32(packet.connectionId)
        ? null
        : `connection id ${packet.connectionId} is not a u32`;
    case PacketType.SocketClosed:
      if (!isU32(packet.connectionId)) return `connection id ${packet.connectionId} is not a u32`;
      return isReason(packet.reason) ? null : `reason ${packet.reason} is unknown`;
    default: {
      const _never: never = packet;
      return `type ${(_never as Packet).type} is unknown`;
    }
  }
}
