/**
 * The NATS subjects and payloads of presence (issue 12): how relays of one
 * cluster find each other's clients, tell each other about takeovers and ask
 * each other for a relay link. Everything read here comes from NATS, which
 * any process holding its credentials can publish to, so every decoder
 * checks size, encoding, shape and each field, and returns `null` on
 * anything else rather than throwing.
 *
 * Subjects, under a per-network prefix P (e.g. `alphanet.<16 hex>`):
 * - `P.vip.<address>`: locate request, empty payload; the relay holding the
 *   client at `<address>` (decimal u32) answers with its {@linkcode NodeInfo}.
 * - `P.claim.<address>`: published by a relay that just admitted that client:
 *   `{"node":"<32 hex>","at":<unix ms>}`; others drop their older link of it.
 * - `P.node.<node>.dial`: request to relay `<node>` to dial the requester's
 *   relay-link port; payload the requester's {@linkcode NodeInfo}; answer
 *   `{"ok":true}` or `{"ok":false,"error":"<text>"}`.
 *
 * Every payload but the empty locate request also carries `"mac"`: 64 hex
 * digits of HMAC-SHA-256 under the presence key (./presence_mac.ts) over its
 * canonical bytes, the `…MacInput` functions here: the UTF-8 JSON array of a
 * kind tag, the subject, for an answer the request's reply subject (so an
 * answer fits one request only), then every field. The decoders check shape
 * only; the caller verifies the MAC.
 *
 * Payloads are UTF-8 JSON objects of at most {@linkcode MAX_PAYLOAD_BYTES};
 * unknown keys are ignored, so a later version may add fields.
 *
 * @module
 */

/** A relay of the cluster, as the others see it. */
export interface NodeInfo {
  /** 32 lowercase hex digits: the relay's random instance id, new at each start. */
  readonly node: string;
  /** `host:port` (`[v6]:port` for IPv6) of its relay-link port. */
  readonly mesh: string;
}

/** The largest payload read or written on a presence subject. */
export const MAX_PAYLOAD_BYTES = 512;
/** The longest error text a dial answer carries. */
export const MAX_DIAL_ERROR_CHARS = 200;
/** The largest client address (a u32). */
const MAX_ADDRESS = 0xffff_ffff;
/** Longest DNS name, and longest label in it. */
const MAX_HOST_CHARS = 253;
const MAX_PORT = 65_535;

const NODE_ID = /^[0-9a-f]{32}$/;
/** A decimal u32 without sign or leading zeros, as it appears in a subject. */
const ADDRESS_TOKEN = /^(?:0|[1-9][0-9]{0,9})$/;
const PORT_TOKEN = /^[1-9][0-9]{0,4}$/;
/** One DNS label: 1-63 letters, digits and inner hyphens. */
const DNS_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const DNS_NAME = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);
const DOTTED = /^[0-9.]+$/;
const IPV4_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const BRACKETED_V6 = /^\[[0-9A-Fa-f:.]{2,45}\]$/;
/** Subject tokens of the prefix: no wildcards, no empty tokens, nothing NATS treats specially. */
const PREFIX = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const MAX_PREFIX_CHARS = 128;
// deno-lint-ignore no-control-regex -- matching them is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Whether `value` is a node id: 32 lowercase hex digits. */
export function isNodeId(value: unknown): value is string {
  return typeof value === "string" && NODE_ID.test(value);
}

/** Whether `value` is a client address: an integer in [0, 2³² − 1]. */
function isAddress(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_ADDRESS;
}

/**
 * Splits a relay-link address `host:port` into what `Deno.connect` takes,
 * or returns null if it is not one: host a DNS name, a dotted IPv4 address
 * or a bracketed IPv6 address; port 1-65535 in decimal.
 */
export function parseMeshAddress(value: unknown): { hostname: string; port: number } | null {
  if (typeof value !== "string" || value.length > MAX_HOST_CHARS + 8) return null;
  const colon = value.lastIndexOf(":");
  if (colon <= 0) return null;
  const host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (!PORT_TOKEN.test(portText) || Number(portText) > MAX_PORT) return null;
  const port = Number(portText);
  if (BRACKETED_V6.test(host) && host.includes(":")) return { hostname: host.slice(1, -1), port };
  if (host.length > MAX_HOST_CHARS || !DNS_NAME.test(host)) return null;
  // All digits and dots: it must then be a real IPv4 address, not "256.1.1.1" or "1..2".
  if (DOTTED.test(host)) {
    const octets = host.split(".");
    const valid = octets.length === 4 &&
      octets.every((octet) => IPV4_OCTET.test(octet) && Number(octet) <= 255);
    if (!valid) return null;
  }
  return { hostname: host, port };
}

