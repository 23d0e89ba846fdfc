import assert from "node:assert/strict";
import { PacketType } from "../../protocol/packet_type.ts";
import { Reason } from "../../protocol/reason.ts";
import { waitUntil, withTimeout } from "../_helpers/async.ts";
import {
  meshKey,
  type RecordingPeer,
  startTestRelay,
  TestDirectoryHub,
  type TestRelay,
} from "./_mesh_pair.ts";

const C = 0x0a00_0001; // a client of relay A
const X = 0x0a00_0002; // a client of relay B
const WINDOW = 64 * 1024;

async function pair(): Promise<{ a: TestRelay; b: TestRelay; close(): Promise<void> }> {
  const hub = new TestDirectoryHub();
  const key = meshKey();
  const a = await startTestRelay(hub, key);
  const b = await startTestRelay(hub, key);
  return { a, b, close: () => Promise.all([a.mesh.close(), b.mesh.close()]).then(() => {}) };
}

/** `c` connects to `x` (behind the other relay) and `x` accepts; returns both ends' ids. */
async function openConnection(
  c: RecordingPeer,
  x: RecordingPeer,
  requestId = 1,
): Promise<{ cId: number; xId: number }> {
  c.dispatch!({
    type: PacketType.SocketConnectionRequest,
    requestId,
    connectionId: 0,
    source: c.address,
    sourcePort: 50_000 + requestId,
    destination: x.address,
    destinationPort: 80,
    window: WINDOW,
  });
  const asked = await x.next(PacketType.SocketConnectionRequest, "the connect at X");
  assert.equal(asked.source, c.address);
  assert.equal(asked.destinationPort, 80);
  assert.ok(asked.connectionId > 0);
  assert.ok(asked.window > 0 && asked.window <= WINDOW);
  x.dispatch!({
    type: PacketType.SocketConnectionResponse,
    requestId: asked.requestId,
    connectionId: asked.connectionId,
    accepted: true,
    window: WINDOW,
  });
  const answer = await c.next(PacketType.SocketConnectionResponse, "the accept at C");
  assert.equal(answer.requestId, requestId);
  assert.equal(answer.accepted, true);
  assert.ok(answer.window > 0);
  return { cId: answer.connectionId, xId: asked.connectionId };
}

Deno.test("relay link: a connection between clients of two relays carries data, credit, shutdown and close both ways", async () => {
  const { a, b, close } = await pair();
  try {
    const c = a.client(C);
    const x = b.client(X);
    const { cId, xId } = await openConnection(c, x);
    assert.equal(a.mesh.linkCount, 1);
    assert.equal(a.router.onlineCount, 1, "a remote client is not counted as this relay's");

    c.dispatch!({
      type: PacketType.ArbitraryData,
      connectionId: cId,
      payload: new Uint8Array([1, 2, 3]),
    });
    const atX = await x.next(PacketType.ArbitraryData);
    assert.equal(atX.connectionId, xId);
    assert.deepEqual([...atX.payload], [1, 2, 3]);

    x.dispatch!({
      type: PacketType.ArbitraryData,
      connectionId: xId,
      payload: new Uint8Array([9]),
    });
    const atC = await c.next(PacketType.ArbitraryData);
    assert.equal(atC.connectionId, cId);
    assert.deepEqual([...atC.payload], [9]);

    x.dispatch!({ type: PacketType.WindowUpdate, connectionId: xId, increment: 3 });
    const grant = await c.next(PacketType.WindowUpdate);
    assert.equal(grant.connectionId, cId);
    assert.equal(grant.increment, 3);

    c.dispatch!({ type: PacketType.SocketShutdown, connectionId: cId });
    assert.equal((await x.next(PacketType.SocketShutdown)).connectionId, xId);

    x.dispatch!({ type: PacketType.SocketClosed, connectionId: xId, reason: Reason.Normal });
    const closed = await c.next(PacketType.SocketClosed);
    assert.equal(closed.connectionId, cId);
    assert.equal(closed.reason, Reason.Normal);
    await waitUntil(() => a.router.connectionsOpen === 0, "A forgets the connection");
  } finally {
    await close();
  }
});

