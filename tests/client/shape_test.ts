// The public types in Deno's own shapes: these compile only while a VirtualConn is a Deno.Conn and
// a VirtualListener a Deno.Listener, without a cast. The test bodies check the same at run time
// on objects that no socket backs.

import assert from "node:assert/strict";
import {
  AddrInUse,
  type AlphaNetClient,
  AlphaNetError,
  BrokenPipe,
  Closed,
  ConnectionRefused,
  ConnectionReset,
  PeerTimeout,
  TimedOut,
  type VirtualAddr,
  type VirtualConn,
  type VirtualListener,
} from "../../mod.ts";
import { type ConnectionHost, VirtualConnImpl } from "../../client/virtual_conn_impl.ts";
import { VirtualListenerImpl } from "../../client/virtual_listener_impl.ts";
import { stubHost } from "./_stub_host.ts";

const local: VirtualAddr = { transport: "tcp", hostname: "83.12.4.200", port: 50000 };
const remote: VirtualAddr = { transport: "tcp", hostname: "45.33.2.10", port: 80 };

function describeConn(conn: Deno.Conn): string {
  const { hostname, port } = conn.remoteAddr as Deno.NetAddr;
  return `${conn.remoteAddr.transport}://${hostname}:${port}`;
}

function describeListener(listener: Deno.Listener): string {
  const { hostname, port } = listener.addr as Deno.NetAddr;
  return `${listener.addr.transport}://${hostname}:${port}`;
}

// Never called: proves at compile time, without a cast, what code written for Deno gets.
async function _typesOnly(net: AlphaNetClient): Promise<void> {
  const virtualConn: VirtualConn = await net.connect({ hostname: "45.33.2.10", port: 80 });
  const conn: Deno.Conn = virtualConn;
  const netConn: Deno.Conn<Deno.NetAddr> = virtualConn;
  const virtualListener: VirtualListener = net.listen({ port: 80 });
  const listener: Deno.Listener = virtualListener;
  const netListener: Deno.Listener<Deno.Conn<Deno.NetAddr>, Deno.NetAddr> = virtualListener;
  const addr: Deno.NetAddr = virtualListener.addr;
  using _conn = await net.connect({ hostname: "45.33.2.10", port: 80 });
  using _listener = net.listen({ port: 81 });
  using _net: Disposable = net;
  await using _asyncNet: AsyncDisposable = net;
  for await (const accepted of netListener) describeConn(accepted);
  describeConn(conn);
  describeConn(netConn);
  describeListener(listener);
  void addr;
}

function quietHost(): { sent: string[]; host: ConnectionHost } {
  const sent: string[] = [];
  return {
    sent,
    host: stubHost({
      sendData: () => void sent.push("data"),
      sendWindowUpdate: () => void sent.push("window"),
      sendShutdown: () => void sent.push("shutdown"),
      sendClosed: () => void sent.push("closed"),
      release: () => void sent.push("release"),
      refChanged: (conn: VirtualConnImpl) => void sent.push(conn.refd ? "ref" : "unref"),
    }),
  };
}

function connection(): { conn: VirtualConnImpl; sent: string[] } {
  const { host, sent } = quietHost();
  const conn = new VirtualConnImpl(host, {
    id: 1,
    localAddr: local,
    remoteAddr: remote,
    receiveWindow: 1024,
    maxReceiveWindow: 1024,
    sendWindow: 1024,
    outbound: true,
  });
  return { conn, sent };
}

Deno.test("a VirtualConn passes where a Deno.Conn is expected", () => {
  const { conn } = connection();
  assert.equal(describeConn(conn), "tcp://45.33.2.10:80");
  assert.equal(typeof conn[Symbol.dispose], "function");
  assert.ok(conn.readable instanceof ReadableStream);
  assert.ok(conn.writable instanceof WritableStream);
  conn.close();
});