/** Whether `value` is a {@linkcode NodeInfo} with a valid node id and relay-link address. */
export function isNodeInfo(value: unknown): value is NodeInfo {
  if (typeof value !== "object" || value === null) return false;
  const { node, mesh } = value as Record<string, unknown>;
  return isNodeId(node) && parseMeshAddress(mesh) !== null;
}

/** Checks a subject prefix; throws a TypeError naming what is wrong. */
export function checkPrefix(prefix: string): string {
  if (typeof prefix !== "string" || prefix.length > MAX_PREFIX_CHARS || !PREFIX.test(prefix)) {
    throw new TypeError(
      `Cannot use presence prefix ${JSON.stringify(prefix)}: expected dot-separated tokens of ` +
        `letters, digits, "_" and "-", at most ${MAX_PREFIX_CHARS} characters`,
    );
  }
  return prefix;
}

/** Checks a client address argument; throws a RangeError if it is not a u32. */
export function checkAddress(address: number): number {
  if (!isAddress(address)) {
    throw new RangeError(`Cannot use address ${address}: expected an integer in [0, 4294967295]`);
  }
  return address;
}

/** The subjects of one network's presence. */
export class PresenceSubjects {
  readonly #prefix: string;

  /** Subjects under `prefix` (checked with {@linkcode checkPrefix}). */
  constructor(prefix: string) {
    this.#prefix = checkPrefix(prefix);
  }

  /** Where locate requests for `address` go, and its holder subscribes. */
  vip(address: number): string {
    return `${this.#prefix}.vip.${address}`;
  }

  /** Where a relay announces that it just admitted the client at `address`. */
  claim(address: number): string {
    return `${this.#prefix}.claim.${address}`;
  }

  /** Every claim of the network, for one wildcard subscription. */
  claims(): string {
    return `${this.#prefix}.claim.*`;
  }

  /** Where relay `node` takes requests to dial the requester. */
  dial(node: string): string {
    return `${this.#prefix}.node.${node}.dial`;
  }

  /** The address of a claim subject, or null if `subject` is not one. */
  claimAddress(subject: string): number | null {
    const head = `${this.#prefix}.claim.`;
    if (!subject.startsWith(head)) return null;
    const token = subject.slice(head.length);
    if (!ADDRESS_TOKEN.test(token)) return null;
    const address = Number(token);
    return address <= MAX_ADDRESS ? address : null;
  }
}

/** A payload parsed as a JSON object, or null: too long, not UTF-8, not JSON, not an object. */
function decodeObject(bytes: Uint8Array): Record<string, unknown> | null {
  if (bytes.length === 0 || bytes.length > MAX_PAYLOAD_BYTES) return null;
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes));
    if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
    return value as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** A payload of at most {@linkcode MAX_PAYLOAD_BYTES}; throws a RangeError past it. */
function encodeObject(value: Record<string, unknown>): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(value));
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw new RangeError(
      `Cannot encode presence payload: ${bytes.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`,
    );
  }
  return bytes;
}

/** A decoded payload with the MAC it carried: `""` when it had none (it then fails to verify). */
export type Signed<T> = T & { readonly mac: string };

/** The MAC a payload carries, as read: its `mac` string, or `""`. */
function macOf(value: Record<string, unknown>): string {
  return typeof value.mac === "string" ? value.mac : "";
}

/**
 * The canonical bytes a MAC covers: UTF-8 of the JSON array of `fields`
 * (strings, safe integers and booleans, which JSON writes one way only).
 */
function canonical(fields: readonly (string | number | boolean)[]): Uint8Array<ArrayBuffer> {
  return encoder.encode(JSON.stringify(fields));
}

/** `["locate-answer",subject,reply,node,mesh]`: what a locate answer's MAC covers. */
export function locateAnswerMacInput(
  subject: string,
  reply: string,
  info: NodeInfo,
): Uint8Array<ArrayBuffer> {
  return canonical(["locate-answer", subject, reply, info.node, info.mesh]);
}

