/**
 * The client's requests in flight, by request id, each with a time-out.
 *
 * @module
 */

import { TimedOut } from "../errors.ts";
import type { Packet } from "../protocol/packets.ts";

/** Runs synchronously in the read loop when the answer arrives. */
export type AnswerHandler = (answer: Packet) => void;

interface InFlight {
  readonly onAnswer: AnswerHandler;
  readonly onError: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** Request ids and their handlers; ids are u32 and never reused while in flight. */
export class RequestTable {
  readonly #inFlight = new Map<number, InFlight>();
  #lastId = 0;

  /** Registers a request and returns its id. `onError` runs on time-out or link loss. */
  open(timeoutMs: number, onAnswer: AnswerHandler, onError: (error: Error) => void): number {
    do {
      this.#lastId = (this.#lastId + 1) >>> 0;
    } while (this.#lastId === 0 || this.#inFlight.has(this.#lastId));
    const id = this.#lastId;
    const timer = setTimeout(() => {
      this.#inFlight.delete(id);
      onError(new TimedOut(`Cannot complete request: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    this.#inFlight.set(id, { onAnswer, onError, timer });
    return id;
  }

  /** Delivers an answer; false if the request is unknown (timed out or never sent). */
  answer(id: number, packet: Packet): boolean {
    const request = this.#inFlight.get(id);
    if (!request) return false;
    this.#inFlight.delete(id);
    clearTimeout(request.timer);
    request.onAnswer(packet);
    return true;
  }

  /** Fails every request in flight with `error`. */
  failAll(error: Error): void {
    const all = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const request of all) {
      clearTimeout(request.timer);
      request.onError(error);
    }
  }
}