Deno.test("using a VirtualConn closes it at the end of the scope", () => {
  const { conn, sent } = connection();
  {
    using _scoped = conn;
  }
  assert.equal(conn.state, "closed");
  assert.deepEqual(sent, ["closed", "release"]);
});

Deno.test("a VirtualConn's ref() and unref() report changes only", () => {
  const { conn, sent } = connection();
  conn.ref();
  conn.unref();
  conn.unref();
  conn.ref();
  assert.deepEqual(sent, ["unref", "ref"]);
  conn.close();
});

Deno.test("a VirtualListener passes where a Deno.Listener is expected, and using closes it", async () => {
  const events: string[] = [];
  const listener = new VirtualListenerImpl(local, 4, undefined, {
    closed: () => events.push("closed"),
    refChanged: (changed) => events.push(changed.refd ? "ref" : "unref"),
  });
  assert.equal(describeListener(listener), "tcp://83.12.4.200:50000");
  const iterator = listener[Symbol.asyncIterator]();
  assert.equal(iterator[Symbol.asyncIterator](), iterator, "an AsyncIterableIterator");
  listener.unref();
  listener.ref();
  {
    using _scoped = listener;
  }
  assert.deepEqual(events, ["unref", "ref", "closed"]);
  assert.deepEqual(await iterator.next(), { done: true, value: undefined });
});

Deno.test("each socket error passes Deno's own check and is still an AlphaNetError", async (t) => {
  const cases: [Error, new (message?: string) => Error][] = [
    [new ConnectionRefused("Cannot connect: refused"), Deno.errors.ConnectionRefused],
    [new ConnectionReset("Cannot read: reset"), Deno.errors.ConnectionReset],
    [new BrokenPipe("Cannot write: shut down"), Deno.errors.BrokenPipe],
    [new TimedOut("Cannot connect: no answer"), Deno.errors.TimedOut],
    [new PeerTimeout("Cannot keep the link: silent"), Deno.errors.TimedOut],
    [new AddrInUse("Cannot listen: in use"), Deno.errors.AddrInUse],
    [new Closed("Cannot write: the connection is closed"), Deno.errors.BadResource],
  ];
  for (const [error, deno] of cases) {
    await t.step(`${error.name} is a Deno.errors.${deno.name}`, () => {
      assert.ok(error instanceof deno);
      assert.ok(error instanceof AlphaNetError);
      assert.ok(error instanceof (error.constructor as ErrorConstructor));
      assert.equal(error.name, error.constructor.name);
    });
  }
  await t.step("Closed is no other socket error", () => {
    const closed = new Closed("Cannot accept: the listener is closed");
    assert.ok(closed instanceof Closed);
    assert.ok(!(closed instanceof ConnectionReset));
    assert.ok(!(closed instanceof Deno.errors.ConnectionReset));
    assert.ok(!(new ConnectionReset("Cannot read: reset") instanceof Closed));
  });
});

Deno.test("calls Deno refuses on a closed resource reject with a Closed that is a BadResource", async () => {
  const { conn } = connection();
  conn.close();
  const write = await conn.write(new Uint8Array(1)).catch((error: unknown) => error);
  assert.ok(write instanceof Closed, String(write));
  assert.ok(write instanceof Deno.errors.BadResource);
  assert.equal(write.message, "Cannot write: the connection is closed");
  // Unlike Deno, which throws BadResource here: a read after close() is the end of the stream.
  assert.equal(await conn.read(new Uint8Array(1)), null);

  const listener = new VirtualListenerImpl(local, 4, undefined, {
    closed: () => {},
    refChanged: () => {},
  });
  const pending = listener.accept().catch((error: unknown) => error);
  listener.close();
  for (const accepted of [await pending, await listener.accept().catch((error) => error)]) {
    assert.ok(accepted instanceof Closed, String(accepted));
    assert.ok(accepted instanceof Deno.errors.BadResource);
    assert.equal(accepted.message, "Cannot accept: the listener is closed");
  }
});
