/**
 * Virtual sockets over a real relay: echo, status, refusals, concurrency,
 * closes and half-closes, self-connection, peer loss, addresses, streams.
 */

import assert from "node:assert/strict";
import {
  AddrInUse,
  type AlphaNetClient,
  BrokenPipe,
  connect,
  ConnectionRefused,
  ConnectionReset,
  HostUnreachable,
  type VirtualAddr,
  type VirtualConn,
} from "../mod.ts";
import type { VirtualConnImpl } from "../client/virtual_conn_impl.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import {
  concatBytes,
  pseudoRandomBytes,
  randomIdentity,
  sha256hex,
  text,
  utf8,
} from "./_helpers/bytes.ts";
import { startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";
import { readAll, readExactly, readStreamAll } from "./_helpers/streams.ts";

/** An address no client is ever assigned (TEST-NET-1 is outside the default pool). */
const NOBODY = "192.0.2.1";

interface Pair {
  relay: TestRelay;
  a: AlphaNetClient;
  b: AlphaNetClient;
}

/** Runs `body` with a relay and two real clients, then closes all of it. */
async function withPair(body: (pair: Pair) => Promise<void>): Promise<void> {
  const relay = await startRelay({ db: ":memory:" });
  const clients: AlphaNetClient[] = [];
  try {
    const a = await withTimeout(
      connect({ port: relay.port, identity: randomIdentity() }),
      STEP_MS,
      "client a to join",
    );
    clients.push(a);
    const b = await withTimeout(
      connect({ port: relay.port, identity: randomIdentity() }),
      STEP_MS,
      "client b to join",
    );
    clients.push(b);
    await body({ relay, a, b });
  } finally {
    for (const client of clients) await withTimeout(client.close(), STEP_MS, "client.close()");
    await relay.close();
  }
}

/** Accepts one connection on `port` of `owner` and connects `from` to it. */
async function openConn(
  from: AlphaNetClient,
  owner: AlphaNetClient,
  port: number,
): Promise<{ dialed: VirtualConn; accepted: VirtualConn; close(): void }> {
  const listener = owner.listen({ port });
  try {
    const accepting = listener.accept();
    const dialed = await withTimeout(
      from.connect({ hostname: owner.virtualIp, port }),
      STEP_MS,
      `connect to ${owner.virtualIp}:${port}`,
    );
    const accepted = await withTimeout(accepting, STEP_MS, "accept");
    return {
      dialed,
      accepted,
      close(): void {
        dialed.close();
        accepted.close();
      },
    };
  } finally {
    listener.close();
  }
}

Deno.test("a message echoes through a virtual connection", async () => {
  await withPair(async ({ a, b }) => {
    const listener = b.listen({ port: 7 });
    const served = (async () => {
      const conn = await listener.accept();
      try {
        await conn.write(await readAll(conn));
      } finally {
        conn.close();
      }
    })();
    const conn = await withTimeout(a.connect({ hostname: b.virtualIp, port: 7 }), STEP_MS, "dial");
    try {
      await conn.write(utf8("hello, virtual world"));
      await conn.closeWrite();
      assert.equal(
        text(await withTimeout(readAll(conn), STEP_MS, "echo")),
        "hello, virtual world",
      );
    } finally {
      conn.close();
      await withTimeout(served, STEP_MS, "echo server");
      listener.close();
    }
  });
});

Deno.test("status reports online and listening, online and not listening, and offline", async (t) => {
  await withPair(async ({ a, b }) => {
    const listener = b.listen({ port: 8080 });
    try {
      const cases: { name: string; hostname: string; port: number; want: object }[] = [
        {
          name: "a listening port of an online client is online and listening",
          hostname: b.virtualIp,
          port: 8080,
          want: { online: true, listening: true },
        },
        {
          name: "another port of an online client is online and not listening",
          hostname: b.virtualIp,
          port: 8081,
          want: { online: true, listening: false },
        },
        {
          name: "an address nobody owns is offline",
          hostname: NOBODY,
          port: 8080,
          want: { online: false, listening: false },
        },
      ];
      for (const c of cases) {
        await t.step(c.name, async () => {
          const status = await withTimeout(
            a.status({ hostname: c.hostname, port: c.port }),
            STEP_MS,
            c.name,
          );
          assert.deepEqual(status, c.want);
        });
      }
    } finally {
      listener.close();
    }
  });
});

Deno.test("connecting to an offline address fails with HostUnreachable", async () => {
  await withPair(async ({ a }) => {
    await assert.rejects(
      withTimeout(a.connect({ hostname: NOBODY, port: 80 }), STEP_MS, "connect"),
      HostUnreachable,
    );
  });
});

Deno.test("connecting to a port nobody listens on fails with ConnectionRefused", async () => {
  await withPair(async ({ a, b }) => {
    await assert.rejects(
      withTimeout(a.connect({ hostname: b.virtualIp, port: 80 }), STEP_MS, "connect"),
      ConnectionRefused,
    );
  });
});

Deno.test("an accept filter that returns false refuses the connection and sees the requester", async () => {
  await withPair(async ({ a, b }) => {
    const seen: VirtualAddr[] = [];
    const listener = b.listen({
      port: 443,
      accept: (remote) => {
        seen.push(remote);
        return false;
      },
    });
    try {
      await assert.rejects(
        withTimeout(a.connect({ hostname: b.virtualIp, port: 443 }), STEP_MS, "connect"),
        ConnectionRefused,
      );
      assert.equal(seen.length, 1);
      assert.equal(seen[0].transport, "tcp");
      assert.equal(seen[0].hostname, a.virtualIp);
      assert.ok(seen[0].port >= 1 && seen[0].port <= 65535);
    } finally {
      listener.close();
    }
  });
});

Deno.test("listening on a port already in use throws AddrInUse", async () => {
  await withPair(({ b }) => {
    const listener = b.listen({ port: 5000 });
    try {
      assert.throws(() => b.listen({ port: 5000 }), AddrInUse);
    } finally {
      listener.close();
    }
    // Closing frees the port.
    b.listen({ port: 5000 }).close();
    return Promise.resolve();
  });
});

Deno.test("100 concurrent connections to one listener each echo their own message", async () => {
  await withPair(async ({ a, b }) => {
    const count = 100;
    const listener = b.listen({ port: 9000 });
    const served = (async () => {
      const handlers: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        const conn = await listener.accept();
        handlers.push((async () => {
          try {
            await conn.write(await readAll(conn));
          } finally {
            conn.close();
          }
        })());
      }
      await Promise.all(handlers);
    })();
    try {
      const replies = await withTimeout(
        Promise.all(Array.from({ length: count }, async (_, i) => {
          const conn = await a.connect({ hostname: b.virtualIp, port: 9000 });
          try {
            await conn.write(utf8(`message number ${i} ${"x".repeat(i)}`));
            await conn.closeWrite();
            return text(await readAll(conn));
          } finally {
            conn.close();
          }
        })),
        15_000,
        "100 echoes",
      );
      for (let i = 0; i < count; i++) {
        assert.equal(replies[i], `message number ${i} ${"x".repeat(i)}`);
      }
      await withTimeout(served, STEP_MS, "echo server");
    } finally {
      listener.close();
    }
  });
});