/** `["dial-request",subject,node,mesh]`: what a dial request's MAC covers. */
export function dialRequestMacInput(subject: string, info: NodeInfo): Uint8Array<ArrayBuffer> {
  return canonical(["dial-request", subject, info.node, info.mesh]);
}

/** `["claim",subject,node,at]`: what a claim's MAC covers. */
export function claimMacInput(subject: string, claim: Claim): Uint8Array<ArrayBuffer> {
  return canonical(["claim", subject, claim.node, claim.at]);
}

/**
 * `["dial-answer",subject,reply,true]` or `["dial-answer",subject,reply,false,error]`
 * (the error as {@linkcode encodeDialAnswer} sends it): what a dial answer's MAC covers.
 */
export function dialAnswerMacInput(
  subject: string,
  reply: string,
  answer: DialAnswer,
): Uint8Array<ArrayBuffer> {
  const sent = normalizeDialAnswer(answer);
  return canonical(
    sent.ok
      ? ["dial-answer", subject, reply, true]
      : ["dial-answer", subject, reply, false, sent.error],
  );
}

/** `{"node":…,"mesh":…,"mac":…}`: a locate answer, or a dial request. */
export function encodeNodeInfo(info: NodeInfo, mac: string): Uint8Array {
  return encodeObject({ node: info.node, mesh: info.mesh, mac });
}

/** A locate answer or dial request, or null if it is not a valid one (its MAC unchecked). */
export function decodeNodeInfo(bytes: Uint8Array): Signed<NodeInfo> | null {
  const value = decodeObject(bytes);
  if (value === null || !isNodeInfo(value)) return null;
  return { node: value.node, mesh: value.mesh, mac: macOf(value) };
}

/** A claim: relay `node` admitted the client at `at` (unix ms, its clock). */
export interface Claim {
  /** The claiming relay's node id. */
  readonly node: string;
  /** When it admitted the client (unix ms, its clock). */
  readonly at: number;
}

/** `{"node":…,"at":…,"mac":…}`: a claim by relay `node` of a client it admitted at `at`. */
export function encodeClaim(claim: Claim, mac: string): Uint8Array {
  return encodeObject({ node: claim.node, at: claim.at, mac });
}

/** The claim, or null if it is not a valid one (its MAC unchecked). */
export function decodeClaim(bytes: Uint8Array): Signed<Claim> | null {
  const value = decodeObject(bytes);
  if (value === null || !isNodeId(value.node)) return null;
  const at = value.at;
  if (typeof at !== "number" || !Number.isSafeInteger(at) || at < 0) return null;
  return { node: value.node, at, mac: macOf(value) };
}

/** The answer to a dial request: done, or why not. */
export type DialAnswer = { readonly ok: true } | { readonly ok: false; readonly error: string };

/** The answer as sent: the error cut to {@linkcode MAX_DIAL_ERROR_CHARS}, without control characters. */
function normalizeDialAnswer(answer: DialAnswer): DialAnswer {
  if (answer.ok) return { ok: true };
  // The text ends up in the other relay's logs: no control characters.
  return {
    ok: false,
    error: answer.error.slice(0, MAX_DIAL_ERROR_CHARS).replace(CONTROL_CHARACTERS, "?"),
  };
}

/**
 * `{"ok":true,"mac":…}` or `{"ok":false,"error":…,"mac":…}` (the text cut to
 * {@linkcode MAX_DIAL_ERROR_CHARS}, control characters replaced).
 */
export function encodeDialAnswer(answer: DialAnswer, mac: string): Uint8Array {
  const sent = normalizeDialAnswer(answer);
  return encodeObject(sent.ok ? { ok: true, mac } : { ok: false, error: sent.error, mac });
}

/** A dial answer, or null if it is not a valid one (its MAC unchecked). */
export function decodeDialAnswer(bytes: Uint8Array): Signed<DialAnswer> | null {
  const value = decodeObject(bytes);
  if (value === null) return null;
  const mac = macOf(value);
  if (value.ok === true) return { ok: true, mac };
  if (
    value.ok === false && typeof value.error === "string" &&
    value.error.length <= MAX_DIAL_ERROR_CHARS
  ) {
    // The text ends up in logs: no control characters from the wire.
    return { ok: false, error: value.error.replace(CONTROL_CHARACTERS, "?"), mac };
  }
  return null;
}
