/**
 * Promises that an event settles, or a time-out fails: the client's requests
 * in flight (settled by their answers) and the calls that wait for the link
 * to the relay to come back (settled by the next link).
 *
 * @module
 */

/** One registered waiter. */
interface Waiter<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * Waiters by id, each with its own time-out. Ids are u32 other than 0 and
 * never reused while their waiter is registered, so a request id can be one.
 * Owned by one caller at a time (the client's read loop and public methods).
 */
export class TimedWaiters<T> {
  readonly #waiters = new Map<number, Waiter<T>>();
  #lastId = 0;

  /** How many waiters are registered. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Registers a waiter and returns its id. Unless settled within `timeoutMs`,
   * it is removed and `reject` gets the error `onTimeout` makes.
   */
  add(
    timeoutMs: number,
    resolve: (value: T) => void,
    reject: (error: Error) => void,
    onTimeout: () => Error,
  ): number {
    do {
      this.#lastId = (this.#lastId + 1) >>> 0;
    } while (this.#lastId === 0 || this.#waiters.has(this.#lastId));
    const id = this.#lastId;
    const timer = setTimeout(() => {
      this.#waiters.delete(id);
      reject(onTimeout());
    }, timeoutMs);
    this.#waiters.set(id, { resolve, reject, timer });
    return id;
  }

  /** A promise that {@linkcode TimedWaiters.resolveAll} settles, or `onTimeout()` rejects. */
  wait(timeoutMs: number, onTimeout: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.add(timeoutMs, resolve, reject, onTimeout);
    });
  }

  /** Settles waiter `id` with `value`; false if it is not registered (timed out, settled or unknown). */
  resolve(id: number, value: T): boolean {
    const waiter = this.#waiters.get(id);
    if (waiter === undefined) return false;
    this.#waiters.delete(id);
    clearTimeout(waiter.timer);
    waiter.resolve(value);
    return true;
  }

  /** Settles every waiter with `value`. */
  resolveAll(value: T): void {
    for (const waiter of this.#takeAll()) waiter.resolve(value);
  }

  /** Fails every waiter with `error`. */
  rejectAll(error: Error): void {
    for (const waiter of this.#takeAll()) waiter.reject(error);
  }

  /** Removes every waiter first, so a callback that registers a new one keeps it. */
  #takeAll(): Waiter<T>[] {
    const all = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const waiter of all) clearTimeout(waiter.timer);
    return all;
  }
}
