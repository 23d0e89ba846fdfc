/**
 * `net.serve`: HTTP/1.1 on a virtual port with `Deno.serve`'s handler shape,
 * against a real relay and two real clients (one serves, one fetches with
 * `net.fetch` or speaks HTTP by hand over a virtual connection): bodies of
 * 50 MiB both ways byte for byte with backpressure, concurrency, a handler
 * that throws, clients that go away mid-body, graceful shutdown, and bad
 * input on the wire.
 */

import assert from "node:assert/strict";
import {
  AddrInUse,
  type AlphaNetClient,
  ConnectionRefused,
  ConnectionReset,
  type VirtualHttpServer,
  type VirtualServeHandler,
} from "../mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { text, utf8 } from "./_helpers/bytes.ts";
import {
  deferred,
  hashPattern,
  hashStream,
  type HttpPair,
  patternStream,
  withHttpPair,
} from "./_helpers/http_pair.ts";

const MiB = 1024 * 1024;
/** A 50 MiB body takes well under a second here; the bound is for a slow machine. */
const BULK_MS = 60_000;
/**
 * How far a body may run ahead of a reader that does not read: the
 * connection's window (at most 1 MiB) plus node's and the streams' buffers.
 */
const AHEAD_LIMIT_BYTES = 4 * MiB;

// Compile-time only: a handler and a server in Deno's own types fit net.serve's.
async function _typesOnly(
  net: AlphaNetClient,
  denoHandler: Deno.ServeHandler<Deno.NetAddr>,
): Promise<void> {
  const server: Deno.HttpServer<Deno.NetAddr> = await net.serve({ port: 80 }, denoHandler);
  const handler: VirtualServeHandler = denoHandler;
  await using _server: VirtualHttpServer = await net.serve({ port: 81 }, handler);
  await server.shutdown();
}

/**
 * Waits until `count()` stops growing while relay round trips go by (a
 * bounded number of pings), and returns it: how far a producer got once
 * backpressure stopped it.
 */
async function settled(net: AlphaNetClient, count: () => number): Promise<number> {
  let last = -1;
  let steady = 0;
  for (let pings = 0; pings < 500 && steady < 10; pings++) {
    await net.ping({ hostname: net.virtualIp });
    steady = count() === last ? steady + 1 : 0;
    last = count();
  }
  return last;
}

/** Sends `request` as raw bytes on a new virtual connection and reads until the server closes. */
async function rawExchange(pair: HttpPair, port: number, request: string): Promise<string> {
  using conn = await pair.client.connect({ hostname: pair.server.virtualIp, port });
  await conn.write(utf8(request));
  return await withTimeout(new Response(conn.readable).text(), STEP_MS, "the raw answer");
}

Deno.test("serve: a 50 MiB request body streams to the handler byte for byte, held back while unread", async () => {
  await withHttpPair(async (pair) => {
    const total = 50 * MiB;
    const entered = deferred();
    const read = deferred();
    await using _server = await pair.server.serve({ port: 80 }, async (request) => {
      entered.resolve();
      await read.promise;
      return Response.json(await hashStream(request.body!));
    });
    let pulled = 0;
    const fetching = pair.client.fetch(pair.url(80, "/upload"), {
      method: "PUT",
      body: patternStream(total, 1, (offset) => pulled = offset),
    });
    await withTimeout(entered.promise, STEP_MS, "the handler to get the request");
    const ahead = await settled(pair.client, () => pulled);
    assert.ok(ahead < AHEAD_LIMIT_BYTES, `the upload ran ${ahead} bytes ahead of the handler`);
    read.resolve();
    const response = await withTimeout(fetching, BULK_MS, "the upload's answer");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), hashPattern(total, 1));
  });
});

Deno.test("serve: a 50 MiB response body streams to fetch byte for byte, held back while unread", async () => {
  await withHttpPair(async (pair) => {
    const total = 50 * MiB;
    let pulled = 0;
    await using _server = await pair.server.serve(
      { port: 80 },
      () => new Response(patternStream(total, 2, (offset) => pulled = offset)),
    );
    const response = await withTimeout(pair.client.fetch(pair.url(80)), STEP_MS, "fetch");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("transfer-encoding"), "chunked");
    const ahead = await settled(pair.client, () => pulled);
    assert.ok(ahead < AHEAD_LIMIT_BYTES, `the download ran ${ahead} bytes ahead of the reader`);
    const got = await withTimeout(hashStream(response.body!), BULK_MS, "the download");
    assert.deepEqual(got, hashPattern(total, 2));
  });
});

