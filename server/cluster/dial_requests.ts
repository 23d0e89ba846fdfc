/**
 * Dial requests between relays (issue 12): relay B asks relay A, by A's node
 * id, to dial B's relay-link port; A runs its dial handler and answers ok or
 * why not. Either side may be anything that can publish on NATS, so both
 * check what they read, and each verifies the other's MAC: the request is
 * bound to A's dial subject, the answer also to the request's reply subject.
 *
 * @module
 */

import { type Msg, type NatsConnection, RequestError, TimeoutError } from "@nats-io/transport-node";
import type { PresenceLog } from "./presence_log.ts";
import type { PresenceMac } from "./presence_mac.ts";
import {
  decodeDialAnswer,
  decodeNodeInfo,
  type DialAnswer,
  dialAnswerMacInput,
  dialRequestMacInput,
  encodeDialAnswer,
  encodeNodeInfo,
  type NodeInfo,
} from "./presence_wire.ts";

/** Dial requests served at once; more are answered "busy" (each one dials a TCP link). */
const MAX_CONCURRENT_DIALS = 16;

/** Runs the dial handler for valid requests, at most {@linkcode MAX_CONCURRENT_DIALS} at once. */
export class DialServer {
  readonly #self: NodeInfo;
  readonly #handler: (from: NodeInfo) => Promise<void>;
  readonly #log: PresenceLog;
  readonly #mac: PresenceMac;
  #running = 0;
  #closed = false;

  /**
   * Serves requests to `self` with `handler` (it must settle within its own
   * bound), verifying and signing with `mac`.
   */
  constructor(
    self: NodeInfo,
    handler: (from: NodeInfo) => Promise<void>,
    log: PresenceLog,
    mac: PresenceMac,
  ) {
    this.#self = self;
    this.#handler = handler;
    this.#log = log;
    this.#mac = mac;
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
    const reply = msg.reply;
    if (!reply || this.#closed) return; // nobody to answer, or we are leaving
    if (!this.#mac.available) {
      this.#log.overloaded("dial request", msg.subject);
      return;
    }
    const request = decodeNodeInfo(msg.data);
    if (request === null || request.node === this.#self.node) {
      this.#log.refused("dial request", msg.subject);
      void this.#answer(msg, reply, { ok: false, error: "malformed dial request" });
      return;
    }
    const from = { node: request.node, mesh: request.mesh };
    void this.#mac.verify(dialRequestMacInput(msg.subject, from), request.mac).then((valid) => {
      if (!valid) this.#log.unauthenticated("dial request", msg.subject);
      else if (!this.#closed) this.#run(msg, reply, from);
    });
  }

  /** Runs the handler for a verified request, unless too many run already. */
  #run(msg: Msg, reply: string, from: NodeInfo): void {
    if (this.#running >= MAX_CONCURRENT_DIALS) {
      void this.#answer(msg, reply, { ok: false, error: "busy: too many dials at once" });
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
      () => this.#answer(msg, reply, { ok: true }),
      (failure) =>
        this.#answer(msg, reply, {
          ok: false,
          error: failure instanceof Error ? failure.message : String(failure),
        }),
    ).finally(() => this.#running--);
  }

  /** Signs `answer` for this request's subject and reply subject, and sends it. Never rejects. */
  async #answer(msg: Msg, reply: string, answer: DialAnswer): Promise<void> {
    if (this.#closed) return;
    try {
      const mac = await this.#mac.sign(dialAnswerMacInput(msg.subject, reply, answer));
      if (this.#closed) return;
      msg.respond(encodeDialAnswer(answer, mac));
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
  mac: PresenceMac,
): Promise<void> {
  const what = `Cannot request a dial from node ${node}`;
  const request = encodeNodeInfo(self, await mac.sign(dialRequestMacInput(subject, self)));
  let response: Msg;
  try {
    response = await nc.request(subject, request, { timeout: timeoutMs });
  } catch (error) {
    const reason = error instanceof RequestError && error.isNoResponders()
      ? "no relay with that id is connected to NATS"
      : error instanceof TimeoutError
      ? `no answer within ${timeoutMs} ms`
      : String(error);
    throw new Error(`${what}: ${reason}`, { cause: error });
  }
  const answer = decodeDialAnswer(response.data);
  if (answer === null) {
    log.refused("dial answer", subject);
    throw new Error(`${what}: malformed answer`);
  }
  // The answer came on this request's reply subject: its MAC must name it.
  if (!(await mac.verify(dialAnswerMacInput(subject, response.subject, answer), answer.mac))) {
    log.unauthenticated("dial answer", subject);
    throw new Error(`${what}: unauthenticated answer`);
  }
  if (!answer.ok) throw new Error(`${what}: it answered: ${answer.error}`);
}
