/**
 * The WebSocket carrier (client/websocket_dial.ts) against a real WebSocket
 * endpoint on 127.0.0.1: a test-local Deno.serve + Deno.upgradeWebSocket
 * that speaks raw bytes (echo, chosen close codes, its own subprotocol
 * answer). Reads are a byte stream whatever the message boundaries; writes
 * are one message each and wait below the high-water mark; every opening
 * failure is its own clear error.
 */

import assert from "node:assert/strict";
import { Closed, ConnectionRefused, ConnectionReset, ProtocolError, TimedOut } from "../../mod.ts";
import {
  dialWebSocket,
  MAX_QUEUED_RECEIVE_BYTES,
  WEBSOCKET_HIGH_WATER_BYTES,
  WebSocketCarrier,
  WebSocketClosed,
} from "../../client/websocket_dial.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { concatBytes, pseudoRandomBytes } from "../_helpers/bytes.ts";
import { CERT_FILE, KEY_FILE, testCa } from "../_helpers/tls.ts";
import { Reason } from "../../protocol/reason.ts";
import { WEBSOCKET_SUBPROTOCOL } from "../../protocol/constants.ts";

/** A WebSocket endpoint on 127.0.0.1; `serve` runs for each accepted socket. */
interface Endpoint extends AsyncDisposable {
  readonly url: string;
  /** The server side of every socket accepted so far. */
  readonly sockets: WebSocket[];
}

interface EndpointOptions {
  /** The subprotocol to answer with: "alphanet" by default, null for none. */
  readonly protocol?: string | null;
  /** Serve TLS with the test certificate (wss://). */
  readonly tls?: boolean;
}

function startEndpoint(
  serve: (socket: WebSocket) => void,
  options: EndpointOptions = {},
): Endpoint {
  const sockets: WebSocket[] = [];
  const protocol = options.protocol === undefined ? WEBSOCKET_SUBPROTOCOL : options.protocol;
  const tls = options.tls
    ? { cert: Deno.readTextFileSync(CERT_FILE), key: Deno.readTextFileSync(KEY_FILE) }
    : {};
  const closed: Promise<void>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {}, ...tls }, (
    request,
  ) => {
    const { socket, response } = Deno.upgradeWebSocket(
      request,
      protocol === null ? {} : { protocol },
    );
    socket.binaryType = "arraybuffer";
    sockets.push(socket);
    closed.push(new Promise((resolve) => socket.addEventListener("close", () => resolve())));
    serve(socket);
    return response;
  });
  return {
    url: `${options.tls ? "wss" : "ws"}://127.0.0.1:${server.addr.port}/`,
    sockets,
    async [Symbol.asyncDispose](): Promise<void> {
      for (const socket of sockets) {
        if (socket.readyState <= WebSocket.OPEN) socket.close();
      }
      await withTimeout(Promise.all(closed), STEP_MS, "the endpoint's sockets to close");
      await server.shutdown();
    },
  };
}

/** Echoes every binary message back. */
const echo = (socket: WebSocket): void =>
  socket.addEventListener("message", (event) => socket.send(event.data));

/** Reads exactly `length` bytes from `carrier` with reads of at most `chunk` bytes. */
async function readExactly(
  carrier: WebSocketCarrier,
  length: number,
  chunk: number,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  // Bounded: every read returns at least one byte or ends the stream.
  while (total < length) {
    const buffer = new Uint8Array(Math.min(chunk, length - total));
    const count = await carrier.read(buffer);
    assert.ok(count !== null && count > 0, `the stream ended after ${total} of ${length} bytes`);
    parts.push(buffer.subarray(0, count));
    total += count;
  }
  return concatBytes(parts);
}

Deno.test("websocket carrier: echoed bytes come back exact through reads smaller than messages", async () => {
  await using endpoint = startEndpoint(echo);
  const carrier = await dialWebSocket({ url: endpoint.url, caCerts: undefined }, STEP_MS);
  try {
    const sent = [pseudoRandomBytes(70_000, 1), pseudoRandomBytes(3, 2), pseudoRandomBytes(1, 3)];
    for (const bytes of sent) assert.equal(await carrier.write(bytes), bytes.length);
    const back = await withTimeout(readExactly(carrier, 70_004, 4096), STEP_MS, "the echo");
    assert.deepEqual(back, concatBytes(sent));
  } finally {
    carrier.close();
  }
});

