import assert from "node:assert/strict";
import { canMove, type ClientLifecycle, visibleState } from "../../client/client_state.ts";

const STATES: readonly ClientLifecycle[] = ["connected", "reconnecting", "closing", "closed"];

Deno.test("the client's transitions: reconnect, close, fatal end; closed is final", () => {
  const allowed = STATES.flatMap((from) =>
    STATES.filter((to) => canMove(from, to)).map((to) => `${from} -> ${to}`)
  );
  assert.deepEqual(allowed, [
    "connected -> reconnecting",
    "connected -> closing",
    "connected -> closed",
    "reconnecting -> connected",
    "reconnecting -> closing",
    "reconnecting -> closed",
    "closing -> closed",
  ]);
});

Deno.test("a closing client reads as closed", () => {
  assert.deepEqual(STATES.map(visibleState), ["connected", "reconnecting", "closed", "closed"]);
});
