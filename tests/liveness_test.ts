/**
 * Relay liveness: the relay pings quiet clients and closes dead ones
 * (PeerTimeout), closes idle virtual connections (Idle), fails requests
 * nobody answers (Timeout), and closes TCP links that never say Hello
 * (HelloTimeout), while well-behaved clients keep working.
 */

import assert from "node:assert/strict";
import { connect, TimedOut, type VirtualConn } from "../mod.ts";
import { formatIpv4, PacketType, reasonName } from "../protocol/mod.ts";
import { STEP_MS, waitUntil, withTimeout } from "./_helpers/async.ts";
import { randomIdentity } from "./_helpers/bytes.ts";
import { startEchoPair } from "./_helpers/echo_pair.ts";
import { type LinkOutcome, readLinkToEnd } from "./_helpers/link_outcome.ts";
import { rawClient, rawConnect } from "./_helpers/raw_client.ts";
import { startRelay } from "./_helpers/relay_fixture.ts";
import { startServer } from "./_helpers/server_process.ts";
import { readExactly } from "./_helpers/streams.ts";

const HOLD_CLIENT = new URL("./fixtures/hold_client.ts", import.meta.url).pathname;
/** A cold `deno run` of the fixture may compile it first. */
const CHILD_START_MS = 20_000;