Deno.test("closing a connection on either side delivers every byte, then end of stream", async (t) => {
  const data = pseudoRandomBytes(700 * 1024, 7);
  for (const closer of ["connecting", "accepting"] as const) {
    await t.step(`the ${closer} side closes after writing`, async () => {
      await withPair(async ({ a, b }) => {
        const { dialed, accepted, close } = await openConn(a, b, 21);
        try {
          const [writer, reader] = closer === "connecting"
            ? [dialed, accepted]
            : [accepted, dialed];
          const received = readAll(reader);
          await withTimeout(writer.write(data), STEP_MS, "write 700 KiB");
          writer.close();
          const got = await withTimeout(received, STEP_MS, "read until end of stream");
          assert.equal(got.length, data.length);
          assert.equal(await sha256hex(got), await sha256hex(data));
          assert.equal(await reader.read(new Uint8Array(16)), null, "reads stay at end");
        } finally {
          close();
        }
      });
    });
  }
});

Deno.test("closeWrite half-closes: the peer reads end of stream and can still reply", async () => {
  await withPair(async ({ a, b }) => {
    const { dialed, accepted, close } = await openConn(a, b, 22);
    try {
      await dialed.write(utf8("question"));
      await dialed.closeWrite();
      assert.equal(text(await withTimeout(readAll(accepted), STEP_MS, "question")), "question");
      await accepted.write(utf8("answer after your end of stream"));
      await accepted.closeWrite();
      assert.equal(
        text(await withTimeout(readAll(dialed), STEP_MS, "answer")),
        "answer after your end of stream",
      );
      await assert.rejects(dialed.write(utf8("more")), BrokenPipe);
    } finally {
      close();
    }
  });
});

Deno.test("a client can connect to its own listener", async () => {
  await withPair(async ({ a }) => {
    const { dialed, accepted, close } = await openConn(a, a, 23);
    try {
      assert.notEqual((dialed as VirtualConnImpl).id, (accepted as VirtualConnImpl).id);
      assert.equal(dialed.remoteAddr.hostname, a.virtualIp);
      assert.equal(accepted.remoteAddr.hostname, a.virtualIp);
      await dialed.write(utf8("to myself"));
      await dialed.closeWrite();
      assert.equal(text(await withTimeout(readAll(accepted), STEP_MS, "self data")), "to myself");
      await accepted.write(utf8("from myself"));
      await accepted.closeWrite();
      assert.equal(text(await withTimeout(readAll(dialed), STEP_MS, "self reply")), "from myself");
    } finally {
      close();
    }
  });
});

