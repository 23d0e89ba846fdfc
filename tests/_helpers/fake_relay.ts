/** A stand-in relay for client tests, driven frame by frame. */

import { PacketType } from "../../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./async.ts";
import { RawClient } from "./raw_client.ts";

/**
 * A stand-in relay for client tests: a real TCP listener on 127.0.0.1 whose
 * links the test drives by hand as {@linkcode RawClient}s (the roles are
 * swapped: the raw side is the relay here).
 */
export class FakeRelay implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  /** The id its Challenges carry: random, the same on every link, as a relay's. */
  readonly relayId: Uint8Array = crypto.getRandomValues(new Uint8Array(32));
  readonly #links: RawClient[] = [];

  private constructor(listener: Deno.TcpListener) {
    this.listener = listener;
  }

  /** Listens on a free port of 127.0.0.1. */
  static start(): FakeRelay {
    return new FakeRelay(Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" }));
  }

  /** The port clients connect to. */
  get port(): number {
    return this.listener.addr.port;
  }

  /** Accepts the next client link. */
  async accept(what = "a client to connect to the fake relay"): Promise<RawClient> {
    const accepting = this.listener.accept();
    accepting.catch(() => {}); // Rejects on close() if the time-out won the race.
    const link = RawClient.adopt(await withTimeout(accepting, STEP_MS, what));
    this.#links.push(link);
    return link;
  }

  /**
   * Accepts a link and completes its handshake as a relay would: expects its
   * Hello, sends a Challenge (this fake relay's id, a fresh nonce), expects
   * its Proof (not verified) and answers VirtualIP(`address`).
   */
  async acceptJoin(address: number, what = "a client to join the fake relay"): Promise<RawClient> {
    const link = await this.accept(what);
    await link.expect(PacketType.Hello, `${what}: Hello`);
    await link.send({
      type: PacketType.Challenge,
      relayId: this.relayId,
      nonce: crypto.getRandomValues(new Uint8Array(32)),
    });
    await link.expect(PacketType.Proof, `${what}: Proof`);
    await link.send({ type: PacketType.VirtualIP, address });
    return link;
  }

  /** Stops listening and closes every link. Idempotent. */
  async close(): Promise<void> {
    try {
      this.listener.close();
    } catch {
      // Already closed.
    }
    for (const link of this.#links) await link.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
