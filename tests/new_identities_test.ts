/**
 * New identities per source IP on the real relay: three new identities from
 * 127.0.0.1 join, a fourth is refused with RateLimited and gets no address,
 * and the first reconnects freely.
 */

import assert from "node:assert/strict";
import { connect, RelayError } from "../mod.ts";
import { Reason } from "../protocol/mod.ts";
import { AddressPool } from "../server/address_pool.ts";
import { parseRelayFlags } from "../server/flags.ts";
import { Registry } from "../server/registry.ts";
import { STEP_MS, withTimeout } from "./_helpers/async.ts";
import { randomIdentity } from "./_helpers/bytes.ts";
import { startRelay } from "./_helpers/relay_fixture.ts";

Deno.test("--max-new-identities-per-ip 3: a fourth new identity is refused (RateLimited), a known one reconnects", async () => {
  const parsed = parseRelayFlags(["--max-new-identities-per-ip", "3"]);
  assert.ok(!parsed.help);
  assert.equal(parsed.options.maxNewIdentitiesPerIp, 3);
  const relay = await startRelay({ maxNewIdentitiesPerIp: parsed.options.maxNewIdentitiesPerIp });
  try {
    const identities = [randomIdentity(), randomIdentity(), randomIdentity()];
    const addresses: string[] = [];
    for (const identity of identities) {
      const client = await withTimeout(
        connect({ hostname: "127.0.0.1", port: relay.port, identity, reconnect: false }),
        STEP_MS,
        "a new identity's join",
      );
      addresses.push(client.virtualIp);
      await client.close();
    }
    const refused = await withTimeout(
      connect({
        hostname: "127.0.0.1",
        port: relay.port,
        identity: randomIdentity(),
        reconnect: false,
      })
        .then(
          async (client) => {
            await client.close();
            return null;
          },
          (error: unknown) => error,
        ),
      STEP_MS,
      "the fourth identity's refusal",
    );
    assert.ok(refused instanceof RelayError, `expected a RelayError, got ${refused}`);
    assert.equal(refused.reason, Reason.RateLimited);
    assert.match(refused.message, /this source IP registered 3 new addresses in the last hour/);

    const back = await withTimeout(
      connect({
        hostname: "127.0.0.1",
        port: relay.port,
        identity: identities[0],
        reconnect: false,
      }),
      STEP_MS,
      "a known identity's reconnect",
    );
    assert.equal(back.virtualIp, addresses[0]);
    await back.close();
    await withTimeout(relay.relay.close(), STEP_MS, "relay.close()");
    using registry = Registry.open(relay.db, AddressPool.default());
    assert.equal(registry.list().length, 3, "the refused identity got no address");
  } finally {
    await relay.close();
  }
});
