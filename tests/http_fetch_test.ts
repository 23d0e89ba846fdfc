/**
 * `net.fetch`: the fetch shape over virtual connections, against a real
 * relay and two real clients; the server side is `net.serve` or a raw
 * responder written by hand on a virtual listener (to count connections
 * and send what net.serve never would): keep-alive reuse and its bounds,
 * the library's errors, URLs it refuses, redirects, abort, streaming both
 * ways, and close().
 */

import assert from "node:assert/strict";
import {
  Closed,
  ConnectionRefused,
  ConnectionReset,
  HostUnreachable,
  type VirtualServeHandler,
} from "../mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { utf8 } from "./_helpers/bytes.ts";
import { deferred, type HttpPair, withHttpPair } from "./_helpers/http_pair.ts";
import { ok, startRawHttpServer } from "./_helpers/http_raw.ts";

/** An address no client is ever assigned (TEST-NET-1 is outside the default pool). */
const NOBODY = "192.0.2.1";

/** Fetches `path` and returns `status body`. */
async function get(pair: HttpPair, port: number, path = "/"): Promise<string> {
  const response = await withTimeout(pair.client.fetch(pair.url(port, path)), STEP_MS, path);
  return `${response.status} ${await response.text()}`;
}

Deno.test("fetch: two fetches one after the other share one virtual connection", async () => {
  await withHttpPair(async (pair) => {
    using raw = startRawHttpServer(pair.server, 80, (_head, index) => ok(`answer ${index}`));
    assert.equal(await get(pair, 80), "200 answer 0");
    assert.equal(await get(pair, 80), "200 answer 1");
    assert.equal(raw.accepted, 1);

    const ports: number[] = [];
    await using _server = await pair.server.serve({ port: 81 }, (_request, info) => {
      ports.push(info.remoteAddr.port);
      return new Response("ok");
    });
    assert.equal(await get(pair, 81), "200 ok");
    assert.equal(await get(pair, 81), "200 ok");
    assert.equal(ports.length, 2);
    assert.equal(ports[0], ports[1], "the second request came on the first one's connection");
  });
});

Deno.test("fetch: idle connections are capped at 8 per origin and reused", async () => {
  await withHttpPair(async (pair) => {
    const release = deferred();
    let waiting = 0;
    const tenWaiting = deferred();
    await using _server = await pair.server.serve({ port: 80 }, async () => {
      if (++waiting === 10) tenWaiting.resolve();
      await release.promise;
      return new Response("ok");
    });
    using raw = startRawHttpServer(pair.server, 81, () => ok("raw"));
    // Ten at once on the raw responder: ten connections, of which two are closed once idle.
    const tenRaw = await Promise.all(Array.from({ length: 10 }, () => get(pair, 81)));
    assert.deepEqual(tenRaw, Array(10).fill("200 raw"));
    assert.equal(raw.accepted, 10);
    await withTimeout(raw.endedReach(2), STEP_MS, "two connections beyond the cap to close");
    assert.equal(raw.ended, 2);
    // Eight at once again: all on the idle connections.
    const eightRaw = await Promise.all(Array.from({ length: 8 }, () => get(pair, 81)));
    assert.deepEqual(eightRaw, Array(8).fill("200 raw"));
    assert.equal(raw.accepted, 10);

    // Another origin has its own idle connections.
    const busy = Array.from({ length: 10 }, () => get(pair, 80));
    await withTimeout(tenWaiting.promise, STEP_MS, "ten requests in the handler at once");
    release.resolve();
    assert.deepEqual(await Promise.all(busy), Array(10).fill("200 ok"));
  });
});

Deno.test("fetch: an idle connection is closed after the server's keep-alive time-out", async () => {
  await withHttpPair(async (pair) => {
    // timeout=2 makes the client keep the connection 1 s (a second under what the server says).
    using raw = startRawHttpServer(pair.server, 80, () => ok("short", "Keep-Alive: timeout=2\r\n"));
    assert.equal(await get(pair, 80), "200 short");
    const start = performance.now();
    await withTimeout(raw.endedReach(1), STEP_MS, "the idle connection to close");
    assert.ok(performance.now() - start >= 900, "closed before its idle time-out");
  });
});

