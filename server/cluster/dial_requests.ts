/**
 * Dial requests between relays (issue 12): relay B asks relay A, by A's node
 * id, to dial B's relay-link port; A runs its dial handler and answers ok or
 * why not. Either side may be anything that can publish on NATS, so both
 * check what they read.
 *
 * @module
 */

import { type Msg, type NatsConnection, RequestError, TimeoutError } from "@nats-io/transport-node";
import type { PresenceLog } from "./presence_log.ts";
import {
  decodeDialAnswer,
  decodeNodeInfo,
  type DialAnswer,
  encodeDialAnswer,
  encodeNodeInfo,
  type NodeInfo,
} from "./presence_wire.ts";

/** Dial requests served at once; more are answered "busy" (each one dials a TCP link). */
export const MAX_CONCURRENT_DIALS = 16;

/** Runs the dial handler for valid requests, at most {@linkcode MAX_CONCURRENT_DIALS} at once. */
export class DialServer {
  readonly #self: NodeInfo;
  readonly #handler: (from: NodeInfo) => Promise<void>;
  readonly #log: PresenceLog;
  #running = 0;
  #closed = false;

  /** Serves requests to `self` with `handler`; `handler` must settle within its own bound. */
  constructor(self: NodeInfo, handler: (from: NodeInfo) => Promise<void>, log: PresenceLog) {
    this.#self = self;
    this.#handler = handler;
    this.#log = log;
  }

  /** After this, handlers still running no longer answer (the connection is closing). */
  close(): void {
    this.#closed = true;
  }

  /** The subscription callback: never throws. */
  onMessage(error: Error | null, msg: Msg): void {
    if (error !== null) {
      this.#log.limited("warn", "nats-subscription-error", { error: String(error) });
      return;
    }
    if (!msg.reply || this.#closed) return; // nobody to answer, or we are leaving
    const from = decodeNodeInfo(msg.data);
    if (from === null || from.node === this.#self.node) {
      this.#log.refused("dial request", msg.subject);
      this.#answer(msg, { ok: false, error: "malformed dial request" });
      return;
    }
    if (this.#running >= MAX_CONCURRENT_DIALS) {
      this.#answer(msg, { ok: false, error: "busy: too many dials at once" });
      return;
    }
    this.#running++;
    let running: Promise<void>;
    try {
      running = Promise.resolve(this.#handler(from));
    } catch (failure) {
      running = Promise.reject(failure);
    }
    running.then(
      () => this.#answer(msg, { ok: true }),
      (failure) =>
        this.#answer(msg, {
          ok: false,
          error: failure instanceof Error ? failure.message : String(failure),
        }),
    ).finally(() => this.#running--);
  }

  #answer(msg: Msg, answer: DialAnswer): void {
    if (this.#closed) return;
    try {
      msg.respond(encodeDialAnswer(answer));
    } catch (failure) {
      this.#log.limited("debug", "dial-answer-failed", { error: String(failure) });
    }
  }
}

/**
 * Asks relay `node` (a checked node id; `subject` is its dial subject) to
 * dial `self`; resolves on an ok answer, rejects with an Error saying why not.
 */
export async function requestDial(
  nc: NatsConnection,
  subject: string,
  self: NodeInfo,
  node: string,
  timeoutMs: number,
  log: PresenceLog,
): Promise<void> {
  const what = `Cannot request a dial from node ${node}`;
  let data: Uint8Array;
  try {
    data = (await nc.request(subject, encodeNodeInfo(self), { timeout: timeoutMs })).data;
  } catch (error) {
    const reason = error instanceof RequestError && error.isNoResponders()
      ? "no relay with that id is connected to NATS"
      : error instanceof TimeoutError
      ? `no answer within ${timeoutMs} ms`
      : String(error);
    throw new Error(`${what}: ${reason}`, { cause: error });
  }
  const answer = decodeDialAnswer(data);
  if (answer === null) {
    log.refused("dial answer", subject);
    throw new Error(`${what}: malformed answer`);
  }
  if (!answer.ok) throw new Error(`${what}: it answered: ${answer.error}`);
}