Deno.test("relay link: status and echo requests reach a client of the other relay and come back", async () => {
  const { a, b, close } = await pair();
  try {
    const c = a.client(C);
    const x = b.client(X);
    c.dispatch!({
      type: PacketType.SocketStatusRequest,
      requestId: 7,
      source: C,
      destination: X,
      destinationPort: 22,
    });
    const status = await x.next(PacketType.SocketStatusRequest);
    assert.equal(status.source, C);
    x.dispatch!({
      type: PacketType.SocketStatusResponse,
      requestId: status.requestId,
      listening: true,
    });
    const answer = await c.next(PacketType.SocketStatusResponse);
    assert.deepEqual([answer.requestId, answer.listening], [7, true]);

    // And the other way, over the same link.
    x.dispatch!({ type: PacketType.EchoRequest, requestId: 3, source: X, destination: C });
    const echo = await c.next(PacketType.EchoRequest);
    c.dispatch!({ type: PacketType.EchoReply, requestId: echo.requestId });
    assert.equal((await x.next(PacketType.EchoReply)).requestId, 3);
    assert.equal(a.mesh.linkCount, 1);
    assert.equal(b.mesh.linkCount, 1, "one link per pair of relays");
  } finally {
    await close();
  }
});

Deno.test("relay link: an address no relay holds is Offline, and a refusal on the far relay keeps its reason", async () => {
  const { a, b, close } = await pair();
  try {
    const c = a.client(C);
    const x = b.client(X);
    c.dispatch!({
      type: PacketType.EchoRequest,
      requestId: 1,
      source: C,
      destination: 0x0a00_00ff,
    });
    const failed = await c.next(PacketType.RequestFailed);
    assert.deepEqual([failed.requestId, failed.reason], [1, Reason.Offline]);
    assert.equal(a.mesh.linkCount, 0, "no link is made for an address nobody holds");

    // X refuses the connection: the refusal crosses back as a refusal.
    c.dispatch!({
      type: PacketType.SocketConnectionRequest,
      requestId: 2,
      connectionId: 0,
      source: C,
      sourcePort: 40_000,
      destination: X,
      destinationPort: 81,
      window: WINDOW,
    });
    const asked = await x.next(PacketType.SocketConnectionRequest);
    x.dispatch!({
      type: PacketType.SocketConnectionResponse,
      requestId: asked.requestId,
      connectionId: 0,
      accepted: false,
      window: 0,
    });
    const refused = await c.next(PacketType.SocketConnectionResponse);
    assert.deepEqual([refused.requestId, refused.accepted], [2, false]);

    // X leaves its relay: C's next request is answered Offline by B, and A drops its peer for X.
    b.router.detach(x, Reason.PeerDisconnected);
    await waitUntil(() => a.router.peerAt(X) === undefined, "A hears that X left");
    c.dispatch!({ type: PacketType.EchoRequest, requestId: 3, source: C, destination: X });
    const gone = await c.next(PacketType.RequestFailed);
    assert.deepEqual([gone.requestId, gone.reason], [3, Reason.Offline]);
  } finally {
    await close();
  }
});

Deno.test("relay link: a client leaving its relay resets its cross-relay connections with PeerDisconnected", async () => {
  const { a, b, close } = await pair();
  try {
    const c = a.client(C);
    const x = b.client(X);
    const { cId } = await openConnection(c, x);
    b.router.detach(x, Reason.PeerDisconnected);
    const closed = await c.next(PacketType.SocketClosed);
    assert.deepEqual([closed.connectionId, closed.reason], [cId, Reason.PeerDisconnected]);
  } finally {
    await close();
  }
});