Deno.test("serve: a body echoed back streams both ways at once", async () => {
  await withHttpPair(async (pair) => {
    const total = 16 * MiB;
    await using _server = await pair.server.serve(
      { port: 80 },
      (request) => new Response(request.body),
    );
    const response = await withTimeout(
      pair.client.fetch(pair.url(80), { method: "POST", body: patternStream(total, 3) }),
      BULK_MS,
      "the echo's head",
    );
    const got = await withTimeout(hashStream(response.body!), BULK_MS, "the echo");
    assert.deepEqual(got, hashPattern(total, 3));
  });
});

Deno.test("serve: 100 concurrent requests are all answered, each with its own answer", async () => {
  await withHttpPair(async (pair) => {
    await using _server = await pair.server.serve({ port: 80 }, async (request) => {
      const { searchParams } = new URL(request.url);
      return new Response(`${searchParams.get("n")}:${await request.text()}`);
    });
    const answers = await withTimeout(
      Promise.all(Array.from({ length: 100 }, async (_, n) => {
        const response = await pair.client.fetch(pair.url(80, `/?n=${n}`), {
          method: "POST",
          body: `body ${n}`,
        });
        return `${response.status} ${await response.text()}`;
      })),
      BULK_MS,
      "100 answers",
    );
    assert.deepEqual(answers, Array.from({ length: 100 }, (_, n) => `200 ${n}:body ${n}`));
  });
});

Deno.test("serve: a handler that throws gets onError's answer (500 by default) and the server serves on", async () => {
  await withHttpPair(async (pair) => {
    const errors: unknown[] = [];
    const handler: VirtualServeHandler = (request) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/throw") throw new Error("boom");
      if (pathname === "/reject") return Promise.reject(new Error("async boom"));
      if (pathname === "/nothing") return undefined as unknown as Response;
      return new Response("fine");
    };
    await using _custom = await pair.server.serve({
      port: 80,
      onError: (error) => {
        errors.push(error);
        return new Response(`sorry: ${(error as Error).message}`, { status: 503 });
      },
    }, handler);
    await using _failing = await pair.server.serve({
      port: 81,
      onError: () => {
        throw new Error("onError fails too");
      },
    }, handler);

    for (const path of ["/throw", "/reject"]) {
      const response = await pair.client.fetch(pair.url(80, path));
      assert.equal(response.status, 503);
      assert.match(await response.text(), /^sorry: (async )?boom$/);
      const next = await pair.client.fetch(pair.url(80, "/ok"));
      assert.equal(`${next.status} ${await next.text()}`, "200 fine");
    }
    const nothing = await pair.client.fetch(pair.url(80, "/nothing"));
    assert.equal(nothing.status, 503);
    await nothing.body?.cancel();
    assert.equal(errors.length, 3);
    assert.ok(errors[2] instanceof TypeError);

    const plain = await pair.client.fetch(pair.url(81, "/throw"));
    assert.equal(`${plain.status} ${await plain.text()}`, "500 Internal Server Error");
    const after = await pair.client.fetch(pair.url(81, "/ok"));
    assert.equal(`${after.status} ${await after.text()}`, "200 fine");
  });
});

Deno.test("serve: a client that aborts mid-upload errors the request body and aborts request.signal; the server serves on", async () => {
  await withHttpPair(async (pair) => {
    const seen = deferred<{ error: unknown; aborted: boolean }>();
    const completed = deferred();
    const firstChunk = deferred();
    await using _server = await pair.server.serve({ port: 80 }, async (request, info) => {
      if (request.method === "GET") return new Response("still here");
      void info.completed.then(completed.resolve);
      const reader = request.body!.getReader();
      try {
        await reader.read();
        firstChunk.resolve();
        for (let i = 0; i < 10_000; i++) if ((await reader.read()).done) break;
        seen.resolve({ error: null, aborted: request.signal.aborted });
      } catch (error) {
        seen.resolve({ error, aborted: request.signal.aborted });
      }
      return new Response("unreachable");
    });
    const abort = new AbortController();
    const upload = pair.client.fetch(pair.url(80), {
      method: "POST",
      body: patternStream(100 * MiB, 4),
      signal: abort.signal,
    });
    await withTimeout(firstChunk.promise, STEP_MS, "the handler to read the first chunk");
    abort.abort();
    await assert.rejects(upload, { name: "AbortError" });
    const { error, aborted } = await withTimeout(seen.promise, STEP_MS, "the handler's read");
    assert.ok(error instanceof ConnectionReset, `the body ended with ${error}`);
    assert.ok(aborted, "request.signal aborted");
    await withTimeout(completed.promise, STEP_MS, "info.completed");
    const next = await pair.client.fetch(pair.url(80));
    assert.equal(await next.text(), "still here");
  });
});

