/**
 * The WebSocket carrier end to end: the real relay (`server.ts
 * --websocket-port`) as a subprocess, clients joining over `ws://` (and
 * `wss://`) next to clients on TCP. A WebSocket client keeps its identity's
 * permanent address, reaches TCP clients and is reached by them with bytes
 * exact both ways, reconnects after the relay restarts, checks the pinned
 * relay id, and fails clearly at endpoints that are not a relay's WebSocket.
 */

import assert from "node:assert/strict";
import {
  type AlphaNetClient,
  type ClientOptions,
  connect,
  ConnectionRefused,
  generateIdentity,
  type Identity,
  Reason,
  RelayError,
  RelayIdMismatch,
  type VirtualConn,
} from "../mod.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { pseudoRandomBytes, sha256hex } from "./_helpers/bytes.ts";
import { recordStates } from "./_helpers/client_states.ts";
import { startWebSocketServer, type WebSocketRelay } from "./_helpers/server_process.ts";
import { readAll } from "./_helpers/streams.ts";
import { CERT_FILE, KEY_FILE, testCa } from "./_helpers/tls.ts";

const MiB = 1024 * 1024;
/** Time-out of a bulk transfer step. */
const BULK_MS = 30_000;
/** Reconnect quickly: the tests wait on the state changes, not on the clock. */
const FAST = { initialDelayMs: 20, maxDelayMs: 200 };

/** Runs `body` with a fresh WebSocket relay, stopped (exit 0) afterwards. */
async function withRelay(
  body: (relay: WebSocketRelay) => Promise<void>,
  args: string[] = [],
): Promise<void> {
  const relay = await startWebSocketServer(["--log-level", "warn", ...args]);
  try {
    await body(relay);
  } finally {
    assert.equal(await relay.stop(), 0);
  }
}

function join(options: ClientOptions, what: string): Promise<AlphaNetClient> {
  return withTimeout(connect(options), STEP_MS, what);
}

/**
 * Connects `from` to `to`'s listener on virtual port 80; each side sends its
 * own 1 MiB, half-closes, and reads the other's to the end; both arrive exact.
 */
async function exchangeMiB(from: AlphaNetClient, to: AlphaNetClient): Promise<void> {
  const toFrom = pseudoRandomBytes(MiB, 11);
  const fromTo = pseudoRandomBytes(MiB, 22);
  const listener = to.listen({ port: 80 });
  try {
    const accepting = listener.accept();
    const dialed = await withTimeout(
      from.connect({ hostname: to.virtualIp, port: 80 }),
      STEP_MS,
      "the connection",
    );
    const accepted = await withTimeout(accepting, STEP_MS, "the accept");
    const side = async (conn: VirtualConn, out: Uint8Array): Promise<Uint8Array> => {
      try {
        const [, received] = await Promise.all([
          conn.write(out).then(() => conn.closeWrite()),
          readAll(conn),
        ]);
        return received;
      } finally {
        conn.close();
      }
    };
    const [atFrom, atTo] = await withTimeout(
      Promise.all([side(dialed, fromTo), side(accepted, toFrom)]),
      BULK_MS,
      "1 MiB each way",
    );
    assert.equal(atTo.length, MiB);
    assert.equal(atFrom.length, MiB);
    assert.equal(await sha256hex(atTo), await sha256hex(fromTo));
    assert.equal(await sha256hex(atFrom), await sha256hex(toFrom));
  } finally {
    listener.close();
  }
}