Deno.test("relay link: a broken link resets the connections crossing it, and the lower relay dials again", async () => {
  const { a, b, close } = await pair();
  try {
    const c = a.client(C);
    const x = b.client(X);
    const { cId, xId } = await openConnection(c, x);
    const linkOfA = a.mesh.linkTo(b.mesh.self.node)!;
    linkOfA.close("broken by the test");
    const atC = await c.next(PacketType.SocketClosed, "C's reset");
    assert.deepEqual([atC.connectionId, atC.reason], [cId, Reason.PeerDisconnected]);
    const atX = await x.next(PacketType.SocketClosed, "X's reset");
    assert.deepEqual([atX.connectionId, atX.reason], [xId, Reason.PeerDisconnected]);
    await waitUntil(
      () => a.mesh.linkCount === 1 && b.mesh.linkCount === 1,
      "the relays dial again",
    );
    // And the new link carries a new connection.
    await openConnection(c, x, 5);
  } finally {
    await close();
  }
});

Deno.test("relay link: a relay without the mesh key gets no link, and its requests find nobody", async () => {
  const hub = new TestDirectoryHub();
  const a = await startTestRelay(hub, meshKey());
  const b = await startTestRelay(hub, meshKey());
  try {
    const c = a.client(C);
    b.client(X);
    c.dispatch!({ type: PacketType.EchoRequest, requestId: 1, source: C, destination: X });
    const failed = await c.next(PacketType.RequestFailed);
    assert.equal(failed.reason, Reason.Offline);
    assert.equal(a.mesh.linkCount + b.mesh.linkCount, 0);
  } finally {
    await Promise.all([a.mesh.close(), b.mesh.close()]);
  }
});

Deno.test("relay link: a client that joins another relay is dropped by the one it left (takeover across relays)", async () => {
  const { a, b, close } = await pair();
  try {
    const old = a.client(X);
    // A later millisecond, so the join on B is the newer one whatever the node ids.
    const joinedAt = Date.now();
    await waitUntil(() => Date.now() > joinedAt, "the clock to move on");
    const newer = b.client(X);
    await waitUntil(() => old.closedWith !== null, "A drops its older link of X");
    assert.equal(old.closedWith, Reason.Replaced);
    assert.equal(newer.closedWith, null);
  } finally {
    await close();
  }
});

Deno.test("relay link: two joins of one client that cross leave exactly one of them, the newer", async () => {
  const hub = new TestDirectoryHub();
  const key = meshKey();
  const a = await startTestRelay(hub, key);
  const b = await startTestRelay(hub, key);
  try {
    // Both joined before either heard of the other: each hears the other's claim afterwards.
    const directories = hub.members.map((member) => member.directory);
    const claims: [number, string, number][] = [];
    for (const directory of directories) {
      directory.claim = (address, at) => {
        claims.push([
          address,
          directory === directories[0] ? a.mesh.self.node : b.mesh.self.node,
          at,
        ]);
      };
    }
    const onA = a.client(X);
    const onB = b.client(X);
    assert.equal(claims.length, 2);
    for (const [address, node, at] of claims) {
      const other = node === a.mesh.self.node ? directories[1] : directories[0];
      other.onClaim!(address, node, at);
    }
    const closed = [onA, onB].filter((peer) => peer.closedWith !== null);
    assert.equal(closed.length, 1, "exactly one of the two is replaced");
    assert.equal(closed[0].closedWith, Reason.Replaced);
    // The older join goes: by admission time, then (a tie within one ms) by node id.
    const [first, second] = claims;
    const aIsNewer = first[1] === a.mesh.self.node
      ? first[2] > second[2] || (first[2] === second[2] && first[1] > second[1])
      : second[2] > first[2] || (second[2] === first[2] && second[1] > first[1]);
    assert.equal(closed[0], aIsNewer ? onB : onA);
  } finally {
    await Promise.all([a.mesh.close(), b.mesh.close()]);
  }
});

