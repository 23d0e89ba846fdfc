/**
 * The PostgreSQL registry tells a join that found its key new when the key
 * was registered after all (by another relay's link meanwhile), as the
 * SQLite one does: the relay then gives back the new-address allowance it
 * took. Against a real private PostgreSQL.
 */

import assert from "node:assert/strict";
import { AddressPool } from "../../server/address_pool.ts";
import type { RegistryKey } from "../../server/registry_key.ts";
import { PostgresRegistry } from "../../server/registry_postgres.ts";
import { clusterTest, startPostgres } from "../_helpers/cluster_engines.ts";
import { freshDatabase } from "./_postgres_db.ts";

clusterTest(
  "PostgreSQL registry: assign calls onKnown for a key registered already, never for one it inserts",
  async () => {
    await using pg = await startPostgres();
    const url = await freshDatabase(pg, "on_known");
    const pool = AddressPool.fromCidr("10.0.0.0/24");
    const [a, b] = await Promise.all([
      PostgresRegistry.open(url, pool, { node: "relay0:7000" }),
      PostgresRegistry.open(url, pool, { node: "relay1:7000" }),
    ]);
    try {
      const key: RegistryKey = { kind: "key", publicKey: new Uint8Array(32).fill(7) };
      let known = 0;
      const onKnown = (): void => {
        known++;
      };
      const address = await a.assign(key, Date.now(), { online: true, link: 1, onKnown });
      assert.equal(known, 0, "inserted: not known");
      // Another relay's join of the same key, which had found it new.
      assert.equal(await b.assign(key, Date.now(), { online: true, link: 1, onKnown }), address);
      assert.equal(known, 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
);
