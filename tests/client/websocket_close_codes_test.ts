/**
 * How a client joining over WebSocket reads the relay's close: a code
 * 4000 + R with no Error frame before it is a RelayError with reason R; an
 * Error frame that came first wins over the close code; any other code is a
 * ConnectionReset naming the code and reason. The relay here is a
 * test-local WebSocket endpoint on 127.0.0.1 (Deno.upgradeWebSocket, the
 * subprotocol "alphanet") that closes as each case says once the client's
 * Hello arrives.
 */

import assert from "node:assert/strict";
import { connect, ConnectionReset, Reason, RelayError } from "../../mod.ts";
import { encode, PacketType } from "../../protocol/mod.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";

/** A WebSocket endpoint that, at the first message (the Hello), runs `answer`. */
async function withRelay(
  answer: (socket: WebSocket) => void,
  run: (url: string) => Promise<void>,
): Promise<void> {
  const closed: Promise<void>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request, { protocol: "alphanet" });
    socket.binaryType = "arraybuffer";
    closed.push(new Promise((resolve) => socket.addEventListener("close", () => resolve())));
    socket.addEventListener("message", () => answer(socket), { once: true });
    return response;
  });
  try {
    await run(`ws://127.0.0.1:${server.addr.port}/`);
  } finally {
    await withTimeout(Promise.all(closed), STEP_MS, "the relay's sockets to close");
    await server.shutdown();
  }
}

/** What connect() over `url` rejects with. */
function joinError(url: string): Promise<unknown> {
  return connect({ url, reconnect: false }).then(
    async (net) => {
      await net.close();
      throw new Error("the join succeeded");
    },
    (error) => error,
  );
}

Deno.test("websocket close 4000 + ServerFull with no Error frame is RelayError(ServerFull)", async () => {
  await withRelay(
    (socket) => socket.close(4000 + Reason.ServerFull, "relay is full"),
    async (url) => {
      const error = await joinError(url);
      assert.ok(error instanceof RelayError, String(error));
      assert.equal(error.reason, Reason.ServerFull);
      assert.equal(
        error.message,
        "Cannot join relay: the relay closed the link with ServerFull: relay is full",
      );
    },
  );
});

Deno.test("websocket: an Error frame before the close wins over the close code", async () => {
  const frame = encode({
    type: PacketType.Error,
    reason: Reason.InvalidIdentity,
    message: "bad proof",
  });
  await withRelay((socket) => {
    socket.send(frame);
    socket.close(4000 + Reason.ServerFull, "not this one");
  }, async (url) => {
    const error = await joinError(url);
    assert.ok(error instanceof RelayError, String(error));
    assert.equal(error.reason, Reason.InvalidIdentity);
    assert.match(error.message, /InvalidIdentity: bad proof$/);
  });
});

Deno.test("websocket close with another code is a ConnectionReset naming the code and reason", async () => {
  for (const [code, reason] of [[1011, "internal"], [4999, ""], [3000, "other"]] as const) {
    await withRelay((socket) => socket.close(code, reason), async (url) => {
      const error = await joinError(url);
      assert.ok(error instanceof ConnectionReset, String(error));
      assert.equal(
        error.message,
        `Cannot join relay: the WebSocket closed with code ${code}${reason ? ` (${reason})` : ""}`,
      );
    });
  }
});