/** A Deno subprocess whose stdout is read line by line. */
class Subprocess {
  readonly child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  readonly #stderr: Promise<string>;
  #buffer = "";
  #exited = false;
  readonly #status: Promise<Deno.CommandStatus>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#lines = this.child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stderr = new Response(this.child.stderr).text();
    this.#status = this.child.status.then((status) => {
      this.#exited = true;
      return status;
    });
  }

  /** The next line of stdout, or null at its end. */
  async nextLine(what: string, ms: number = STEP_MS): Promise<string | null> {
    const deadline = performance.now() + ms;
    // Each pass reads one chunk (at least one byte) or ends: bounded by the output and the deadline.
    for (let chunks = 0; chunks < 1_000_000; chunks++) {
      const newline = this.#buffer.indexOf("\n");
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      const left = deadline - performance.now();
      if (left <= 0) break;
      const { value, done } = await withTimeout(this.#lines.read(), left, what).catch(
        async (error) => {
          throw new Error(`${error.message}; child stderr: ${await this.#stderrIfExited()}`);
        },
      );
      if (done) return null;
      this.#buffer += value;
    }
    throw new Error(`Timed out after ${ms} ms: ${what}`);
  }

  /** Waits for the process to exit by itself. */
  async exited(ms: number, what: string): Promise<Deno.CommandStatus> {
    return await withTimeout(this.#status, ms, what);
  }

  /** Sends a signal unless the process has exited. */
  kill(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.child.kill(signal);
    } catch {
      // Exited meanwhile.
    }
  }

  /** Resumes and kills the process if it still runs, drains its output, waits for it. */
  async stop(): Promise<{ status: Deno.CommandStatus; stderr: string }> {
    this.kill("SIGCONT");
    this.kill("SIGKILL");
    const status = await this.#status;
    for (let chunks = 0; chunks < 1_000_000; chunks++) {
      if ((await this.#lines.read()).done) break;
    }
    return { status, stderr: await this.#stderr };
  }

  async #stderrIfExited(): Promise<string> {
    return this.#exited ? await this.#stderr : "(still running)";
  }
}

Deno.test("a client process stopped with SIGSTOP is closed after peerTimeoutMs, and its address goes offline", async () => {
  const KEEPALIVE_MS = 100;
  const PEER_TIMEOUT_MS = 500;
  const relay = await startRelay({
    db: ":memory:",
    keepaliveMs: KEEPALIVE_MS,
    peerTimeoutMs: PEER_TIMEOUT_MS,
  });
  const watcher = await withTimeout(
    connect({ port: relay.port, identity: randomIdentity(), reconnect: false }),
    STEP_MS,
    "the watcher to join",
  );
  const held = new Subprocess([
    "run",
    "--allow-net=127.0.0.1",
    HOLD_CLIENT,
    String(relay.port),
    randomIdentity(),
    "80",
  ]);
  try {
    const first = await held.nextLine("the held client to print its virtual IP", CHILD_START_MS);
    const vip = /^vip (\d+\.\d+\.\d+\.\d+)$/.exec(first ?? "")?.[1];
    assert.ok(vip, `unexpected first line from the held client: ${JSON.stringify(first)}`);
    assert.deepEqual(
      await withTimeout(watcher.status({ hostname: vip, port: 80 }), STEP_MS, "status before"),
      { online: true, listening: true },
    );
    const conn = await withTimeout(
      watcher.connect({ hostname: vip, port: 80 }),
      STEP_MS,
      "the watcher to connect to the held client",
    );
    try {
      // One echoed byte proves the relay heard from the child after `sentAt`, so the relay
      // may not call it dead before `sentAt + PEER_TIMEOUT_MS` (one clock: the relay is here).
      const sentAt = performance.now();
      await conn.write(Uint8Array.of(42));
      assert.deepEqual(
        await withTimeout(readExactly(conn, 1), STEP_MS, "the held client's echo"),
        Uint8Array.of(42),
      );
      held.kill("SIGSTOP");
      const stoppedAt = performance.now();
      const count = await withTimeout(
        conn.read(new Uint8Array(16)),
        5_000,
        "the relay to close the stopped client and end the watcher's reads",
      );
      const endedAt = performance.now();
      assert.equal(count, null, "the watcher's connection ends with end of stream");
      assert.ok(
        endedAt - sentAt >= PEER_TIMEOUT_MS,
        `the stopped client was dropped ${Math.round(endedAt - sentAt)} ms after it last ` +
          `spoke, before peerTimeoutMs ${PEER_TIMEOUT_MS}`,
      );
      assert.ok(endedAt - stoppedAt <= 5_000);
      assert.deepEqual(
        await withTimeout(watcher.status({ hostname: vip, port: 80 }), STEP_MS, "status after"),
        { online: false, listening: false },
        "the stopped client's address is offline",
      );
      assert.equal(relay.relay.onlineCount, 1, "only the watcher is online");
    } finally {
      conn.close();
    }
    held.kill("SIGCONT");
    assert.equal(
      await held.nextLine("the resumed client to report how its link ended"),
      "closed PeerTimeout",
      "the resumed client finds the relay's Error(PeerTimeout) waiting for it",
    );
    const status = await held.exited(STEP_MS, "the resumed client to exit");
    assert.equal(status.code, 0);
  } finally {
    const { status, stderr } = await held.stop();
    if (!status.success && status.signal === null) console.error(stderr);
    await watcher.close();
    await relay.close();
  }
});

Deno.test("the relay pings a quiet client: Pongs keep it past several peer time-outs, silence closes it with PeerTimeout", async () => {
  const KEEPALIVE_MS = 100;
  const PEER_TIMEOUT_MS = 400;
  const relay = await startRelay({
    db: ":memory:",
    keepaliveMs: KEEPALIVE_MS,
    peerTimeoutMs: PEER_TIMEOUT_MS,
  });
  const answering = await rawClient(relay.port);
  const silent = await rawClient(relay.port);
  try {
    await answering.handshake();
    await silent.handshake();
    const joinedAt = performance.now();

    const answer = async (): Promise<number> => {
      let pings = 0;
      // About one Ping per keepalive interval: 100 passes cover far more than 3 peer time-outs.
      for (let i = 0; i < 100 && performance.now() - joinedAt < 3 * PEER_TIMEOUT_MS; i++) {
        const packet = await answering.next(STEP_MS, "a Ping for the answering client");
        assert.ok(packet !== null, "the answering client's link ended");
        assert.equal(
          packet.type,
          PacketType.Ping,
          `expected a Ping, got ${JSON.stringify(packet)}`,
        );
        pings++;
        await answering.send({ type: PacketType.Pong, nonce: packet.nonce });
      }
      return pings;
    };
    const ignore = async (): Promise<{ pings: number; closedAfter: number }> => {
      let pings = 0;
      for (let i = 0; i < 64; i++) {
        const packet = await silent.next(STEP_MS, "Pings, then Error(PeerTimeout)");
        assert.ok(packet !== null, "the silent client's link ended without an Error frame");
        if (packet.type === PacketType.Ping) {
          pings++;
          continue;
        }
        assert.equal(packet.type, PacketType.Error, `unexpected ${JSON.stringify(packet)}`);
        assert.equal(reasonName(packet.reason), "PeerTimeout", packet.message);
        const closedAfter = performance.now() - joinedAt;
        await silent.expectEof("the relay to close the silent client's link");
        return { pings, closedAfter };
      }
      throw new Error("the silent client got 64 packets without an Error frame");
    };
    const [answered, ignored] = await Promise.all([answer(), ignore()]);

    assert.ok(answered >= 3, `only ${answered} Pings in ${3 * PEER_TIMEOUT_MS} ms`);
    assert.ok(ignored.pings >= 1, "the relay pinged the silent client before giving up");
    assert.ok(
      ignored.closedAfter >= PEER_TIMEOUT_MS,
      `the silent client was closed after ${Math.round(ignored.closedAfter)} ms`,
    );
    // Still connected: the relay answers the answering client's own Ping.
    await answering.send({ type: PacketType.Ping, nonce: 7 });
    for (let i = 0; i < 64; i++) {
      const packet = await answering.next(STEP_MS, "the relay's Pong");
      assert.ok(packet !== null, "the answering client's link ended");
      if (packet.type === PacketType.Pong && packet.nonce === 7) break;
      assert.equal(packet.type, PacketType.Ping, `unexpected ${JSON.stringify(packet)}`);
      await answering.send({ type: PacketType.Pong, nonce: packet.nonce });
    }
    assert.equal(relay.relay.onlineCount, 1);
  } finally {
    await answering.close();
    await silent.close();
    await relay.close();
  }
});

Deno.test("--socket-idle-timeout closes a connection without data on both ends, and spares one with data every 50 ms", async () => {
  const IDLE_MS = 300;
  const dir = await Deno.makeTempDir({ prefix: "alphanet_idle_" });
  const server = await startServer([
    "--port",
    "0",
    "--db",
    `${dir}/alphanet.db`,
    "--log-level",
    "silent",
    "--socket-idle-timeout",
    String(IDLE_MS / 1000),
  ]);
  const join = () =>
    withTimeout(connect({ port: server.port, identity: randomIdentity() }), STEP_MS, "join");
  const owner = await join();
  const talker = await join();
  const raw = await rawClient(server.port);
  let ownerIdle: VirtualConn | undefined;
  let ownerBusy: VirtualConn | undefined;
  let busy: VirtualConn | undefined;
  try {
    const idleListener = owner.listen({ port: 7 });
    const busyListener = owner.listen({ port: 8 });
    await raw.handshake();
    const startedAt = performance.now();
    const opened = await rawConnect(raw, owner, idleListener, 7);
    ownerIdle = opened.ownerEnd;
    const accepting = busyListener.accept();
    busy = await withTimeout(
      talker.connect({ hostname: owner.virtualIp, port: 8 }),
      STEP_MS,
      "busy",
    );
    ownerBusy = await withTimeout(accepting, STEP_MS, "the owner to accept the busy connection");
    idleListener.close();
    busyListener.close();

    const idleClosed = (async () => {
      const closed = await raw.expect(PacketType.SocketClosed, "SocketClosed(Idle) at the raw end");
      const at = performance.now();
      assert.equal(closed.connectionId, opened.connectionId);
      assert.equal(reasonName(closed.reason), "Idle");
      const count = await withTimeout(
        ownerIdle!.read(new Uint8Array(16)),
        STEP_MS,
        "the owner's idle end to end",
      );
      assert.equal(count, null, "the owner's end of the idle connection reads end of stream");
      return at;
    })();
    const keepBusy = (async () => {
      // 24 × 50 ms = 1.2 s, four idle time-outs; the data never pauses longer than 50 ms.
      for (let i = 0; i < 24; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        await busy!.write(Uint8Array.of(i));
        assert.deepEqual(
          await withTimeout(readExactly(ownerBusy!, 1), STEP_MS, `busy byte ${i}`),
          Uint8Array.of(i),
        );
      }
    })();
    const [idleAt] = await Promise.all([idleClosed, keepBusy]);
    assert.ok(
      idleAt - startedAt >= IDLE_MS - 1,
      `the idle connection closed ${Math.round(idleAt - startedAt)} ms after it opened`,
    );
    // The busy connection is intact both ways.
    await ownerBusy.write(Uint8Array.of(99));
    assert.deepEqual(
      await withTimeout(readExactly(busy, 1), STEP_MS, "the reply"),
      Uint8Array.of(99),
    );
  } finally {
    ownerIdle?.close();
    ownerBusy?.close();
    busy?.close();
    await raw.close();
    await talker.close();
    await owner.close();
    assert.equal(await server.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a request its owner never answers fails with the relay's Timeout, and leaves nothing pending", async () => {
  const REQUEST_TIMEOUT_MS = 300;
  // One request in flight at most: had the first one stayed pending, the next would fail
  // with TooManyPending (a RelayError) instead of TimedOut.
  const relay = await startRelay({
    db: ":memory:",
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    maxPendingPerClient: 1,
  });
  const mute = await rawClient(relay.port);
  const requester = await withTimeout(
    connect({ port: relay.port, identity: randomIdentity(), requestTimeoutMs: 8_000 }),
    STEP_MS,
    "the requester to join",
  );
  const answering = await withTimeout(
    connect({ port: relay.port, identity: randomIdentity() }),
    STEP_MS,
    "the answering owner to join",
  );
  try {
    const address = await mute.handshake();
    const muteIp = formatIpv4(address);

    for (
      const [what, ask] of [
        ["status()", () => requester.status({ hostname: muteIp, port: 80 })],
        ["connect()", () => requester.connect({ hostname: muteIp, port: 80 })],
        ["a second status()", () => requester.status({ hostname: muteIp, port: 81 })],
      ] as const
    ) {
      const startedAt = performance.now();
      const failure = await withTimeout(
        (ask() as Promise<unknown>).then(() => null, (error) => error),
        STEP_MS,
        `${what} to fail`,
      );
      const elapsed = performance.now() - startedAt;
      assert.ok(failure instanceof TimedOut, `${what}: expected TimedOut, got ${failure}`);
      assert.ok(
        elapsed >= REQUEST_TIMEOUT_MS - 1 && elapsed < 4_000,
        `${what} failed after ${Math.round(elapsed)} ms: not the relay's ${REQUEST_TIMEOUT_MS} ms`,
      );
      const forwarded = await mute.expect(PacketType.SocketStatusRequest, `${what} forwarded`);
      assert.ok(forwarded.requestId >= 1);
    }
    // A late answer to an expired request is dropped quietly: the owner stays connected.
    await mute.send({ type: PacketType.SocketStatusResponse, requestId: 1, listening: true });
    await mute.send({ type: PacketType.Ping, nonce: 5 });
    const pong = await mute.expect(PacketType.Pong, "the relay to answer the late owner's Ping");
    assert.equal(pong.nonce, 5);
    // The requester's slot is free again: an owner that answers is reached at once.
    assert.deepEqual(
      await withTimeout(
        requester.status({ hostname: answering.virtualIp, port: 80 }),
        STEP_MS,
        "status of an answering owner",
      ),
      { online: true, listening: false },
    );
  } finally {
    await mute.close();
    await requester.close();
    await answering.close();
    await relay.close();
  }
});

Deno.test("2,000 links that never send Hello are all closed with HelloTimeout, while a real pair keeps echoing", async () => {
  const HELLO_TIMEOUT_MS = 500;
  const LINKS = 2_000;
  const BATCH = 200;
  // Every link comes from 127.0.0.1: the per-IP limits would turn most away before their time-out.
  const relay = await startRelay({
    db: ":memory:",
    helloTimeoutMs: HELLO_TIMEOUT_MS,
    maxLinksPerIp: 0,
    maxHandshakesPerIp: 0,
  });
  const conns: Deno.TcpConn[] = [];
  const ends: Promise<{ outcome: LinkOutcome; startedAt: number; endedAt: number }>[] = [];
  let pairTask: Promise<number> | undefined;
  try {
    for (let batch = 0; batch < LINKS / BATCH; batch++) {
      const opened = await Promise.allSettled(
        Array.from({ length: BATCH }, async () => {
          const startedAt = performance.now();
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
          return { conn, startedAt };
        }),
      );
      for (const result of opened) {
        if (result.status === "rejected") continue;
        const { conn, startedAt } = result.value;
        conns.push(conn);
        ends.push(
          readLinkToEnd(conn).then((outcome) => ({
            outcome,
            startedAt,
            endedAt: performance.now(),
          })),
        );
      }
      const failed = opened.find((result) => result.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      if (batch === LINKS / BATCH / 2 - 1) {
        // Half the links are open and waiting: a well-behaved pair joins and echoes meanwhile.
        pairTask = (async () => {
          const pair = await startEchoPair(relay.port);
          try {
            const linksMeanwhile = relay.relay.linkCount;
            for (let i = 0; i < 3; i++) await pair.assertEchoes(`during the Hello flood ${i}`);
            return linksMeanwhile;
          } finally {
            await pair.close();
          }
        })();
      }
    }
    const lastOpenedAt = performance.now();
    const results = await withTimeout(
      Promise.all(ends),
      HELLO_TIMEOUT_MS + 5_000,
      `the relay to close all ${LINKS} silent links`,
    );
    assert.ok(performance.now() - lastOpenedAt <= HELLO_TIMEOUT_MS + 5_000);
    assert.equal(results.length, LINKS);
    const reasons = new Map<string, number>();
    for (const { outcome, startedAt, endedAt } of results) {
      const key = `${outcome.error ? reasonName(outcome.error.reason) : "no Error"}/` +
        `${outcome.ending}/${outcome.decodeError ?? "decoded"}/after=${outcome.afterError}`;
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
      assert.ok(
        endedAt - startedAt >= HELLO_TIMEOUT_MS - 1,
        `a silent link was closed ${Math.round(endedAt - startedAt)} ms after it opened`,
      );
    }
    assert.deepEqual(
      Object.fromEntries(reasons),
      { "HelloTimeout/eof/decoded/after=0": LINKS },
      "every silent link gets Error(HelloTimeout), then end of stream",
    );
    const linksMeanwhile = await withTimeout(pairTask!, STEP_MS, "the echo pair");
    assert.ok(linksMeanwhile > 2, `only ${linksMeanwhile} links were open during the echo`);
    await waitUntil(() => relay.relay.linkCount === 0, "the relay to forget every link");
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
    await Promise.allSettled(ends);
    await pairTask?.catch(() => {});
    await relay.close();
  }
});
