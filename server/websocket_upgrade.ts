/**
 * The WebSocket opening handshake (RFC 6455 §4) as the relay's carrier does
 * it, pure (no I/O): the checks of a client's HTTP/1.1 upgrade request, the
 * `101 Switching Protocols` answer, and the one-line refusals.
 *
 * @module
 */

import { WEBSOCKET_SUBPROTOCOL } from "../protocol/constants.ts";

/** Longest request head the relay reads, up to and including its blank line. */
export const MAX_UPGRADE_HEAD_BYTES = 8192;

/** What a WebSocket that did not offer {@linkcode WEBSOCKET_SUBPROTOCOL} is closed with (1002). */
export const NEEDS_SUBPROTOCOL_MESSAGE =
  `AlphaNET needs the WebSocket subprotocol "${WEBSOCKET_SUBPROTOCOL}"`;

/** RFC 6455's GUID, appended to a client's key for the accept hash. */
const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** An HTTP status the relay refuses an upgrade with, and its reason phrase. */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/** An upgrade the relay refuses: the HTTP status, the one-line text, and any extra headers. */
export interface UpgradeRefusal {
  readonly status: number;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** An upgrade request that passed every check. */
export interface UpgradeRequest {
  /** The client's `Sec-WebSocket-Key`. */
  readonly key: string;
  /** Whether the client offered the subprotocol `alphanet`. */
  readonly alphanet: boolean;
}

/**
 * Where the blank line ending a request head is: the index just past it, or
 * -1 if `bytes[0..length)` holds none yet.
 *
 * @param bytes What was read so far.
 * @param length How many bytes of it count.
 * @param from How many bytes were searched already (none of them ended the head).
 * @returns One past the head's last byte, or -1.
 */
export function findHeadEnd(bytes: Uint8Array, length: number, from = 0): number {
  // The blank line may end on the first byte not searched yet: its other three came before.
  for (let i = Math.max(3, from); i < length; i++) {
    if (
      bytes[i] === 0x0a && bytes[i - 1] === 0x0d && bytes[i - 2] === 0x0a && bytes[i - 3] === 0x0d
    ) {
      return i + 1;
    }
  }
  return -1;
}

/** Token characters of RFC 9110 §5.6.2: what a method and a header name are made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value: visible characters, spaces and tabs only (obs-text allowed, as RFC 9110 does). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The comma-separated tokens of a list header, trimmed and lowercased. */
function listTokens(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(",").map((token) => token.trim().toLowerCase()).filter((t) => t !== "");
}

/** Whether `key` is the base64 of exactly 16 bytes, in its canonical form. */
function isWebSocketKey(key: string): boolean {
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return false;
  try {
    const bytes = atob(key);
    return bytes.length === 16 && btoa(bytes) === key;
  } catch {
    return false;
  }
}

/**
 * Checks a request head (its bytes up to and including the blank line) as
 * the opening of a WebSocket to `/`, in this order: request line and
 * headers well-formed (400), method GET (405), path `/` (404), `Upgrade:
 * websocket` and `Connection: upgrade` (426), version 13 (426), key (400).
 * Header names are case-insensitive and values trimmed; a repeated header's
 * values are joined with commas, as HTTP lists are.
 *
 * @param head The head's bytes.
 * @returns The upgrade, or why it is refused.
 */
export function checkUpgradeRequest(head: Uint8Array): UpgradeRequest | UpgradeRefusal {
  let text = "";
  // Latin-1, byte for byte: the checks below only accept ASCII where it matters.
  for (let i = 0; i < head.length; i++) text += String.fromCharCode(head[i]);
  const lines = text.split("\r\n");
  // The head ends with CRLF CRLF: the split leaves two empty strings at the end.
  lines.length -= 2;
  const requestLine = lines[0].split(" ");
  if (requestLine.length !== 3 || !TOKEN.test(requestLine[0]) || requestLine[1] === "") {
    return bad("the request line is not METHOD PATH HTTP/1.1");
  }
  const [method, target, version] = requestLine;
  if (version !== "HTTP/1.1") return bad(`the request is ${version}, not HTTP/1.1`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return bad("a header line has no name and colon");
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name)) return bad("a header name is not a token");
    if (!FIELD_VALUE.test(value)) return bad(`header ${name} has control characters`);
    const key = name.toLowerCase();
    const before = headers.get(key);
    headers.set(key, before === undefined ? value : `${before}, ${value}`);
  }
  if (!headers.has("host")) return bad("the request has no Host header");
  if (headers.has("transfer-encoding") || (headers.get("content-length") ?? "0") !== "0") {
    return bad("an upgrade request has no body");
  }
  if (method !== "GET") {
    return {
      status: 405,
      message: `${method} is not allowed: open AlphaNET's WebSocket with GET`,
      headers: { Allow: "GET" },
    };
  }
  const path = target.split("?", 1)[0];
  if (path !== "/") return { status: 404, message: "Not found: AlphaNET's WebSocket is at /" };
  if (
    !listTokens(headers.get("upgrade")).includes("websocket") ||
    !listTokens(headers.get("connection")).includes("upgrade")
  ) {
    return {
      status: 426,
      message:
        "This is an AlphaNET relay's WebSocket endpoint: join it with a WebSocket client (subprotocol alphanet)",
      headers: { Upgrade: "websocket" },
    };
  }
  if (headers.get("sec-websocket-version") !== "13") {
    return {
      status: 426,
      message: "AlphaNET's WebSocket speaks WebSocket version 13 only",
      headers: { "Sec-WebSocket-Version": "13" },
    };
  }
  const key = headers.get("sec-websocket-key") ?? "";
  if (!isWebSocketKey(key)) return bad("Sec-WebSocket-Key is not the base64 of 16 bytes");
  const offered = (headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  return { key, alphanet: offered.includes(WEBSOCKET_SUBPROTOCOL) };
}

