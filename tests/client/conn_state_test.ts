import assert from "node:assert/strict";
import {
  type ConnEvent,
  type ConnState,
  nextConnState,
  readsOpen,
  writesShut,
} from "../../client/conn_state.ts";
import { VirtualConnImpl } from "../../client/virtual_conn_impl.ts";
import { stubHost } from "./_stub_host.ts";
import { BrokenPipe, Closed, ConnectionReset, Reason } from "../../mod.ts";

const STATES: readonly ConnState[] = ["open", "writeShut", "readShut", "bothShut", "closed"];

Deno.test("nextConnState() follows the half-close table", async (t) => {
  const cases: [ConnState, ConnEvent, ConnState][] = [
    ["open", "closeWrite", "writeShut"],
    ["open", "peerShutdown", "readShut"],
    ["writeShut", "peerShutdown", "bothShut"],
    ["readShut", "closeWrite", "bothShut"],
    ["writeShut", "closeWrite", "writeShut"],
    ["readShut", "peerShutdown", "readShut"],
    ["bothShut", "closeWrite", "bothShut"],
    ["bothShut", "peerShutdown", "bothShut"],
  ];
  for (const [from, event, to] of cases) {
    await t.step(`${from} --${event}--> ${to}`, () => {
      assert.equal(nextConnState(from, event), to);
    });
  }
  await t.step("close() ends every state in closed, which nothing leaves", () => {
    for (const state of STATES) assert.equal(nextConnState(state, "close"), "closed");
    for (const event of ["closeWrite", "peerShutdown", "close"] as const) {
      assert.equal(nextConnState("closed", event), "closed");
    }
  });
  await t.step(
    "reads stay open until the peer shuts down; writes shut with closeWrite only",
    () => {
      assert.deepEqual(STATES.filter(readsOpen), ["open", "writeShut"]);
      assert.deepEqual(STATES.filter(writesShut), ["writeShut", "bothShut"]);
    },
  );
});

/** A connection on no socket: records what it would send. */
function connection(): { conn: VirtualConnImpl; sent: string[] } {
  const sent: string[] = [];
  const host = stubHost({
    sendData: (_id, payload) => void sent.push(`data ${payload.length}`),
    sendWindowUpdate: (_id, increment) => void sent.push(`window ${increment}`),
    sendShutdown: () => void sent.push("shutdown"),
    sendClosed: () => void sent.push("closed"),
    release: () => void sent.push("release"),
  });
  const addr = { transport: "tcp", hostname: "10.0.0.1", port: 1 } as const;
  const conn = new VirtualConnImpl(host, {
    id: 7,
    localAddr: addr,
    remoteAddr: addr,
    receiveWindow: 64,
    maxReceiveWindow: 64,
    sendWindow: 64,
    outbound: true,
  });
  return { conn, sent };
}

const bytes = (n: number): Uint8Array => new Uint8Array(n).fill(1);

Deno.test("closeWrite() sends one SocketShutdown; later writes fail with BrokenPipe, reads go on", async () => {
  const { conn, sent } = connection();
  await conn.write(bytes(3));
  await conn.closeWrite();
  await conn.closeWrite();
  assert.equal(conn.state, "writeShut");
  assert.deepEqual(sent, ["data 3", "shutdown"]);
  await assert.rejects(conn.write(bytes(1)), BrokenPipe);
  conn.receive(bytes(2));
  assert.equal(await conn.read(new Uint8Array(8)), 2);
  conn.remoteShutdown();
  assert.equal(conn.state, "bothShut");
  assert.equal(await conn.read(new Uint8Array(8)), null);
  conn.close();
  assert.deepEqual(sent, ["data 3", "shutdown", "closed", "release"]);
});

Deno.test("a peer's SocketShutdown ends reads after the buffered bytes; writes go on", async () => {
  const { conn, sent } = connection();
  conn.receive(bytes(5));
  conn.remoteShutdown();
  assert.equal(conn.state, "readShut");
  conn.receive(bytes(5));
  assert.equal(await conn.read(new Uint8Array(8)), 5, "bytes after the shutdown are dropped");
  assert.equal(await conn.read(new Uint8Array(8)), null);
  assert.equal(await conn.write(bytes(4)), 4);
  conn.close();
  assert.deepEqual(sent, ["data 4", "closed", "release"]);
});

Deno.test("a SocketClosed with a reason ends reads with null and fails writes with ConnectionReset", async () => {
  const { conn, sent } = connection();
  conn.receive(bytes(4));
  conn.remoteClosed(Reason.PeerDisconnected);
  assert.equal(conn.state, "readShut");
  assert.equal(await conn.read(new Uint8Array(8)), 4);
  assert.equal(await conn.read(new Uint8Array(8)), null);
  await assert.rejects(conn.write(bytes(1)), ConnectionReset);
  await conn.closeWrite();
  conn.close();
  assert.deepEqual(sent, ["release"], "nothing is sent for a connection the relay removed");
});

Deno.test("a normal SocketClosed fails writes with BrokenPipe", async () => {
  const { conn } = connection();
  conn.remoteClosed(Reason.Normal);
  await assert.rejects(conn.write(bytes(1)), BrokenPipe);
  assert.equal(await conn.read(new Uint8Array(8)), null);
  conn.close();
});

Deno.test("a lost link fails reads after the buffered bytes, unless the peer had ended its side", async (t) => {
  await t.step("mid-stream: buffered bytes, then ConnectionReset", async () => {
    const { conn, sent } = connection();
    conn.receive(bytes(3));
    conn.linkLost(new Error("link down"));
    assert.equal(conn.state, "open");
    assert.equal(await conn.read(new Uint8Array(8)), 3);
    await assert.rejects(conn.read(new Uint8Array(8)), ConnectionReset);
    await assert.rejects(conn.write(bytes(1)), ConnectionReset);
    conn.close();
    assert.deepEqual(sent, ["release"]);
  });
  await t.step("after the peer's shutdown: end of stream, every byte was delivered", async () => {
    const { conn } = connection();
    conn.remoteShutdown();
    conn.linkLost(new Error("link down"));
    assert.equal(await conn.read(new Uint8Array(8)), null);
    await assert.rejects(conn.write(bytes(1)), ConnectionReset);
    conn.close();
  });
});

Deno.test("close() is idempotent, ends pending reads with null and fails writes with Closed", async () => {
  const { conn, sent } = connection();
  const pending = conn.read(new Uint8Array(8));
  conn.close();
  conn.close();
  assert.equal(await pending, null);
  await assert.rejects(conn.write(bytes(1)), Closed);
  await conn.closeWrite();
  assert.equal(conn.state, "closed");
  assert.deepEqual(sent, ["closed", "release"]);
});

Deno.test("a waiting read gets the bytes copied straight into its buffer", async () => {
  const { conn } = connection();
  const buffer = new Uint8Array(8);
  const reading = conn.read(buffer);
  conn.receive(new Uint8Array([1, 2, 3]));
  assert.equal(await reading, 3);
  assert.deepEqual([...buffer.subarray(0, 3)], [1, 2, 3]);
  conn.close();
});
