/**
 * A connection's receive path on its own (no socket): unread payloads kept
 * as views of their slab and given back as they are read, a cap on the slabs
 * one client holds, stream chunks that never alias a slab, and a read
 * that takes every frame of one link read.
 */

import assert from "node:assert/strict";
import { VirtualConnImpl } from "../../client/virtual_conn_impl.ts";
import type { Link } from "../../client/link.ts";
import { SocketTable } from "../../client/socket_table.ts";
import { Slab } from "../../transport/slab.ts";
import { stubHost } from "./_stub_host.ts";

const WINDOW = 4 * 1024 * 1024;

function connection(): VirtualConnImpl {
  const host = stubHost();
  const addr = { transport: "tcp", hostname: "10.0.0.1", port: 1 } as const;
  return new VirtualConnImpl(host, {
    id: 1,
    localAddr: addr,
    remoteAddr: addr,
    receiveWindow: WINDOW,
    maxReceiveWindow: WINDOW,
    sendWindow: WINDOW,
    outbound: true,
  });
}

/** A fresh slab holding `size` bytes of `fill` at offset 16, and the view of them. */
function arrived(size: number, fill: number): { slab: Slab; payload: Uint8Array } {
  const slab = new Slab();
  const payload = slab.bytes.subarray(16, 16 + size).fill(fill);
  return { slab, payload };
}

/** Arrives like the read loop hands it: the read loop's own reference is dropped after. */
function deliver(conn: VirtualConnImpl, size: number, fill: number): Slab {
  const { slab, payload } = arrived(size, fill);
  conn.receive(payload, slab);
  return slab;
}

Deno.test("unread payloads of 16 KiB or more stay in their slab until read, then the slab is given back", async () => {
  const conn = connection();
  const slabs = [deliver(conn, 40_000, 1), deliver(conn, 40_000, 2), deliver(conn, 100, 3)];
  assert.deepEqual(slabs.map((s) => s.shared), [true, true, false]); // the small one was copied
  const buffer = new Uint8Array(50_000);
  assert.equal(await conn.read(buffer), 50_000);
  assert.ok(buffer.subarray(0, 40_000).every((b) => b === 1));
  assert.ok(buffer.subarray(40_000).every((b) => b === 2));
  assert.deepEqual(slabs.map((s) => s.shared), [false, true, false]);
  assert.equal(await conn.read(buffer), 30_100);
  assert.ok(buffer.subarray(0, 30_000).every((b) => b === 2));
  assert.ok(buffer.subarray(30_000, 30_100).every((b) => b === 3));
  assert.deepEqual(slabs.map((s) => s.shared), [false, false, false]);
  conn.close();
});

Deno.test("a client holds at most 16 slabs for all its connections; later payloads are copied, and close gives every slab back", () => {
  const table = new SocketTable({ window: WINDOW, maxWindow: WINDOW }, () => {});
  // The table's connections only queue frames on the link: a stand-in that drops them.
  const link = {
    sendData: () => {},
    room: () => undefined,
    sendWindowUpdate: () => {},
    send: () => {},
  } as unknown as Link;
  table.attach(link, "10.0.0.1");
  const remote = { transport: "tcp", hostname: "10.0.0.2", port: 80 } as const;
  const conns = [1, 2, 3].map((id) => table.adopt(id, 1000 + id, WINDOW, remote, false));
  const slabs = conns.flatMap((conn) =>
    Array.from({ length: 8 }, (_, i) => deliver(conn, 20_000, i))
  );
  assert.equal(slabs.filter((s) => s.shared).length, 16);
  assert.ok(slabs.slice(16).every((s) => !s.shared), "the third connection's were copied");
  conns[0].close(); // gives back 8: the next payload is kept in place again
  const again = deliver(conns[2], 20_000, 9);
  assert.equal(again.shared, true);
  for (const conn of conns) conn.close();
  assert.ok([...slabs, again].every((s) => !s.shared));
});

Deno.test("readable's chunks are copies: the slab goes back at once and later bytes cannot change them", async () => {
  const conn = connection();
  const slab = deliver(conn, 30_000, 7);
  const reader = conn.readable.getReader();
  const { value } = await reader.read();
  assert.ok(value);
  assert.notEqual(value.buffer, slab.bytes.buffer);
  assert.equal(slab.shared, false);
  slab.bytes.fill(0); // the read loop reusing its slab
  assert.ok(value.every((b) => b === 7));
  reader.releaseLock();
  conn.close();
});

Deno.test("a waiting read takes every frame of the same link read, not just the first", async () => {
  const conn = connection();
  const buffer = new Uint8Array(200_000);
  const reading = conn.read(buffer);
  // One link read decoding three frames, synchronously, before the read resumes.
  for (const fill of [1, 2, 3]) deliver(conn, 65_535, fill);
  assert.equal(await reading, 196_605);
  for (const [i, fill] of [1, 2, 3].entries()) {
    assert.ok(buffer.subarray(i * 65_535, (i + 1) * 65_535).every((b) => b === fill));
  }
  // A frame that comes after the read resumed waits for the next one.
  deliver(conn, 10_000, 4);
  const rest = new Uint8Array(10_000);
  assert.equal(await conn.read(rest), 10_000);
  assert.ok(rest.every((b) => b === 4));
  conn.close();
});
