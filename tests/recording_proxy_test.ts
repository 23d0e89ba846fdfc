/**
 * A passive tap between a client and the real relay: a TCP proxy that
 * records every byte both ways. Nothing it records holds the client's
 * private key or the join token's secret, and the client's recorded bytes,
 * replayed to the relay byte for byte, get no address, neither while the
 * client is online nor after it left.
 */

import assert from "node:assert/strict";
import { connect, exportIdentity, generateIdentity, Reason } from "../mod.ts";
import { decodeBase64Url } from "../crypto/base64url.ts";
import { parseJoinToken } from "../crypto/join_token.ts";
import { FrameDecoder, type Packet, PacketType } from "../protocol/mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { concatBytes } from "./_helpers/bytes.ts";
import { runDeno } from "./_helpers/run_deno.ts";
import { SERVER, startServer } from "./_helpers/server_process.ts";

/** Bytes of a secret that may not appear on the wire in any run this long or longer. */
const WINDOW_BYTES = 8;

/** A TCP proxy to `port` that records each direction of every link it carries. */
class RecordingProxy {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #links: Promise<void>[] = [];
  readonly #conns: Deno.Conn[] = [];
  /** What clients sent, one entry per link, chunk boundaries kept. */
  readonly fromClients: Uint8Array[][] = [];
  /** What the relay sent back, one entry per link. */
  readonly fromRelay: Uint8Array[][] = [];
  readonly #accepting: Promise<void>;

  constructor(readonly relayPort: number) {
    this.#accepting = this.#accept();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      const relay = await Deno.connect({ hostname: "127.0.0.1", port: this.relayPort });
      this.#conns.push(client, relay);
      const up: Uint8Array[] = [];
      const down: Uint8Array[] = [];
      this.fromClients.push(up);
      this.fromRelay.push(down);
      this.#links.push(
        Promise.all([copy(client, relay, up), copy(relay, client, down)]).then(() => {}),
      );
    }
  }

  /** Stops accepting and cuts every link it still carries. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // Closed when its link ended.
      }
    }
    await this.#accepting;
    await Promise.all(this.#links);
  }
}

/** Copies `from` into `to`, recording each chunk, until `from` ends; then closes both. */
async function copy(from: Deno.Conn, to: Deno.Conn, record: Uint8Array[]): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const count = await from.read(buffer);
      if (count === null) break;
      const chunk = buffer.slice(0, count);
      record.push(chunk);
      let written = 0;
      while (written < chunk.length) written += await to.write(chunk.subarray(written));
    }
  } catch {
    // The other side went away: the recording so far is what crossed.
  } finally {
    for (const conn of [from, to]) {
      try {
        conn.close();
      } catch {
        // Closed by the other copy.
      }
    }
  }
}

/** Whether any `WINDOW_BYTES`-long run of `secret` occurs in `haystack`. */
function leaks(haystack: Uint8Array, secret: Uint8Array): boolean {
  for (let s = 0; s + WINDOW_BYTES <= secret.length; s++) {
    const run = secret.subarray(s, s + WINDOW_BYTES);
    outer: for (let h = 0; h + WINDOW_BYTES <= haystack.length; h++) {
      for (let i = 0; i < WINDOW_BYTES; i++) if (haystack[h + i] !== run[i]) continue outer;
      return true;
    }
  }
  return false;
}

/** Sends `bytes` to the relay on a new link and returns every frame it answers until it closes. */
async function replay(port: number, chunks: readonly Uint8Array[]): Promise<Packet[]> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  for (const chunk of chunks) {
    try {
      await conn.write(chunk);
    } catch (error) {
      // The relay may refuse the replay and close the link before its later chunks are written
      // (BrokenPipe or ConnectionReset): what it answered before that is still read below.
      if (
        !(error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset)
      ) throw error;
      break;
    }
  }
  const packets: Packet[] = [];
  const decoder = new FrameDecoder();
  const buffer = new Uint8Array(64 * 1024);
  await withTimeout(
    (async () => {
      while (true) {
        const count = await conn.read(buffer).catch(() => null);
        if (count === null) return;
        decoder.push(buffer.subarray(0, count), (packet) => packets.push(structuredClone(packet)));
      }
    })(),
    STEP_MS * 2,
    "the relay to close the replayed link",
  );
  return packets;
}

/**
 * The relay's answer to a replay: a Challenge with a fresh nonce, then an
 * Error with `reason`; no address.
 */
