/**
 * `--ip-identities off` against the real relay: a client without an identity
 * is refused with InvalidIdentity (and does not retry), one with an identity
 * joins.
 */

import assert from "node:assert/strict";
import { connect, Reason, RelayError } from "../mod.ts";
import type { RelayOptions } from "../server/config.ts";
import { parseRelayFlags } from "../server/flags.ts";
import { randomIdentity } from "./_helpers/bytes.ts";
import { startRelay } from "./_helpers/relay_fixture.ts";

/** The options `args` parse to; fails on --help. */
function optionsOf(args: string[]): RelayOptions {
  const parsed = parseRelayFlags(args);
  assert.ok(!parsed.help);
  return parsed.options;
}

Deno.test("--ip-identities takes on or off", () => {
  assert.equal(optionsOf(["--ip-identities", "off"]).ipIdentities, false);
  assert.equal(optionsOf(["--ip-identities", "on"]).ipIdentities, true);
  assert.throws(() => parseRelayFlags(["--ip-identities", "maybe"]), /bad --ip-identities "maybe"/);
});

Deno.test("a relay with ipIdentities off refuses clients without identity and admits the others", async () => {
  const relay = await startRelay({ ipIdentities: false });
  try {
    await assert.rejects(
      connect({ port: relay.port, reconnect: false }),
      (error: unknown) => {
        assert.ok(error instanceof RelayError, String(error));
        assert.equal(error.reason, Reason.InvalidIdentity);
        assert.match(error.message, /requires an identity/);
        return true;
      },
    );
    await using keyed = await connect({ port: relay.port, identity: randomIdentity() });
    assert.match(keyed.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
  } finally {
    await relay.close();
  }
});
