/**
 * A token bucket: `ratePerSecond` tokens flow in, at most `burst` wait.
 * Used for the request rate and the byte rate of each client.
 *
 * @module
 */

/** Tokens that refill continuously; times are `performance.now()` milliseconds. */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #updatedAt: number;

  /** A full bucket. */
  constructor(ratePerSecond: number, burst: number, now: number) {
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#updatedAt = now;
  }

  /** Takes one token if there is one. */
  tryTake(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Puts back one token taken for something that then did not happen; never above `burst`. */
  giveBack(now: number): void {
    this.#refill(now);
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }

  /**
   * Takes `amount` tokens even if that leaves a debt, and returns how many
   * milliseconds until the bucket is out of debt (0 if it is not in debt).
   */
  spend(amount: number, now: number): number {
    this.#refill(now);
    this.#tokens -= amount;
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.#ratePerMs;
  }

  /** Whether the bucket holds all it can, as a fresh one does. */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.#burst;
  }

  #refill(now: number): void {
    const elapsed = now - this.#updatedAt;
    this.#updatedAt = now;
    if (elapsed > 0) this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#ratePerMs);
  }
}