Deno.test("websocket e2e: an identity keeps its permanent address over WebSocket, and it is the one it has on TCP", async () => {
  await withRelay(async (relay) => {
    const identity: Identity = await generateIdentity();
    const first = await join({ url: relay.url, identity }, "the first WebSocket join");
    const address = first.virtualIp;
    assert.match(address, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(first.state, "connected");
    await first.close();

    const again = await join({ url: new URL(relay.url), identity }, "the second WebSocket join");
    assert.equal(again.virtualIp, address);
    await again.close();

    const tcp = await join({ port: relay.port, identity }, "the TCP join");
    assert.equal(tcp.virtualIp, address);
    assert.equal(tcp.relayId, again.relayId);
    await tcp.close();
  });
});

Deno.test("websocket e2e: a WebSocket client and a TCP client exchange 1 MiB each way, whichever dials", async () => {
  await withRelay(async (relay) => {
    const ws = await join(
      { url: relay.url, identity: await generateIdentity() },
      "the WebSocket client",
    );
    const tcp = await join(
      { port: relay.port, identity: await generateIdentity() },
      "the TCP client",
    );
    try {
      await exchangeMiB(ws, tcp); // The WebSocket client dials the TCP client's listener.
      await exchangeMiB(tcp, ws); // The TCP client dials the WebSocket client's listener.
    } finally {
      await ws.close();
      await tcp.close();
    }
  });
});

Deno.test("websocket e2e: two WebSocket clients exchange 1 MiB each way", async () => {
  await withRelay(async (relay) => {
    const a = await join({ url: relay.url, identity: await generateIdentity() }, "client a");
    const b = await join({ url: relay.url, identity: await generateIdentity() }, "client b");
    try {
      await exchangeMiB(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("websocket e2e: a WebSocket client reconnects to the restarted relay, same address, and works", async () => {
  const dir = await Deno.makeTempDir({ prefix: "alphanet_ws_reconnect_" });
  const db = `${dir}/registry.db`;
  try {
    const first = await startWebSocketServer(["--log-level", "warn", "--db", db]);
    let second: WebSocketRelay | null = null;
    const identity = await generateIdentity();
    const ws = await join(
      { url: first.url, identity, reconnect: FAST },
      "the WebSocket client",
    );
    try {
      const address = ws.virtualIp;
      const relayId = ws.relayId;
      const states = recordStates(ws);
      assert.equal(await first.stop(), 0);
      const lost = await states.next("reconnecting", "the client to notice the relay left");
      assert.ok(lost.error !== null);
      second = await startWebSocketServer([
        "--log-level",
        "warn",
        "--db",
        db,
        "--port",
        String(first.port),
        "--websocket-port",
        String(first.websocketPort),
      ]);
      await states.next("connected", "the client to reconnect", BULK_MS);
      assert.equal(ws.virtualIp, address);
      assert.equal(ws.relayId, relayId);
      const tcp = await join(
        { port: second.port, identity: await generateIdentity() },
        "a TCP client",
      );
      try {
        await exchangeMiB(tcp, ws);
      } finally {
        await tcp.close();
      }
    } finally {
      await ws.close();
      if (second !== null) assert.equal(await second.stop(), 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("websocket e2e: a pinned relay id that is not the relay's is RelayIdMismatch", async () => {
  await withRelay(async (relay) => {
    const probe = await join({ url: relay.url }, "the probe");
    const actual = probe.relayId;
    await probe.close();
    const other = actual === "0".repeat(64) ? "1".repeat(64) : "0".repeat(64);
    const error = await connect({ url: relay.url, relayId: other }).catch((e) => e);
    assert.ok(error instanceof RelayIdMismatch, String(error));
    assert.equal(error.expected, other);
    assert.equal(error.actual, actual);
    const pinned = await join({ url: relay.url, relayId: actual }, "the pinned join");
    await pinned.close();
  });
});

Deno.test("websocket e2e: a full relay turns a WebSocket client away with RelayError(ServerFull)", async () => {
  await withRelay(async (relay) => {
    const first = await join({ url: relay.url }, "the first client");
    try {
      const error = await connect({ url: relay.url, identity: await generateIdentity() })
        .catch((e) => e);
      assert.ok(error instanceof RelayError, String(error));
      assert.equal(error.reason, Reason.ServerFull);
      assert.match(
        error.message,
        /^Cannot join relay: the relay closed the link with ServerFull: /,
      );
    } finally {
      await first.close();
    }
  }, ["--max-clients", "1"]);
});

Deno.test("websocket e2e: the relay closes a WebSocket without the subprotocol with 1002 and says why", async () => {
  await withRelay(async (relay) => {
    const ws = new WebSocket(relay.url);
    const closed = await withTimeout(
      new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve)),
      STEP_MS,
      "the relay to close the WebSocket",
    );
    assert.equal(closed.code, 1002);
    assert.equal(closed.reason, 'AlphaNET needs the WebSocket subprotocol "alphanet"');
  });
});

Deno.test("websocket e2e: a ws:// URL at the relay's TCP port is a ConnectionRefused saying what to check", async () => {
  await withRelay(async (relay) => {
    const url = `ws://127.0.0.1:${relay.port}/`;
    const error = await connect({ url }).catch((e) => e);
    assert.ok(error instanceof ConnectionRefused, String(error));
    assert.match(
      error.message,
      /^Cannot join relay: no WebSocket connection to ws:\/\/127\.0\.0\.1:\d+\/ .*: the relay is unreachable, or this is not its WebSocket endpoint/,
    );
  });
});

Deno.test("websocket e2e: wss:// to a TLS relay, trusting its CA with caCerts", async () => {
  await withRelay(async (relay) => {
    assert.match(relay.url, /^wss:\/\//);
    const refused = await connect({ url: relay.url }).catch((e) => e);
    assert.ok(refused instanceof ConnectionRefused, String(refused));
    assert.match(refused.message, /certificate/i);
    const identity = await generateIdentity();
    const ws = await join({ url: relay.url, caCerts: [testCa()], identity }, "the wss:// join");
    const tcp = await join(
      { port: relay.port, tls: true, caCerts: [testCa()], identity: await generateIdentity() },
      "the TLS join",
    );
    try {
      await exchangeMiB(ws, tcp);
    } finally {
      await ws.close();
      await tcp.close();
    }
  }, ["--tls-cert", CERT_FILE, "--tls-key", KEY_FILE]);
});