Deno.test("serve: a client that goes away mid-download cancels the response body; the server serves on", async () => {
  await withHttpPair(async (pair) => {
    const cancelled = deferred<unknown>();
    const completed = deferred<boolean>();
    await using _server = await pair.server.serve({ port: 80 }, (request, info) => {
      if (new URL(request.url).pathname === "/small") return new Response("small");
      void info.completed.then(() => completed.resolve(request.signal.aborted));
      let sent = 0;
      return new Response(
        new ReadableStream({
          pull(controller): void {
            controller.enqueue(new Uint8Array(64 * 1024));
            sent++;
          },
          cancel(reason): void {
            cancelled.resolve(reason);
          },
        }),
      );
    });
    const abort = new AbortController();
    const response = await pair.client.fetch(pair.url(80), { signal: abort.signal });
    const reader = response.body!.getReader();
    assert.ok(!(await reader.read()).done);
    abort.abort();
    await assert.rejects(reader.read(), { name: "AbortError" });
    assert.ok(
      (await withTimeout(cancelled.promise, STEP_MS, "the body's cancel")) instanceof
        ConnectionReset,
    );
    assert.equal(await withTimeout(completed.promise, STEP_MS, "info.completed"), true);
    const next = await pair.client.fetch(pair.url(80, "/small"));
    assert.equal(await next.text(), "small");
  });
});

Deno.test("serve: shutdown() stops accepting, waits for the request in flight, then finishes", async () => {
  await withHttpPair(async (pair) => {
    const entered = deferred();
    const release = deferred();
    const server = await pair.server.serve({ port: 80 }, async () => {
      entered.resolve();
      await release.promise;
      return new Response("finished");
    });
    const inFlight = pair.client.fetch(pair.url(80, "/slow"));
    await withTimeout(entered.promise, STEP_MS, "the handler to start");
    let finished = false;
    void server.finished.then(() => finished = true);
    const shutdown = server.shutdown();

    assert.deepEqual(await pair.client.status({ hostname: pair.server.virtualIp, port: 80 }), {
      online: true,
      listening: false,
    });
    await assert.rejects(pair.client.fetch(pair.url(80, "/new")), ConnectionRefused);
    assert.equal(finished, false, "finished before the request in flight was answered");

    release.resolve();
    const response = await withTimeout(inFlight, STEP_MS, "the answer in flight");
    assert.equal(await response.text(), "finished");
    await withTimeout(shutdown, STEP_MS, "shutdown()");
    await withTimeout(server.finished, STEP_MS, "finished");
    assert.equal(finished, true);
  });
});

Deno.test("serve: shutdown() closes idle keep-alive connections at once, and frees the port", async () => {
  await withHttpPair(async (pair) => {
    const server = await pair.server.serve({ port: 80 }, () => new Response("ok"));
    const first = await pair.client.fetch(pair.url(80));
    assert.equal(first.headers.get("connection"), "keep-alive");
    assert.equal(await first.text(), "ok");
    // The fetching client keeps that connection idle for reuse; shutdown must not wait for it.
    await withTimeout(server.shutdown(), STEP_MS, "shutdown() with an idle connection");
    using listener = pair.server.listen({ port: 80 });
    assert.equal(listener.addr.port, 80);
  });
});

Deno.test("serve: the signal option shuts the server down, and await using does too", async () => {
  await withHttpPair(async (pair) => {
    const stop = new AbortController();
    const listened: string[] = [];
    const server = await pair.server.serve({
      port: 0,
      hostname: pair.server.virtualIp,
      signal: stop.signal,
      onListen: (addr) => listened.push(`${addr.hostname}:${addr.port}`),
    }, () => new Response("ok"));
    assert.deepEqual(listened, [`${pair.server.virtualIp}:${server.addr.port}`]);
    stop.abort();
    await withTimeout(server.finished, STEP_MS, "finished after abort");

    let port: number;
    {
      await using scoped = await pair.server.serve(
        { port: 0, hostname: "0.0.0.0" },
        () => new Response("ok"),
      );
      port = scoped.addr.port;
    }
    assert.deepEqual(await pair.client.status({ hostname: pair.server.virtualIp, port }), {
      online: true,
      listening: false,
    });
  });
});