function assertRefused(
  packets: Packet[],
  recordedNonce: Uint8Array,
  ...reasons: Reason[]
): void {
  const types = packets.map((packet) => packet.type);
  assert.ok(!types.includes(PacketType.VirtualIP), `the replay got an address: ${types}`);
  const [challenge, error] = packets;
  assert.equal(challenge?.type, PacketType.Challenge);
  assert.notDeepEqual(challenge.nonce, recordedNonce, "the relay reused a nonce");
  assert.equal(error?.type, PacketType.Error);
  assert.ok(reasons.includes(error.reason), `refused with ${error.reason}, not ${reasons}`);
}

/** The bytes of the first `count` frames of `stream`. */
function firstFrames(stream: Uint8Array, count: number): Uint8Array {
  let at = 0;
  for (let i = 0; i < count; i++) {
    at += 5 + new DataView(stream.buffer, stream.byteOffset + at).getUint32(0);
  }
  return stream.slice(0, at);
}

Deno.test("a recording proxy sees no secret, and the client bytes it recorded, replayed, get no address", async () => {
  const dir = await Deno.makeTempDir();
  const db = `${dir}/alphanet.db`;
  const server = await startServer(["--port", "0", "--db", db, "--join", "token"]);
  const proxy = new RecordingProxy(server.port);
  try {
    // Made beside the running relay, as an operator would.
    const created = await runDeno(["run", "-A", SERVER, "tokens", "create", "--db", db, "--json"]);
    assert.equal(created.code, 0, created.stderr);
    const token = JSON.parse(created.stdout).token as string;
    const identity = await generateIdentity();
    const seed = decodeBase64Url((await exportIdentity(identity)).trim().split(" ")[3], 32)!;
    const tokenParts = parseJoinToken(token);
    assert.ok(typeof tokenParts !== "string");

    // The victim joins through the tap and uses its link.
    const victim = await connect({ port: proxy.port, identity, joinToken: token });
    const address = victim.virtualIp;
    using listener = victim.listen({ port: 80 });
    assert.deepEqual(await victim.status({ hostname: address, port: 80 }), {
      online: true,
      listening: true,
    });

    const sent = concatBytes(proxy.fromClients[0]);
    const received = concatBytes(proxy.fromRelay[0]);
    const secrets: [string, Uint8Array][] = [
      ["private key", seed],
      ["join token secret", tokenParts.seed],
    ];
    for (const [what, secret] of secrets) {
      assert.ok(!leaks(sent, secret), `the ${what} crossed the wire from the client`);
      assert.ok(!leaks(received, secret), `the ${what} crossed the wire from the relay`);
    }
    const text = new TextDecoder().decode(concatBytes([sent, received]));
    assert.ok(!text.includes(token.split(".")[2]), "the token's text crossed the wire");

    const recordedChallenge = new FrameDecoder();
    let recordedNonce = new Uint8Array();
    recordedChallenge.push(received, (packet) => {
      if (packet.type === PacketType.Challenge) recordedNonce = packet.nonce.slice();
    });
    assert.equal(recordedNonce.length, 32);

    // Replayed while the victim is online, as recorded: no address, and the victim is not
    // replaced. The refusal is InvalidIdentity, or UnexpectedPacket when the frames recorded
    // behind the Proof reach the relay while it is still verifying the replayed Proof.
    assertRefused(
      await replay(server.port, proxy.fromClients[0]),
      recordedNonce,
      Reason.InvalidIdentity,
      Reason.UnexpectedPacket,
    );
    // Hello and Proof alone: the signature is of the recorded nonce, not of this link's.
    const handshake = firstFrames(sent, 2);
    assertRefused(await replay(server.port, [handshake]), recordedNonce, Reason.InvalidIdentity);
    assert.equal(victim.state, "connected");
    assert.deepEqual(await victim.status({ hostname: address, port: 80 }), {
      online: true,
      listening: true,
    });

    // Replayed after the victim left, in one write: still no address.
    listener.close();
    await victim.close();
    assertRefused(await replay(server.port, [handshake]), recordedNonce, Reason.InvalidIdentity);
    assertRefused(
      await replay(server.port, [sent]),
      recordedNonce,
      Reason.InvalidIdentity,
      Reason.UnexpectedPacket,
    );

    // The victim itself comes back to its address, without a token (its key is known).
    await using back = await connect({ port: server.port, identity });
    assert.equal(back.virtualIp, address);
  } finally {
    await proxy.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