function bad(message: string): UpgradeRefusal {
  return { status: 400, message: `Bad request: ${message}` };
}

/**
 * Whether a check of {@linkcode checkUpgradeRequest} refused the upgrade.
 *
 * @param result What the check returned.
 * @returns True for a refusal.
 */
export function isRefusal(result: UpgradeRequest | UpgradeRefusal): result is UpgradeRefusal {
  return "status" in result;
}

/**
 * The `Sec-WebSocket-Accept` value for a client's key:
 * base64(SHA-1(key + GUID)).
 *
 * @param key The client's `Sec-WebSocket-Key`.
 * @returns The accept value.
 */
export async function acceptValue(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + ACCEPT_GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/**
 * The `101 Switching Protocols` response, with `Sec-WebSocket-Protocol:
 * alphanet` when the client offered it. Never an extension: no compression.
 *
 * @param accept The accept value of the client's key.
 * @param alphanet Whether to name the subprotocol.
 * @returns The response head's bytes.
 */
export function switchingProtocols(accept: string, alphanet: boolean): Uint8Array {
  const lines = [
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${accept}`,
    ...(alphanet ? [`Sec-WebSocket-Protocol: ${WEBSOCKET_SUBPROTOCOL}`] : []),
  ];
  return new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
}

/**
 * A refusal as a whole HTTP response: the status line, a `text/plain` body
 * of one line, `Content-Length` and `Connection: close`.
 *
 * @param refusal The status, the text and any extra headers.
 * @returns The response's bytes.
 */
export function refusalResponse(refusal: UpgradeRefusal): Uint8Array {
  const body = new TextEncoder().encode(refusal.message.replace(/[\r\n]+/g, " ") + "\n");
  const lines = [
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? "Error"}`,
    "Content-Type: text/plain; charset=utf-8",
    `Content-Length: ${body.length}`,
    "Connection: close",
    ...Object.entries(refusal.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
  ];
  const head = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  const response = new Uint8Array(head.length + body.length);
  response.set(head);
  response.set(body, head.length);
  return response;
}