Deno.test("relay link: a request routed by a stale lookup is Offline, and the asking relay forgets that peer", async () => {
  const { a, b, close } = await pair();
  try {
    const c = a.client(C);
    const x = b.client(X);
    await openConnection(c, x); // the link is up
    const stale = 0x0a00_0042; // B does not hold it: as if B's answer to a lookup was old
    assert.ok(a.mesh.linkTo(b.mesh.self.node)!.peerFor(stale) !== null);
    c.dispatch!({ type: PacketType.EchoRequest, requestId: 9, source: C, destination: stale });
    const failed = await c.next(PacketType.RequestFailed);
    assert.deepEqual([failed.requestId, failed.reason], [9, Reason.Offline]);
    await waitUntil(() => a.router.peerAt(stale) === undefined, "A forgets its peer for it");
  } finally {
    await close();
  }
});

Deno.test("relay link: answers for a remote peer this relay let go reach no one, and a new peer of that client starts clean", async () => {
  const { a, b, close } = await pair();
  try {
    const c = a.client(C);
    const x = b.client(X);
    c.dispatch!({ type: PacketType.EchoRequest, requestId: 1, source: C, destination: X });
    const first = await x.next(PacketType.EchoRequest);
    // A lets its peer for X go (as on a claim): C's request fails at once.
    void a.router.peerAt(X)!.close(Reason.Replaced, "test");
    const failed = await c.next(PacketType.RequestFailed);
    assert.deepEqual([failed.requestId, failed.reason], [1, Reason.Offline]);
    // X answers late; then C asks again through a new peer for X.
    x.dispatch!({ type: PacketType.EchoReply, requestId: first.requestId });
    c.dispatch!({ type: PacketType.EchoRequest, requestId: 2, source: C, destination: X });
    const second = await x.next(PacketType.EchoRequest);
    assert.equal(
      c.received.filter((packet) => packet.type === PacketType.EchoReply).length,
      0,
      "the late answer did not settle the new request",
    );
    x.dispatch!({ type: PacketType.EchoReply, requestId: second.requestId });
    const reply = await c.next(PacketType.EchoReply);
    assert.equal(reply.requestId, 2);
    assert.equal(c.received.filter((packet) => packet.type === PacketType.EchoReply).length, 0);
    assert.equal(a.mesh.linkCount, 1, "the link stays up");
  } finally {
    await close();
  }
});

Deno.test("relay link: closing a mesh that waits for a link it asked for ends at once", async () => {
  const hub = new TestDirectoryHub();
  const key = meshKey();
  const one = await startTestRelay(hub, key);
  const two = await startTestRelay(hub, key);
  const [lower, higher] = one.mesh.self.node < two.mesh.self.node ? [one, two] : [two, one];
  try {
    // The lower relay says yes to a dial request but never dials: the higher one waits for the link.
    hub.dialers.set(lower.mesh.self.node, () => Promise.resolve());
    const c = higher.client(C);
    lower.client(X);
    c.dispatch!({ type: PacketType.EchoRequest, requestId: 1, source: C, destination: X });
    await waitUntil(() => hub.dialRequests > 0, "the dial request");
    await withTimeout(higher.mesh.close(), 1_000, "the mesh to close without waiting for the link");
  } finally {
    await Promise.all([lower.mesh.close(), higher.mesh.close()]);
  }
});

Deno.test("relay link: idle sockets on the link port cannot keep relays from linking", async () => {
  const { a, b, close } = await pair();
  const idle: Deno.Conn[] = [];
  try {
    // More silent sockets than the port takes in its handshake, on both relays.
    for (const relay of [a, b]) {
      for (let i = 0; i < 20; i++) {
        idle.push(await Deno.connect({ hostname: "127.0.0.1", port: relay.mesh.addr.port }));
      }
    }
    const c = a.client(C);
    const x = b.client(X);
    c.dispatch!({ type: PacketType.EchoRequest, requestId: 1, source: C, destination: X });
    const asked = await x.next(PacketType.EchoRequest, "the echo across the relays");
    x.dispatch!({ type: PacketType.EchoReply, requestId: asked.requestId });
    assert.equal((await c.next(PacketType.EchoReply)).requestId, 1);
  } finally {
    for (const socket of idle) {
      try {
        socket.close();
      } catch {
        // The relay closed it already.
      }
    }
    await close();
  }
});
