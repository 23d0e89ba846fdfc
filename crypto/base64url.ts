/**
 * Base64url without padding (RFC 4648 §5), strict: the text forms of
 * identities and join tokens. Decoding refuses anything that would not
 * encode back to the same text, so a changed character is never read as
 * other bytes.
 *
 * @module
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const VALUES: ReadonlyMap<string, number> = new Map([...ALPHABET].map((c, i) => [c, i]));

/** Encodes `bytes` as base64url without padding. */
export function encodeBase64Url(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let c = 0; c < chars; c++) out += ALPHABET[(n >> (18 - 6 * c)) & 63];
  }
  return out;
}

/**
 * Decodes base64url without padding into exactly `size` bytes, or returns
 * null when `text` is not the canonical encoding of `size` bytes.
 */
export function decodeBase64Url(text: string, size: number): Uint8Array<ArrayBuffer> | null {
  if (text.length !== Math.ceil((size * 8) / 6)) return null;
  const out = new Uint8Array(size);
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const char of text) {
    const digit = VALUES.get(char);
    if (digit === undefined) return null;
    value = (value << 6) | digit;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
    value &= (1 << bits) - 1;
  }
  // Leftover bits must be zero: otherwise two texts would decode to the same bytes.
  return value === 0 ? out : null;
}
