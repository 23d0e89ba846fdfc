/** A stand-in relay for client tests, driven frame by frame. */

import { PacketType } from "../../protocol/mod.ts";
import { LinkListener } from "./link_listener.ts";
import { RawClient } from "./raw_client.ts";

/**
 * A stand-in relay for client tests: a real TCP listener on 127.0.0.1 (a
 * {@linkcode LinkListener}) whose links the test drives by hand as
 * {@linkcode RawClient}s (the roles are
 * swapped: the raw side is the relay here).
 */
export class FakeRelay extends LinkListener<RawClient> {
  /** The id its Challenges carry: random, the same on every link, as a relay's. */
  readonly relayId: Uint8Array = crypto.getRandomValues(new Uint8Array(32));

  private constructor() {
    super(RawClient.adopt, "a client to connect to the fake relay");
  }

  /** Listens on a free port of 127.0.0.1. */
  static start(): FakeRelay {
    return new FakeRelay();
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
}