Deno.test("fetch: a request that finds its reused connection closed goes again on a new one; a streamed body takes a new one", async () => {
  await withHttpPair(async (pair) => {
    // The server answers the first request on a connection, then closes it at the second without
    // an answer: what a keep-alive time-out on the server side looks like to the client.
    using raw = startRawHttpServer(
      pair.server,
      80,
      (_head, index) => index === 0 ? ok("first") : { sendAndClose: "" },
    );
    assert.equal(await get(pair, 80), "200 first");
    assert.equal(await get(pair, 80), "200 first");
    assert.equal(raw.accepted, 2);
    const whole = await pair.client.fetch(pair.url(80), {
      method: "POST",
      body: new Uint8Array(1024 * 1024),
    });
    assert.equal(`${whole.status} ${await whole.text()}`, "200 first");
    assert.equal(raw.accepted, 3);
    // A streamed body never goes on an idle connection: it gets its own, so nothing to retry.
    const streamed = await pair.client.fetch(pair.url(80), {
      method: "POST",
      body: ReadableStream.from([new Uint8Array(1024 * 1024)]),
      headers: { "content-length": String(1024 * 1024) },
    });
    assert.equal(`${streamed.status} ${await streamed.text()}`, "200 first");
    assert.equal(raw.accepted, 4);
  });
});

Deno.test("fetch: an offline virtual IP, a closed port, a server that hangs up are the library's errors", async () => {
  await withHttpPair(async (pair) => {
    await assert.rejects(pair.client.fetch(`http://${NOBODY}/`), HostUnreachable);
    await assert.rejects(pair.client.fetch(pair.url(80)), ConnectionRefused);
    using _raw = startRawHttpServer(pair.server, 81, () => ({ sendAndClose: "" }));
    await assert.rejects(pair.client.fetch(pair.url(81)), ConnectionReset);
    using _garbage = startRawHttpServer(pair.server, 82, () => ({
      sendAndClose: "NOT HTTP\r\n\r\n",
    }));
    await assert.rejects(pair.client.fetch(pair.url(82)), TypeError);
  });
});

Deno.test("fetch: only http:// to a virtual IP, with a TypeError that says why", async () => {
  await withHttpPair(async (pair) => {
    const vip = pair.server.virtualIp;
    for (
      const [url, why] of [
        [`https://${vip}/`, /http: only/],
        [`ws://${vip}/`, /http: only/],
        ["http://example.com/", /not a virtual IP/],
        ["http://[::1]/", /not a virtual IP/],
        ["/relative", /Invalid URL|URL/],
      ] as const
    ) {
      await assert.rejects(pair.client.fetch(url), (error: unknown) => {
        assert.ok(error instanceof TypeError, `${url}: ${error}`);
        assert.match(error.message, why);
        return true;
      });
    }
  });
});

Deno.test("fetch: redirects are followed within the virtual network, as fetch follows them", async () => {
  await withHttpPair(async (pair) => {
    const base = pair.url(80);
    const handler: VirtualServeHandler = async (request) => {
      const { pathname } = new URL(request.url);
      const body = request.body === null ? "" : await request.text();
      switch (pathname) {
        case "/see-other":
          return new Response(null, { status: 303, headers: { location: "/target" } });
        case "/found":
          return Response.redirect(`${base}target`, 302);
        case "/temporary":
          return new Response(null, { status: 307, headers: { location: "/target" } });
        case "/away":
          return Response.redirect("http://example.com/", 302);
        case "/tls":
          return Response.redirect(`https://${pair.server.virtualIp}/`, 302);
        case "/loop":
          return new Response(null, { status: 302, headers: { location: "/loop" } });
        default:
          return new Response(`${request.method} ${pathname} ${body}`);
      }
    };
    await using _server = await pair.server.serve({ port: 80 }, handler);
    const fetch = pair.client.fetch.bind(pair.client);

    const found = await fetch(`${base}found`, { method: "POST", body: "data" });
    assert.equal(await found.text(), "GET /target ");
    assert.equal(found.url, new URL("target", base).href);
    assert.equal(found.redirected, true);
    const seeOther = await fetch(`${base}see-other`, { method: "PUT", body: "data" });
    assert.equal(await seeOther.text(), "GET /target ");
    const temporary = await fetch(`${base}temporary`, { method: "PUT", body: "data" });
    assert.equal(await temporary.text(), "PUT /target data");
    const direct = await fetch(`${base}plain`);
    assert.equal(direct.url, new URL("plain", base).href);
    assert.equal(direct.redirected, false);
    await direct.body?.cancel();

    await assert.rejects(
      fetch(`${base}temporary`, { method: "PUT", body: ReadableStream.from([utf8("x")]) }),
      /cannot be sent twice/,
    );
    await assert.rejects(fetch(`${base}away`), /not a virtual IP/);
    await assert.rejects(fetch(`${base}tls`), /http: only/);
    await assert.rejects(fetch(`${base}loop`), /more than 20 redirects/);
    await assert.rejects(fetch(`${base}found`, { redirect: "error" }), TypeError);
    const manual = await fetch(`${base}found`, { redirect: "manual" });
    assert.equal(manual.status, 302);
    assert.equal(manual.headers.get("location"), new URL("target", base).href);
    await manual.body?.cancel();
  });
});