Deno.test("websocket carrier: a read takes at most its buffer, and fills it from several messages", async () => {
  await using endpoint = startEndpoint((socket) => {
    socket.addEventListener("message", () => {
      // One request, answered with three messages (one empty) that the reads must join and split.
      socket.send(new Uint8Array([1, 2, 3, 4, 5]));
      socket.send(new Uint8Array(0));
      socket.send(new Uint8Array([6, 7]));
      socket.close(1000);
    });
  });
  const ws = new WebSocket(endpoint.url, [WEBSOCKET_SUBPROTOCOL]);
  const carrier = new WebSocketCarrier(ws, endpoint.url, () => {});
  const closed = new Promise((resolve) => ws.addEventListener("close", resolve));
  await carrier.opened(STEP_MS, undefined);
  try {
    await carrier.write(new Uint8Array([0]));
    const three = new Uint8Array(3);
    assert.equal(await withTimeout(carrier.read(three), STEP_MS, "the first bytes"), 3);
    assert.deepEqual(three, new Uint8Array([1, 2, 3]));
    // The close came after every message: the reads still get every byte before they hear of it.
    await withTimeout(closed, STEP_MS, "the close");
    const rest = new Uint8Array(10);
    assert.equal(await carrier.read(rest), 4);
    assert.deepEqual(rest.subarray(0, 4), new Uint8Array([4, 5, 6, 7]));
    const ended = await carrier.read(rest).then(() => null, (error) => error);
    assert.ok(ended instanceof WebSocketClosed, String(ended));
    assert.equal(ended.code, 1000);
  } finally {
    carrier.close();
  }
});

Deno.test("websocket carrier: each write is one binary message, and the caller may reuse its buffer at once", async () => {
  const received: Uint8Array[] = [];
  const got = Promise.withResolvers<void>();
  await using endpoint = startEndpoint((socket) => {
    socket.addEventListener("message", (event) => {
      received.push(new Uint8Array(event.data));
      if (received.length === 2) got.resolve();
    });
  });
  const carrier = await dialWebSocket({ url: endpoint.url, caCerts: undefined }, STEP_MS);
  try {
    const buffer = pseudoRandomBytes(1000, 7);
    const copy = buffer.slice();
    await carrier.write(buffer.subarray(0, 600));
    buffer.fill(0); // As the frame writer does with a batch buffer it got back.
    await carrier.write(buffer.subarray(600));
    await withTimeout(got.promise, STEP_MS, "both messages");
    assert.deepEqual(received[0], copy.subarray(0, 600));
    assert.deepEqual(received[1], new Uint8Array(400));
  } finally {
    carrier.close();
  }
});

Deno.test("websocket carrier: a write resolves only once the WebSocket holds less than the high-water mark", async () => {
  let bytes = 0;
  const got = Promise.withResolvers<void>();
  await using endpoint = startEndpoint((socket) => {
    socket.addEventListener("message", (event) => {
      bytes += (event.data as ArrayBuffer).byteLength;
      if (bytes === 4 * WEBSOCKET_HIGH_WATER_BYTES) got.resolve();
    });
  });
  const ws = new WebSocket(endpoint.url, [WEBSOCKET_SUBPROTOCOL]);
  const carrier = new WebSocketCarrier(ws, endpoint.url, () => {});
  await carrier.opened(STEP_MS, undefined);
  try {
    // Each write alone is over the mark: none may resolve while the socket still holds it.
    for (let i = 0; i < 2; i++) {
      await carrier.write(pseudoRandomBytes(2 * WEBSOCKET_HIGH_WATER_BYTES, i + 1));
      assert.ok(ws.bufferedAmount < WEBSOCKET_HIGH_WATER_BYTES, String(ws.bufferedAmount));
    }
    await withTimeout(got.promise, STEP_MS, "every byte at the endpoint");
  } finally {
    carrier.close();
  }
});

Deno.test("websocket carrier: the relay's close code and reason reach the reader", async () => {
  await using endpoint = startEndpoint((socket) => {
    socket.addEventListener("open", () => socket.close(4022, "relay full"));
  });
  const carrier = await dialWebSocket({ url: endpoint.url, caCerts: undefined }, STEP_MS);
  try {
    const error = await withTimeout(
      carrier.read(new Uint8Array(16)).then(() => null, (error) => error),
      STEP_MS,
      "the close",
    );
    assert.ok(error instanceof WebSocketClosed, String(error));
    assert.equal(error.code, 4022);
    assert.equal(error.reason, "relay full");
    await assert.rejects(carrier.write(new Uint8Array(1)), ConnectionReset);
  } finally {
    carrier.close();
  }
});

Deno.test("websocket carrier: a text message ends the stream with a ProtocolError after the bytes before it", async () => {
  await using endpoint = startEndpoint((socket) => {
    socket.addEventListener("open", () => {
      socket.send(new Uint8Array([9, 9]));
      socket.send("hello");
      socket.send(new Uint8Array([8]));
    });
  });
  const carrier = await dialWebSocket({ url: endpoint.url, caCerts: undefined }, STEP_MS);
  try {
    const buffer = new Uint8Array(2);
    assert.equal(await withTimeout(carrier.read(buffer), STEP_MS, "the first message"), 2);
    assert.deepEqual(buffer, new Uint8Array([9, 9]));
    const error = await carrier.read(buffer).then(() => null, (error) => error);
    assert.ok(error instanceof ProtocolError, String(error));
    assert.match(error.message, /text WebSocket message/);
  } finally {
    carrier.close();
  }
});

