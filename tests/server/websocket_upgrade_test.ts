/**
 * The relay's WebSocket opening handshake, pure: the upgrade request's
 * checks in their order, the accept value of RFC 6455's example, and the
 * exact bytes of the 101 and of a refusal.
 */

import assert from "node:assert/strict";
import {
  acceptValue,
  checkUpgradeRequest,
  findHeadEnd,
  isRefusal,
  refusalResponse,
  switchingProtocols,
  type UpgradeRefusal,
} from "../../server/websocket_upgrade.ts";
import { SAMPLE_ACCEPT, SAMPLE_KEY, upgradeHead } from "../_helpers/websocket_raw.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

function refusalOf(head: string): UpgradeRefusal {
  const result = checkUpgradeRequest(bytes(head));
  assert.ok(isRefusal(result), `accepted: ${head}`);
  return result;
}

Deno.test("websocket upgrade: the accept value is RFC 6455's for its sample key", async () => {
  assert.equal(await acceptValue(SAMPLE_KEY), SAMPLE_ACCEPT);
});

Deno.test("websocket upgrade: the head ends at the first blank line, found across reads", () => {
  const head = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\nrest");
  assert.equal(findHeadEnd(head, 10), -1);
  assert.equal(findHeadEnd(head, 26), -1);
  // The last byte of the blank line arrives alone, in the next read.
  assert.equal(findHeadEnd(head, 27, 26), 27);
  assert.equal(findHeadEnd(head, 30, 26), 27);
  assert.equal(findHeadEnd(head, head.length), 27);
  assert.equal(findHeadEnd(bytes("\n\n\r\n"), 4), -1);
});

Deno.test("websocket upgrade: a good request is accepted, with or without the subprotocol among others", () => {
  for (
    const [protocol, alphanet] of [["alphanet", true], ["a, alphanet ,b", true], [
      null,
      false,
    ]] as const
  ) {
    const result = checkUpgradeRequest(bytes(upgradeHead(1, { protocol })));
    assert.deepEqual(result, { key: SAMPLE_KEY, alphanet });
  }
  // Repeated list headers join as one list.
  const split = upgradeHead(1, { protocol: "chat" }).replace(
    "\r\n\r\n",
    "\r\nsec-websocket-protocol: alphanet\r\n\r\n",
  );
  assert.deepEqual(checkUpgradeRequest(bytes(split)), { key: SAMPLE_KEY, alphanet: true });
});

Deno.test("websocket upgrade: each fault gets its status, in the documented order", () => {
  const cases: [string, number, RegExp][] = [
    ["GET /  HTTP/1.1\r\nHost: x\r\n\r\n", 400, /request line/],
    ["GET / HTTP/1.0\r\nHost: x\r\n\r\n", 400, /HTTP\/1\.0, not HTTP\/1\.1/],
    [upgradeHead(1).replace("Host:", "Ho st:"), 400, /not a token/],
    [upgradeHead(1).replace("\r\n\r\n", "\r\n folded\r\n\r\n"), 400, /not a token|colon/],
    [upgradeHead(1).replace("\r\n\r\n", "\r\nX: a\u0001b\r\n\r\n"), 400, /control characters/],
    [upgradeHead(1, { headers: { "Content-Length": "5" } }), 400, /no body/],
    [upgradeHead(1, { headers: { "Transfer-Encoding": "chunked" } }), 400, /no body/],
    // Syntax comes first: a POST with a bad header line is a 400.
    [upgradeHead(1, { method: "POST" }).replace("\r\n\r\n", "\r\nbad\r\n\r\n"), 400, /colon/],
    [upgradeHead(1, { method: "POST", path: "/x" }), 405, /POST is not allowed/],
    [upgradeHead(1, { path: "/x", headers: { Upgrade: null } }), 404, /at \//],
    [upgradeHead(1, { headers: { Upgrade: "h2c" } }), 426, /WebSocket endpoint/],
    [upgradeHead(1, { headers: { Connection: null } }), 426, /WebSocket endpoint/],
    [upgradeHead(1, { headers: { "Sec-WebSocket-Version": null } }), 426, /version 13/],
    [upgradeHead(1, { headers: { "Sec-WebSocket-Key": null } }), 400, /Sec-WebSocket-Key/],
    [
      upgradeHead(1).replace("\r\n\r\n", `\r\nSec-WebSocket-Key: ${SAMPLE_KEY}\r\n\r\n`),
      400,
      /Sec-WebSocket-Key/,
    ],
  ];
  for (const [head, status, message] of cases) {
    const refusal = refusalOf(head);
    assert.equal(refusal.status, status, `${JSON.stringify(head)}: ${refusal.message}`);
    assert.match(refusal.message, message);
  }
});

Deno.test("websocket upgrade: the 101 and a refusal are exactly the documented bytes", () => {
  assert.equal(
    new TextDecoder().decode(switchingProtocols(SAMPLE_ACCEPT, true)),
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\nSec-WebSocket-Protocol: alphanet\r\n\r\n`,
  );
  assert.doesNotMatch(
    new TextDecoder().decode(switchingProtocols(SAMPLE_ACCEPT, false)),
    /Sec-WebSocket-(Protocol|Extensions)/,
  );
  assert.equal(
    new TextDecoder().decode(
      refusalResponse({ status: 405, message: "no\r\nway", headers: { Allow: "GET" } }),
    ),
    "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n" +
      "Content-Length: 7\r\nConnection: close\r\nAllow: GET\r\n\r\nno way\n",
  );
});