Deno.test("serve: info.remoteAddr is the fetching client's virtual address; the request carries URL, method, headers", async () => {
  await withHttpPair(async (pair) => {
    await using _server = await pair.server.serve(
      { port: 8080 },
      async (request, info) =>
        Response.json({
          remote: info.remoteAddr,
          url: request.url,
          method: request.method,
          custom: request.headers.get("x-custom"),
          body: await request.text(),
        }),
    );
    const response = await pair.client.fetch(pair.url(8080, "/path?q=1"), {
      method: "PATCH",
      headers: { "x-custom": "yes" },
      body: "data",
    });
    const seen = await response.json();
    assert.equal(seen.remote.hostname, pair.client.virtualIp);
    assert.equal(seen.remote.transport, "tcp");
    assert.ok(seen.remote.port > 0);
    assert.deepEqual(
      { url: seen.url, method: seen.method, custom: seen.custom, body: seen.body },
      {
        url: `http://${pair.server.virtualIp}:8080/path?q=1`,
        method: "PATCH",
        custom: "yes",
        body: "data",
      },
    );
  });
});

Deno.test("serve: responses keep status, headers and cookies; HEAD and 204 have no body; a whole body has a length", async () => {
  await withHttpPair(async (pair) => {
    await using _server = await pair.server.serve({ port: 80 }, (request) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/empty") return new Response(null, { status: 204 });
      const headers = new Headers({ "x-kind": "test" });
      headers.append("set-cookie", "a=1");
      headers.append("set-cookie", "b=2");
      return new Response("created", { status: 201, statusText: "Made It", headers });
    });
    const response = await pair.client.fetch(pair.url(80));
    assert.equal(response.status, 201);
    assert.equal(response.statusText, "Made It");
    assert.equal(response.headers.get("x-kind"), "test");
    assert.deepEqual(response.headers.getSetCookie(), ["a=1", "b=2"]);
    assert.equal(response.headers.get("content-length"), "7");
    assert.equal(await response.text(), "created");

    const head = await pair.client.fetch(pair.url(80), { method: "HEAD" });
    assert.equal(head.status, 201);
    assert.equal(head.body, null);
    const empty = await pair.client.fetch(pair.url(80, "/empty"));
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
  });
});

Deno.test("serve: bad requests on the wire get 400 and close only their connection", async () => {
  await withHttpPair(async (pair) => {
    await using _server = await pair.server.serve({ port: 80 }, () => new Response("ok"));
    for (
      const bad of [
        "NOT HTTP AT ALL\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n", // HTTP/1.1 without Host
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", // a Host that is a path
        "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", // a method fetch's Request forbids
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      ]
    ) {
      const answer = await rawExchange(pair, 80, bad);
      assert.match(answer, /^HTTP\/1\.1 400 /, `${JSON.stringify(bad)} got ${answer}`);
    }
    const good = await rawExchange(
      pair,
      80,
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(good, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/);
  });
});

Deno.test("serve: closing the client stops its servers at once, requests in flight included", async () => {
  await withHttpPair(async (pair) => {
    const entered = deferred();
    const server = await pair.server.serve({ port: 80 }, (request) => {
      entered.resolve();
      return new Response(
        new ReadableStream({
          pull: (controller) => controller.enqueue(utf8("forever ")),
        }),
        { headers: { "x-request": request.url } },
      );
    });
    const response = await pair.client.fetch(pair.url(80));
    await entered.promise;
    await pair.server.close();
    await withTimeout(server.finished, STEP_MS, "finished after close()");
    await assert.rejects(response.text(), ConnectionReset);
    await assert.rejects(pair.server.serve({ port: 81 }, () => new Response("")), {
      name: "Closed",
    });
  });
});

Deno.test("serve: a taken port is AddrInUse, another host's address a TypeError, and neither listens", async () => {
  await withHttpPair(async (pair) => {
    using _taken = pair.server.listen({ port: 80 });
    await assert.rejects(pair.server.serve({ port: 80 }, () => new Response("")), AddrInUse);
    await assert.rejects(
      pair.server.serve({ port: 81, hostname: pair.client.virtualIp }, () => new Response("")),
      TypeError,
    );
    await assert.rejects(pair.server.serve({ port: 70000 }, () => new Response("")), RangeError);
    assert.deepEqual(await pair.client.status({ hostname: pair.server.virtualIp, port: 81 }), {
      online: true,
      listening: false,
    });
    assert.equal(text(utf8("ok")), "ok");
  });
});