Deno.test("websocket carrier: close() ends a pending read with null once the endpoint answered", async () => {
  await using endpoint = startEndpoint(() => {});
  const carrier = await dialWebSocket({ url: endpoint.url, caCerts: undefined }, STEP_MS);
  const pending = carrier.read(new Uint8Array(8));
  carrier.close();
  carrier.close(); // Idempotent.
  assert.equal(await withTimeout(pending, STEP_MS, "the read to end"), null);
  assert.equal(await carrier.read(new Uint8Array(8)), null);
  await assert.rejects(carrier.write(new Uint8Array(1)), ConnectionReset);
});

Deno.test("websocket dial: no listener is a ConnectionRefused that says what to check", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `ws://127.0.0.1:${listener.addr.port}/`;
  listener.close();
  const error = await dialWebSocket({ url, caCerts: undefined }, STEP_MS).catch((e) => e);
  assert.ok(error instanceof ConnectionRefused, String(error));
  assert.match(
    error.message,
    /^Cannot join relay: no WebSocket connection to ws:\/\/127\.0\.0\.1:/,
  );
  assert.match(error.message, /the relay is unreachable, or this is not its WebSocket endpoint/);
});

Deno.test("websocket dial: an HTTP server that is not a WebSocket endpoint is a ConnectionRefused", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("no\n", { status: 404 }),
  );
  try {
    const url = `ws://127.0.0.1:${server.addr.port}/`;
    const error = await dialWebSocket({ url, caCerts: undefined }, STEP_MS).catch((e) => e);
    assert.ok(error instanceof ConnectionRefused, String(error));
    assert.match(error.message, /404/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("websocket dial: an endpoint that does not pick the subprotocol is a ProtocolError", async () => {
  await using endpoint = startEndpoint(() => {}, { protocol: null });
  const error = await dialWebSocket({ url: endpoint.url, caCerts: undefined }, STEP_MS)
    .catch((e) => e);
  assert.ok(error instanceof ProtocolError, String(error));
  assert.match(error.message, /did not agree on the WebSocket subprotocol "alphanet"/);
});

Deno.test("websocket dial: a server that never answers the upgrade is TimedOut", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  try {
    const url = `ws://127.0.0.1:${listener.addr.port}/`;
    const error = await dialWebSocket({ url, caCerts: undefined }, 200).catch((e) => e);
    assert.ok(error instanceof TimedOut, String(error));
    assert.match(error.message, /no WebSocket handshake with .* within 200 ms/);
  } finally {
    (await accepted).close();
    listener.close();
  }
});

Deno.test("websocket dial: an abort while opening is Closed", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  try {
    const url = `ws://127.0.0.1:${listener.addr.port}/`;
    const abort = new AbortController();
    const dial = dialWebSocket({ url, caCerts: undefined }, STEP_MS, abort.signal);
    await accepted.then(() => abort.abort());
    await assert.rejects(dial, Closed);
    const already = dialWebSocket({ url, caCerts: undefined }, STEP_MS, abort.signal);
    await assert.rejects(already, Closed);
  } finally {
    (await accepted).close();
    listener.close();
  }
});

Deno.test("websocket dial: wss:// with caCerts trusts the test CA; without it the certificate is refused", async () => {
  await using endpoint = startEndpoint(echo, { tls: true });
  const refused = await dialWebSocket({ url: endpoint.url, caCerts: undefined }, STEP_MS)
    .catch((e) => e);
  assert.ok(refused instanceof ConnectionRefused, String(refused));
  assert.match(refused.message, /certificate/i);
  const carrier = await dialWebSocket({ url: endpoint.url, caCerts: [testCa()] }, STEP_MS);
  try {
    await carrier.write(new Uint8Array([1, 2, 3]));
    assert.deepEqual(await readExactly(carrier, 3, 16), new Uint8Array([1, 2, 3]));
  } finally {
    carrier.close();
  }
});

Deno.test("websocket carrier: a relay that sends more than MAX_QUEUED_RECEIVE_BYTES unread is cut off with FlowControl after what came before", async () => {
  const message = new Uint8Array(1024 * 1024).fill(7);
  const messages = MAX_QUEUED_RECEIVE_BYTES / message.length + 4;
  const serverClosed = Promise.withResolvers<void>();
  await using endpoint = startEndpoint((socket) => {
    socket.addEventListener("open", () => {
      for (let i = 0; i < messages; i++) socket.send(message);
    });
    socket.addEventListener("close", () => serverClosed.resolve());
  });
  const carrier = await dialWebSocket({ url: endpoint.url, caCerts: undefined }, STEP_MS);
  try {
    // Nothing is read until the client has given up: it closes the WebSocket itself.
    await withTimeout(serverClosed.promise, STEP_MS, "the client to close the flooding relay");
    const received = await readExactly(carrier, MAX_QUEUED_RECEIVE_BYTES, 256 * 1024);
    assert.ok(received.every((byte) => byte === 7));
    const error = await carrier.read(new Uint8Array(16)).then(() => null, (error) => error);
    assert.ok(error instanceof ProtocolError, String(error));
    assert.equal(error.reason, Reason.FlowControl);
    assert.match(error.message, /not read yet/);
  } finally {
    carrier.close();
  }
});