Deno.test("fetch: an aborted signal rejects with its reason, before connecting or while waiting", async () => {
  await withHttpPair(async (pair) => {
    const entered = deferred();
    const release = deferred();
    const aborted = deferred<boolean>();
    await using _server = await pair.server.serve({ port: 80 }, async (request) => {
      entered.resolve();
      request.signal.addEventListener("abort", () => aborted.resolve(true));
      await release.promise;
      return new Response("late");
    });
    const reason = new Error("not any more");
    await assert.rejects(
      pair.client.fetch(pair.url(80), { signal: AbortSignal.abort(reason) }),
      (error) => error === reason,
    );
    const abort = new AbortController();
    const waiting = pair.client.fetch(pair.url(80), { signal: abort.signal });
    await withTimeout(entered.promise, STEP_MS, "the handler to start");
    abort.abort();
    await assert.rejects(waiting, { name: "AbortError" });
    assert.equal(await withTimeout(aborted.promise, STEP_MS, "the server to see it"), true);
    release.resolve();
  });
});

Deno.test("fetch: bodies stream both ways while the other side is still at work", async () => {
  await withHttpPair(async (pair) => {
    const gotFirst = deferred<string>();
    const finishUpload = deferred();
    const finishDownload = deferred();
    await using _server = await pair.server.serve({ port: 80 }, async (request) => {
      if (request.method === "POST") {
        const reader = request.body!.getReader();
        const first = await reader.read();
        gotFirst.resolve(new TextDecoder().decode(first.value));
        let rest = "";
        for (let i = 0; i < 100; i++) {
          const { value, done } = await reader.read();
          if (done) break;
          rest += new TextDecoder().decode(value);
        }
        return new Response(rest);
      }
      return new Response(
        new ReadableStream({
          async start(controller): Promise<void> {
            controller.enqueue(utf8("first "));
            await finishDownload.promise;
            controller.enqueue(utf8("last"));
            controller.close();
          },
        }),
      );
    });

    // Upload: the handler reads the first chunk while the body is still open.
    const upload = new ReadableStream<Uint8Array>({
      async start(controller): Promise<void> {
        controller.enqueue(utf8("early"));
        await finishUpload.promise;
        controller.enqueue(utf8("late"));
        controller.close();
      },
    });
    const uploading = pair.client.fetch(pair.url(80), { method: "POST", body: upload });
    assert.equal(await withTimeout(gotFirst.promise, STEP_MS, "the first chunk up"), "early");
    finishUpload.resolve();
    assert.equal(await (await uploading).text(), "late");

    // Download: the first chunk arrives while the handler still holds the last one.
    const response = await pair.client.fetch(pair.url(80));
    const reader = response.body!.getReader();
    const first = await withTimeout(reader.read(), STEP_MS, "the first chunk down");
    assert.equal(new TextDecoder().decode(first.value), "first ");
    finishDownload.resolve();
    const last = await reader.read();
    assert.equal(new TextDecoder().decode(last.value), "last");
    assert.equal((await reader.read()).done, true);
  });
});

Deno.test("fetch: a Request as input keeps its method, headers and body", async () => {
  await withHttpPair(async (pair) => {
    await using _server = await pair.server.serve(
      { port: 80 },
      async (request, info) =>
        new Response(
          `${request.method} ${request.headers.get("x-from")} ${await request
            .text()} ${info.remoteAddr.hostname}`,
        ),
    );
    const request = new Request(pair.url(80), {
      method: "PUT",
      headers: { "x-from": "request" },
      body: "payload",
    });
    const response = await pair.client.fetch(request);
    assert.equal(await response.text(), `PUT request payload ${pair.client.virtualIp}`);
  });
});

Deno.test("fetch: close() closes idle and busy connections; later fetches reject with Closed", async () => {
  await withHttpPair(async (pair) => {
    await using _server = await pair.server.serve(
      { port: 80 },
      (request) =>
        new URL(request.url).pathname === "/stream"
          ? new Response(new ReadableStream({ pull: (c) => c.enqueue(utf8("more ")) }))
          : new Response("ok"),
    );
    assert.equal(await get(pair, 80), "200 ok"); // leaves an idle connection
    const streaming = await pair.client.fetch(pair.url(80, "/stream"));
    const reader = streaming.body!.getReader();
    assert.ok(!(await reader.read()).done);
    await pair.client.close();
    await assert.rejects(
      (async () => {
        for (let i = 0; i < 10_000; i++) if ((await reader.read()).done) return;
      })(),
      ConnectionReset,
    );
    await assert.rejects(pair.client.fetch(pair.url(80)), Closed);
  });
});