Deno.test("a client that drops mid-transfer ends its peer's reads and fails its peer's writes", async () => {
  await withPair(async ({ a, b }) => {
    const { dialed, accepted, close } = await openConn(a, b, 24);
    try {
      // a streams far more than one window; b reads a little, then a goes away.
      const writing = dialed.write(pseudoRandomBytes(8 * 1024 * 1024, 3));
      const writeOutcome = writing.then(() => null, (error: unknown) => error);
      await withTimeout(readExactly(accepted, 1024), STEP_MS, "the first KiB");
      await withTimeout(a.close(), STEP_MS, "a.close()");
      const rest = await withTimeout(readAll(accepted), STEP_MS, "b's reads to end");
      assert.ok(rest.length < 8 * 1024 * 1024 - 1024, "the stream was cut short");
      await assert.rejects(
        withTimeout(accepted.write(utf8("anyone there?")), STEP_MS, "write to a gone peer"),
        (error: unknown) => {
          assert.ok(
            error instanceof ConnectionReset || error instanceof BrokenPipe,
            `expected ConnectionReset or BrokenPipe, got ${error}`,
          );
          return true;
        },
      );
      assert.ok(await writeOutcome instanceof Error, "a's own pending write failed");
    } finally {
      close();
    }
  });
});

Deno.test("status reports a peer offline after it disconnects", async () => {
  await withPair(async ({ a, b }) => {
    const target = { hostname: b.virtualIp, port: 1 };
    assert.deepEqual(await withTimeout(a.status(target), STEP_MS, "before"), {
      online: true,
      listening: false,
    });
    await b.close();
    assert.deepEqual(await withTimeout(a.status(target), STEP_MS, "after"), {
      online: false,
      listening: false,
    });
  });
});

Deno.test("localAddr and remoteAddr mirror each other on both ends", async () => {
  await withPair(async ({ a, b }) => {
    const { dialed, accepted, close } = await openConn(a, b, 4242);
    try {
      assert.equal(dialed.localAddr.transport, "tcp");
      assert.equal(dialed.localAddr.hostname, a.virtualIp);
      assert.ok(dialed.localAddr.port >= 49152 && dialed.localAddr.port <= 65535);
      assert.deepEqual(dialed.remoteAddr, {
        transport: "tcp",
        hostname: b.virtualIp,
        port: 4242,
      });
      assert.deepEqual(accepted.localAddr, {
        transport: "tcp",
        hostname: b.virtualIp,
        port: 4242,
      });
      assert.deepEqual(accepted.remoteAddr, dialed.localAddr);
      assert.equal((dialed as VirtualConnImpl).outbound, true);
      assert.equal((accepted as VirtualConnImpl).outbound, false);
    } finally {
      close();
    }
  });
});

Deno.test("1 MiB piped into writable arrives byte-exact from the peer's readable", async () => {
  await withPair(async ({ a, b }) => {
    const { dialed, accepted, close } = await openConn(a, b, 25);
    try {
      const chunks = Array.from({ length: 16 }, (_, i) => pseudoRandomBytes(64 * 1024, i + 1));
      const sent = concatBytes(chunks);
      assert.equal(sent.length, 1024 * 1024);
      const received = readStreamAll(accepted.readable);
      await withTimeout(
        ReadableStream.from(chunks).pipeTo(dialed.writable),
        STEP_MS,
        "pipe 1 MiB",
      );
      const got = await withTimeout(received, STEP_MS, "readable to end");
      assert.equal(got.length, sent.length);
      assert.equal(await sha256hex(got), await sha256hex(sent));
    } finally {
      close();
    }
  });
});

Deno.test("ping measures a round trip to an online client and fails fast for an offline one", async () => {
  await withPair(async ({ a, b }) => {
    const rtt = await withTimeout(a.ping({ hostname: b.virtualIp }), STEP_MS, "ping b");
    assert.ok(rtt >= 0 && rtt < STEP_MS, `round trip ${rtt} ms`);
    // A client may ping itself: the relay routes the echo back to it.
    assert.ok((await withTimeout(a.ping({ hostname: a.virtualIp }), STEP_MS, "ping self")) >= 0);
    await assert.rejects(a.ping({ hostname: "1.2.3.4" }), HostUnreachable);
    await assert.rejects(a.ping({ hostname: "1.2.3" }), TypeError);
    await b.close();
    await assert.rejects(a.ping({ hostname: b.virtualIp }), HostUnreachable);
  });
});
