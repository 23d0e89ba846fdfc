/**
 * Hostile input at the relay's WebSocket carrier: each bad frame or upgrade
 * closes only its sender, with a clear reason (an Error frame and a close
 * code and text, or a one-line HTTP refusal), while a WebSocket bystander
 * and TCP clients keep being served.
 */

import assert from "node:assert/strict";
import { type Packet, PacketType, Reason } from "../protocol/mod.ts";
import { STEP_MS, waitUntil, withTimeout } from "./_helpers/async.ts";
import { assertRelayServes, startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";
import { WebSocketLink } from "./_helpers/websocket_link.ts";
import {
  clientFrame,
  httpExchange,
  type HttpResponse,
  RawWebSocket,
  upgradeHead,
  writeAll,
  WsOpcode,
} from "./_helpers/websocket_raw.ts";

const NEEDS_SUBPROTOCOL = 'AlphaNET needs the WebSocket subprotocol "alphanet"';

/** A relay with its WebSocket carrier, and a joined WebSocket bystander that must stay served. */
async function withHostileRelay(
  test: (relay: TestRelay, websocketPort: number) => Promise<void>,
  options: { helloTimeoutMs?: number } = {},
): Promise<void> {
  const relay = await startRelay({ websocketPort: 0, ...options });
  const websocketPort = relay.relay.websocketAddr!.port;
  const bystander = await RawWebSocket.open(websocketPort);
  try {
    await bystander.handshake();
    await test(relay, websocketPort);
    // The bystander still gets answers, and a fresh TCP client still joins.
    await bystander.send({ type: PacketType.Ping, nonce: 77 });
    const pong = await bystander.expect(PacketType.Pong, "the bystander's Pong");
    assert.equal(pong.nonce, 77);
    await assertRelayServes(relay.port);
  } finally {
    bystander.close();
    await relay.close();
  }
}

/**
 * Reads an Error(Malformed) frame whose message matches `message`, then the
 * Close frame `code` with the same text, then the end of the stream.
 */
async function expectViolation(ws: RawWebSocket, code: number, message: RegExp): Promise<void> {
  let error: Packet | null = null;
  for (let skipped = 0; skipped < 8 && error === null; skipped++) {
    const packet = await ws.next("the Error frame");
    assert.ok(packet !== null, `no Error frame before the close ${JSON.stringify(ws.closeFrame)}`);
    if (packet.type === PacketType.Error) error = packet;
  }
  assert.ok(error !== null && error.type === PacketType.Error, "no Error frame");
  assert.equal(error.reason, Reason.Malformed);
  assert.match(error.message, message);
  await ws.expectClose(code, error.message);
}

Deno.test("websocket hostile: each bad frame from a joined client is Error(Malformed) naming it, then its close code with the same text", async (t) => {
  await withHostileRelay(async (relay, websocketPort) => {
    const cases: [string, Uint8Array, number, RegExp][] = [
      [
        "a text message",
        clientFrame(WsOpcode.Text, new TextEncoder().encode("hello")),
        1003,
        /^text message: AlphaNET carries binary messages only$/,
      ],
      [
        // Only the header: the relay must not wait for the announced 2 MiB.
        "a message over 1 MiB, announced in its header",
        clientFrame(WsOpcode.Binary, new Uint8Array(0), { announcedLength: 2 * 1024 * 1024 }),
        1009,
        /^message over 1048576 bytes$/,
      ],
      [
        "an unmasked frame",
        clientFrame(WsOpcode.Binary, new Uint8Array([0, 0, 0, 4, 4, 0, 0, 0, 1]), {
          masked: false,
        }),
        1002,
        /unmasked frame/,
      ],
      ["RSV bits", clientFrame(WsOpcode.Binary, new Uint8Array([1]), { rsv: 2 }), 1002, /RSV/],
      ["opcode 0x5", clientFrame(0x5, new Uint8Array([1])), 1002, /unknown opcode 0x5/],
      [
        "a Ping over 125 bytes",
        clientFrame(WsOpcode.Ping, new Uint8Array(126)),
        1002,
        /control frame over 125 bytes/,
      ],
      [
        "a continuation without a start",
        clientFrame(WsOpcode.Continuation, new Uint8Array([1])),
        1002,
        /continuation frame without a message/,
      ],
    ];
    for (const [name, frame, code, message] of cases) {
      await t.step(name, async () => {
        const ws = await RawWebSocket.open(websocketPort);
        try {
          await ws.handshake();
          await ws.write(frame);
          await expectViolation(ws, code, message);
        } finally {
          ws.close();
        }
      });
    }
    await waitUntil(() => relay.relay.linkCount === 1, "only the bystander's link to remain");
  });
});

Deno.test("websocket hostile: a valid upgrade without the subprotocol alphanet is completed, then closed with 1002 and why, no Error frame", async () => {
  await withHostileRelay(async (_relay, websocketPort) => {
    for (const protocol of [null, "chat", "AlphaNET"]) {
      const ws = await RawWebSocket.open(websocketPort, { protocol });
      try {
        assert.equal(ws.response.headers.has("sec-websocket-protocol"), false);
        await ws.expectClose(1002, NEEDS_SUBPROTOCOL, `offering ${protocol}`);
      } finally {
        ws.close();
      }
    }
    // Deno's own WebSocket sees the reason in its close event.
    const link = await WebSocketLink.open(`ws://127.0.0.1:${websocketPort}/`, []);
    const event = await withTimeout(link.closed, STEP_MS, "the relay to close");
    assert.equal(event.code, 1002);
    assert.equal(event.reason, NEEDS_SUBPROTOCOL);
  });
});

/** Checks the shape every refusal has: text/plain, Content-Length, Connection: close, one line. */
function assertRefusal(response: HttpResponse, status: number, body: RegExp): void {
  assert.equal(response.status, status, response.statusLine);
  assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(response.headers.get("connection"), "close");
  assert.equal(
    Number(response.headers.get("content-length")),
    new TextEncoder().encode(response.body).length,
  );
  assert.match(response.body, /^[^\n]+\n$/, "one line");
  assert.match(response.body, body);
}

Deno.test("websocket hostile: a bad upgrade request gets its HTTP status and a one-line text/plain reason, then the link closes", async (t) => {
  await withHostileRelay(async (relay, websocketPort) => {
    const head = (options: Parameters<typeof upgradeHead>[1]) =>
      upgradeHead(websocketPort, options);
    await t.step("wrong path: 404", async () => {
      const response = await httpExchange(websocketPort, head({ path: "/chat" }));
      assertRefusal(response, 404, /WebSocket is at \//);
    });
    await t.step("a query string is ignored", async () => {
      const ws = await RawWebSocket.open(websocketPort, { path: "/?token=x" });
      ws.close();
    });
    await t.step("not GET: 405 with Allow: GET", async () => {
      const response = await httpExchange(websocketPort, head({ method: "POST" }));
      assertRefusal(response, 405, /POST is not allowed/);
      assert.equal(response.headers.get("allow"), "GET");
    });
    await t.step("no Upgrade header: 426 with Upgrade: websocket", async () => {
      const response = await httpExchange(websocketPort, head({ headers: { Upgrade: null } }));
      assertRefusal(response, 426, /AlphaNET relay's WebSocket endpoint/);
      assert.equal(response.headers.get("upgrade"), "websocket");
    });
    await t.step("Connection without upgrade: 426", async () => {
      const response = await httpExchange(
        websocketPort,
        head({ headers: { Connection: "keep-alive" } }),
      );
      assertRefusal(response, 426, /WebSocket endpoint/);
    });
    await t.step("a list-valued Connection and case-insensitive names are fine", async () => {
      const ws = await RawWebSocket.open(websocketPort, {
        headers: { Connection: "keep-alive, Upgrade", upgrade: "WebSocket" },
      });
      ws.close();
    });
    await t.step("version 8: 426 with Sec-WebSocket-Version: 13", async () => {
      const response = await httpExchange(
        websocketPort,
        head({ headers: { "Sec-WebSocket-Version": "8" } }),
      );
      assertRefusal(response, 426, /version 13/);
      assert.equal(response.headers.get("sec-websocket-version"), "13");
    });
    await t.step("a key that is not base64 of 16 bytes: 400", async () => {
      for (const key of ["short", "dGhlIHNhbXBsZSBub25jZQ", "AAAAAAAAAAAAAAAAAAAAAAAAAA=="]) {
        const response = await httpExchange(
          websocketPort,
          head({ headers: { "Sec-WebSocket-Key": key } }),
        );
        assertRefusal(response, 400, /Sec-WebSocket-Key/);
      }
    });
    await t.step("HTTP/1.0: 400", async () => {
      const response = await httpExchange(websocketPort, head({ version: "HTTP/1.0" }));
      assertRefusal(response, 400, /not HTTP\/1\.1/);
    });
    await t.step("a header line without a colon: 400", async () => {
      const text = head({}).replace("\r\n\r\n", "\r\nno colon here\r\n\r\n");
      assertRefusal(await httpExchange(websocketPort, text), 400, /colon/);
    });
    await t.step("no Host: 400", async () => {
      const response = await httpExchange(websocketPort, head({ headers: { Host: null } }));
      assertRefusal(response, 400, /Host/);
    });
    await t.step("a head over 8 KiB: 431", async () => {
      const response = await httpExchange(
        websocketPort,
        head({ headers: { "X-Padding": "p".repeat(9000) } }),
      );
      assertRefusal(response, 431, /over 8192 bytes/);
    });
    await t.step("a browser opening the URL as a page: 426 saying what this is", async () => {
      const response = await fetch(`http://127.0.0.1:${websocketPort}/`);
      assert.equal(response.status, 426);
      assert.match(await response.text(), /^This is an AlphaNET relay's WebSocket endpoint/);
    });
    await waitUntil(() => relay.relay.linkCount === 1, "only the bystander's link to remain");
  });
});

Deno.test("websocket hostile: a TLS ClientHello or bytes that are not HTTP at the plain WebSocket port are closed without a word", async () => {
  await withHostileRelay(async (_relay, websocketPort) => {
    const clientHello = new Uint8Array([
      0x16,
      0x03,
      0x01,
      0x00,
      0x05,
      0x01,
      0x00,
      0x00,
      0x01,
      0x00,
    ]);
    const alphanetHello = new Uint8Array([0, 0, 0, 2, 1, 0, 2]);
    for (const bytes of [clientHello, alphanetHello, new TextEncoder().encode("\r\nGET /")]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: websocketPort });
      try {
        await writeAll(conn, bytes);
        const count = await withTimeout(conn.read(new Uint8Array(64)), STEP_MS, "the close");
        assert.equal(count, null, "the relay answered");
      } finally {
        conn.close();
      }
    }
  });
});

Deno.test("websocket hostile: a link silent before its upgrade gets 408 at the handshake time-out; one silent after it, Error(HelloTimeout) and close 4011", async () => {
  await withHostileRelay(async (relay, websocketPort) => {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: websocketPort });
    // Half a request head, then nothing.
    const trickle = await Deno.connect({ hostname: "127.0.0.1", port: websocketPort });
    const upgraded = await RawWebSocket.open(websocketPort);
    try {
      await writeAll(trickle, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n"));
      for (const conn of [silent, trickle]) {
        const response = await httpExchangeOn(conn);
        assert.equal(response.status, 408);
        assert.match(response.body, /handshake did not complete within 1000 ms/);
      }
      const error = await upgraded.expectError(Reason.HelloTimeout);
      assert.match(error.message, /within 1000 ms/);
      await waitUntil(() => relay.relay.linkCount === 1, "only the bystander's link to remain");
    } finally {
      silent.close();
      trickle.close();
      upgraded.close();
    }
  }, { helloTimeoutMs: 1000 });
});

/** Reads what the relay sends on `conn` until it closes, as an HTTP response. */
async function httpExchangeOn(conn: Deno.Conn): Promise<HttpResponse> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(4096);
  for (let reads = 0; reads < 64; reads++) {
    const count = await withTimeout(conn.read(buffer), STEP_MS, "the relay's answer");
    if (count === null) break;
    chunks.push(buffer.slice(0, count));
  }
  const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  const [head, body = ""] = text.split("\r\n\r\n");
  const lines = head.split("\r\n");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(lines[0].split(" ")[1]), statusLine: lines[0], headers, body };
}
