/**
 * The client's side of the version 2 handshake (docs/PROTOCOL.md §4) against
 * a relay the test plays frame by frame over real TCP: Hello, then the Proof
 * answering the Challenge (every signature checked with crypto/ed25519.ts
 * and protocol/handshake.ts), then VirtualIP; frames out of turn, refusals
 * of a join token, a Proof that cannot be signed, and what the client
 * exposes (relayId) and retries.
 */

import assert from "node:assert/strict";
import {
  AddressChanged,
  AlphaNetError,
  connect,
  generateIdentity,
  JoinTokenError,
  ProtocolError,
  Reason,
  RelayError,
  RelayIdMismatch,
  TimedOut,
} from "../../mod.ts";
import { identityFromSecret } from "../../client/identity.ts";
import { keyPairFromSeed, verify } from "../../crypto/ed25519.ts";
import { formatJoinToken } from "../../crypto/join_token.ts";
import {
  identityProofMessage,
  joinTokenProofMessage,
  legacyClaimMessage,
  PacketType,
  type ProofPacket,
  PROTOCOL_VERSION,
  reasonName,
} from "../../protocol/mod.ts";
import { STEP_MS, withTimeout } from "../_helpers/async.ts";
import { challenge, type ScriptedLink, ScriptedRelay } from "./_scripted_relay.ts";

const A = 0x530c04c8; // 83.12.4.200

/** A join token's text and the parts the relay would store: its id and public key. */
async function makeJoinToken(): Promise<{ text: string; id: Uint8Array; publicKey: Uint8Array }> {
  const id = crypto.getRandomValues(new Uint8Array(8));
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const { publicKey } = await keyPairFromSeed(seed, false);
  return { text: formatJoinToken({ id, seed }), id, publicKey };
}

/**
 * Starts a connect() with `options` on the relay's port that the test means to
 * fail, accepts its link and takes its Hello. `failure()` waits for what
 * connect() rejected with (null had it joined); the rejection is handled from
 * the start, so none is left unhandled while the test scripts the relay.
 */
async function startFailingJoin(
  relay: ScriptedRelay,
  options: Omit<Parameters<typeof connect>[0], "port">,
): Promise<{ link: ScriptedLink; failure: (what?: string) => Promise<unknown> }> {
  const outcome = connect({ port: relay.port, ...options }).then(() => null, (e) => e);
  const link = await relay.accept();
  await link.expect(PacketType.Hello, "Hello");
  return { link, failure: (what = "connect()") => withTimeout(outcome, STEP_MS, what) };
}

/**
 * Plays the relay's side of a whole join on `link`: takes the Hello, sends a
 * Challenge of relay id `fill`, takes the Proof and assigns `address`.
 * Returns the Proof.
 */
async function admit(
  link: ScriptedLink,
  fill = 0x11,
  what = "",
  address = A,
): Promise<ProofPacket> {
  await link.expect(PacketType.Hello, `Hello${what}`);
  await link.send(challenge(fill));
  const proof = await link.expect(PacketType.Proof, `Proof${what}`);
  await link.send({ type: PacketType.VirtualIP, address });
  return proof;
}

Deno.test("handshake: Hello(2), a Proof signed by the Identity for this relay and nonce, then VirtualIP", async () => {
  await using relay = new ScriptedRelay();
  const identity = await generateIdentity();
  const joining = connect({ port: relay.port, identity, reconnect: false });
  const link = await relay.accept();
  const hello = await link.expect(PacketType.Hello, "Hello");
  assert.deepEqual(hello, { type: PacketType.Hello, version: PROTOCOL_VERSION });
  const sent = challenge(0x42);
  await link.send(sent);
  const proof = await link.expect(PacketType.Proof, "Proof");
  assert.ok(proof.identity !== null);
  assert.deepEqual(proof.identity.publicKey, identity.publicKey);
  assert.equal(proof.joinToken, null);
  assert.equal(proof.legacyClaim, null);
  const message = identityProofMessage(sent, identity.publicKey);
  assert.ok(await verify(proof.identity.publicKey, proof.identity.signature, message));
  // Bound to this nonce: the same signature fails for another link's.
  const other = identityProofMessage(challenge(0x42), identity.publicKey);
  assert.ok(!(await verify(proof.identity.publicKey, proof.identity.signature, other)));
  await link.send({ type: PacketType.VirtualIP, address: A });
  await using net = await withTimeout(joining, STEP_MS, "connect()");
  assert.equal(net.virtualIp, "83.12.4.200");
  assert.equal(net.relayId, "42".repeat(32));
});

Deno.test("handshake: without an identity the Proof is empty (flags 0)", async () => {
  await using relay = new ScriptedRelay();
  const joining = connect({ port: relay.port, reconnect: false });
  const link = await relay.accept();
  const proof = await admit(link);
  assert.deepEqual(proof, {
    type: PacketType.Proof,
    identity: null,
    joinToken: null,
    legacyClaim: null,
  });
  await link.send({ type: PacketType.VirtualIP, address: A });
  await using _net = await withTimeout(joining, STEP_MS, "connect()");
});

Deno.test("handshake: a secret signs with its derived key and claims its version 1 address", async () => {
  await using relay = new ScriptedRelay();
  const secret = "a version 1 secret of some length";
  const joining = connect({ port: relay.port, identity: secret, reconnect: false });
  const link = await relay.accept();
  await link.expect(PacketType.Hello, "Hello");
  const sent = challenge();
  await link.send(sent);
  const proof = await link.expect(PacketType.Proof, "Proof");
  const derived = await identityFromSecret(secret);
  assert.ok(proof.identity !== null && proof.legacyClaim !== null);
  assert.deepEqual(proof.identity.publicKey, derived.publicKey);
  assert.ok(
    await verify(
      derived.publicKey,
      proof.identity.signature,
      identityProofMessage(sent, derived.publicKey),
    ),
  );
  // What the version 1 relay stored was SHA-256(secret): the tag is its hash, the MAC its key.
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret)),
  );
  const tag = new Uint8Array(await crypto.subtle.digest("SHA-256", hash));
  assert.deepEqual(proof.legacyClaim.tag, tag);
  const key = await crypto.subtle.importKey("raw", hash, { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
  ]);
  const legacy = legacyClaimMessage(sent, derived.publicKey, tag);
  assert.ok(await crypto.subtle.verify("HMAC", key, new Uint8Array(proof.legacyClaim.mac), legacy));
  await link.send({ type: PacketType.VirtualIP, address: A });
  await using _net = await withTimeout(joining, STEP_MS, "connect()");
});

Deno.test("handshake: a join token signs for this identity, or for none", async (t) => {
  for (const withIdentity of [true, false]) {
    await t.step(withIdentity ? "with an identity" : "without an identity", async () => {
      await using relay = new ScriptedRelay();
      const token = await makeJoinToken();
      const identity = withIdentity ? await generateIdentity() : undefined;
      const joining = connect({
        port: relay.port,
        identity,
        joinToken: token.text,
        reconnect: false,
      });
      const link = await relay.accept();
      await link.expect(PacketType.Hello, "Hello");
      const sent = challenge();
      await link.send(sent);
      const proof = await link.expect(PacketType.Proof, "Proof");
      assert.ok(proof.joinToken !== null);
      assert.deepEqual(proof.joinToken.id, token.id);
      const message = joinTokenProofMessage(sent, identity?.publicKey ?? null, token.id);
      assert.ok(await verify(token.publicKey, proof.joinToken.signature, message));
      assert.equal(proof.identity === null, !withIdentity);
      // The token's secret never crosses the wire.
      const seedText = token.text.split(".")[2];
      assert.ok(!JSON.stringify(proof).includes(seedText));
      await link.send({ type: PacketType.VirtualIP, address: A });
      await using _net = await withTimeout(joining, STEP_MS, "connect()");
    });
  }
});

Deno.test("handshake: a VirtualIP before the Proof is a protocol violation", async () => {
  await using relay = new ScriptedRelay();
  const { link, failure } = await startFailingJoin(relay, {
    identity: await generateIdentity(),
    reconnect: false,
  });
  await link.send({ type: PacketType.VirtualIP, address: A });
  const error = await failure("connect() to fail");
  assert.ok(error instanceof ProtocolError, String(error));
  assert.equal(error.reason, Reason.UnexpectedPacket);
  await link.expectEnd("the client to close its link");
});

Deno.test("handshake: a second Challenge is a protocol violation", async () => {
  await using relay = new ScriptedRelay();
  const { link, failure } = await startFailingJoin(relay, {
    identity: await generateIdentity(),
    reconnect: false,
  });
  await link.send(challenge(), challenge());
  const error = await failure("connect() to fail");
  assert.ok(error instanceof ProtocolError, String(error));
  assert.equal(error.reason, Reason.UnexpectedPacket);
});

Deno.test("handshake: after the Proof anything but VirtualIP or Error is a protocol violation", async (t) => {
  const frames = [
    { type: PacketType.Ping, nonce: 1 },
    { type: PacketType.Pong, nonce: 1 },
    challenge(),
    {
      type: PacketType.SocketStatusRequest,
      requestId: 1,
      source: A,
      destination: A,
      destinationPort: 80,
    },
  ] as const;
  for (const frame of frames) {
    await t.step(`type 0x${frame.type.toString(16)}`, async () => {
      await using relay = new ScriptedRelay();
      const { link, failure } = await startFailingJoin(relay, { reconnect: false });
      await link.send(challenge());
      await link.expect(PacketType.Proof, "Proof");
      await link.send(frame);
      const error = await failure();
      assert.ok(error instanceof ProtocolError, String(error));
      assert.equal(error.reason, Reason.UnexpectedPacket);
    });
  }
});

Deno.test("handshake: each join token refusal is a JoinTokenError that says what to do", async (t) => {
  const cases: [Reason, RegExp][] = [
    [
      Reason.JoinTokenRequired,
      /only with a join token: ask its operator for one and pass it as joinToken/,
    ],
    [Reason.JoinTokenInvalid, /does not know this join token, or it was revoked/],
    [
      Reason.JoinTokenUsedUp,
      /used as many times as it allows: ask the relay's operator for a new one/,
    ],
    [Reason.JoinTokenExpired, /has expired: ask the relay's operator for a new one/],
  ];
  for (const [reason, advice] of cases) {
    await t.step(reasonName(reason), async () => {
      await using relay = new ScriptedRelay();
      const { link, failure } = await startFailingJoin(relay, {
        identity: await generateIdentity(),
      });
      await link.send(challenge());
      await link.expect(PacketType.Proof, "Proof");
      await link.send({ type: PacketType.Error, reason, message: "refused" });
      const error = await failure();
      assert.ok(error instanceof JoinTokenError, String(error));
      assert.ok(error instanceof RelayError);
      assert.equal(error.reason, reason);
      assert.match(
        error.message,
        /^Cannot join relay: the relay closed the link with JoinToken\w+: refused; /,
      );
      assert.match(error.message, advice);
    });
  }
});

Deno.test("handshake: a Proof the keys will not sign ends the join with a clear error, sending nothing", async () => {
  await using relay = new ScriptedRelay();
  const { link, failure } = await startFailingJoin(relay, {
    identity: await generateIdentity(),
    reconnect: false,
  });
  // WebCrypto refusing to sign (a key gone bad, a broken provider): the only way to make it fail.
  const sign = crypto.subtle.sign;
  crypto.subtle.sign = () => Promise.reject(new DOMException("the key refused", "OperationError"));
  try {
    await link.send(challenge());
    const error = await failure();
    assert.ok(error instanceof AlphaNetError, String(error));
    assert.match(
      error.message,
      /^Cannot join relay: the Proof could not be signed with this client's keys: the key refused$/,
    );
  } finally {
    crypto.subtle.sign = sign;
  }
  await link.expectEnd("the client to close without a Proof");
});

Deno.test("handshake: no Challenge within handshakeTimeoutMs fails with TimedOut", async () => {
  await using relay = new ScriptedRelay();
  const { failure } = await startFailingJoin(relay, { handshakeTimeoutMs: 200, reconnect: false });
  const error = await failure();
  assert.ok(error instanceof TimedOut, String(error));
  assert.match(error.message, /^Cannot join relay: no VirtualIP within 200 ms$/);
});

Deno.test("handshake: bad options throw before any connection", async () => {
  // Nothing listens here: had the client dialed, it would fail with ConnectionRefused instead.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  await assert.rejects(connect({ port, identity: "too short" }), RangeError);
  await assert.rejects(connect({ port, identity: new Uint8Array(257) }), RangeError);
  await assert.rejects(connect({ port, joinToken: "anj1.nothex.x" }), SyntaxError);
  // A relayId must be exactly the 64 lowercase hex digits AlphaNetClient.relayId shows.
  for (const relayId of ["", "ab".repeat(31), "ab".repeat(33), "AB".repeat(32), "g".repeat(64)]) {
    await assert.rejects(
      connect({ port, relayId }),
      (e) => e instanceof RangeError && /^Cannot connect: relayId /.test(e.message),
      JSON.stringify(relayId),
    );
  }
  await assert.rejects(connect({ port, relayId: 42 as never }), RangeError);
  const token = await makeJoinToken();
  await assert.rejects(connect({ port, joinToken: token.text.slice(0, -1) }), SyntaxError);
  await assert.rejects(
    connect({ port, identity: { publicKey: new Uint8Array(32) } as never }),
    TypeError,
  );
  const hmac = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  await assert.rejects(
    connect({ port, identity: { publicKey: new Uint8Array(32), privateKey: hmac } }),
    TypeError,
  );
  // The message of a bad token never repeats it: it is a secret.
  const error = await connect({ port, joinToken: token.text.slice(0, -1) }).catch((e) => e);
  assert.ok(!error.message.includes(token.text.split(".")[2].slice(0, 20)));
  // Sizes at the bounds are fine: the error is the refused connection.
  await assert.rejects(connect({ port, identity: "x".repeat(16) }), Deno.errors.ConnectionRefused);
  await assert.rejects(connect({ port, relayId: "0a".repeat(32) }), Deno.errors.ConnectionRefused);
  await assert.rejects(
    connect({ port, identity: new Uint8Array(256) }),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("handshake: the same credentials and relayId on every link, token refusals not retried", async () => {
  await using relay = new ScriptedRelay();
  const identity = await generateIdentity();
  const token = await makeJoinToken();
  const joining = connect({
    port: relay.port,
    identity,
    joinToken: token.text,
    reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
  });
  const first = await relay.accept();
  const proof1 = await admit(first, 0x01);
  const net = await withTimeout(joining, STEP_MS, "connect()");
  assert.equal(net.relayId, "01".repeat(32));

  // The relay drops the link: the client reconnects and proves the same identity and token.
  const reconnecting = new Promise<void>((resolve) =>
    net.addEventListener("statechange", (e) => e.state === "reconnecting" && resolve())
  );
  await first.close();
  await withTimeout(reconnecting, STEP_MS, "the client to start reconnecting");
  const second = await relay.accept("the client to reconnect");
  await second.expect(PacketType.Hello, "Hello again");
  await second.send(challenge(0x01));
  const proof2 = await second.expect(PacketType.Proof, "second Proof");
  assert.deepEqual(proof2.identity?.publicKey, proof1.identity?.publicKey);
  assert.deepEqual(proof2.joinToken?.id, proof1.joinToken?.id);
  await second.send({ type: PacketType.VirtualIP, address: A });
  const connected = new Promise<void>((resolve) =>
    net.addEventListener("statechange", (e) => e.state === "connected" && resolve())
  );
  await withTimeout(connected, STEP_MS, "the client to be back");
  assert.equal(net.relayId, "01".repeat(32));

  // A refused token on a reconnect ends the client: the same token would be refused again.
  await second.close();
  const third = await relay.accept("the client to reconnect again");
  await third.expect(PacketType.Hello, "Hello a third time");
  await third.send(challenge(0x01));
  await third.expect(PacketType.Proof, "third Proof");
  await third.send({ type: PacketType.Error, reason: Reason.JoinTokenExpired, message: "expired" });
  const ended = await withTimeout(net.closed, STEP_MS, "the client to end");
  assert.ok(ended instanceof JoinTokenError, String(ended));
  assert.equal(ended.reason, Reason.JoinTokenExpired);
  assert.equal(net.state, "closed");
  // Closed for good: no reconnect runs any more.
  await third.expectEnd("the client to close its link");
});

Deno.test("handshake: InvalidIdentity is not retried either", async () => {
  await using relay = new ScriptedRelay();
  const joining = connect({ port: relay.port, reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
  const first = await relay.accept();
  await admit(first);
  const net = await withTimeout(joining, STEP_MS, "connect()");
  await first.close();
  const second = await relay.accept("the client to reconnect");
  await second.expect(PacketType.Hello, "Hello again");
  await second.send(challenge());
  await second.expect(PacketType.Proof, "Proof again");
  await second.send({ type: PacketType.Error, reason: Reason.InvalidIdentity, message: "no" });
  const ended = await withTimeout(net.closed, STEP_MS, "the client to end");
  assert.ok(ended instanceof RelayError && ended.reason === Reason.InvalidIdentity, String(ended));
});

/** The message of a RelayIdMismatch: the Challenge showed `actual` where `pinned` was expected. */
function mismatchMessage(actual: string, pinned: string): string {
  return `Cannot join relay: its relay id is ${actual}, not the pinned ${pinned}: ` +
    "another relay may be relaying its challenge; check --server / relayId";
}

Deno.test("handshake: a pinned relayId that matches the Challenge joins", async () => {
  await using relay = new ScriptedRelay();
  const relayId = "5a".repeat(32);
  const joining = connect({ port: relay.port, identity: await generateIdentity(), relayId });
  await admit(await relay.accept(), 0x5a);
  await using net = await withTimeout(joining, STEP_MS, "connect()");
  assert.equal(net.relayId, relayId);
});

Deno.test("handshake: a Challenge from another relay id than the pinned one ends the join unsigned", async () => {
  await using relay = new ScriptedRelay();
  const pinned = "5a".repeat(32);
  const { link, failure } = await startFailingJoin(relay, {
    identity: await generateIdentity(),
    relayId: pinned,
    reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
  });
  await link.send(challenge(0x11));
  const error = await failure();
  assert.ok(error instanceof RelayIdMismatch, String(error));
  assert.ok(error instanceof AlphaNetError);
  assert.ok(!(error instanceof RelayError));
  assert.equal(error.expected, pinned);
  assert.equal(error.actual, "11".repeat(32));
  assert.equal(error.message, mismatchMessage("11".repeat(32), pinned));
  // Nothing signed crossed the wire: the link ends right after the Hello.
  await link.expectEnd("the client to close without a Proof");
});

Deno.test("handshake: a reconnect that reaches another relay id ends the client unsigned", async (t) => {
  for (const pinnedByOption of [false, true]) {
    await t.step(
      pinnedByOption ? "pinned by the relayId option" : "pinned at the first join",
      async () => {
        await using relay = new ScriptedRelay();
        const first = "01".repeat(32);
        const joining = connect({
          port: relay.port,
          identity: await generateIdentity(),
          relayId: pinnedByOption ? first : undefined,
          reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
        });
        const link1 = await relay.accept();
        await admit(link1, 0x01);
        const net = await withTimeout(joining, STEP_MS, "connect()");
        assert.equal(net.relayId, first);

        await link1.close();
        const link2 = await relay.accept("the client to reconnect");
        await link2.expect(PacketType.Hello, "Hello again");
        await link2.send(challenge(0x02));
        const ended = await withTimeout(net.closed, STEP_MS, "the client to end");
        assert.ok(ended instanceof RelayIdMismatch, String(ended));
        assert.equal(ended.message, mismatchMessage("02".repeat(32), first));
        assert.equal(net.state, "closed");
        assert.equal(net.relayId, first);
        await link2.expectEnd("the client to close without a Proof");
      },
    );
  }
});

Deno.test("handshake: the pinned relay assigning another virtual IP on reconnect ends the client with AddressChanged", async () => {
  await using relay = new ScriptedRelay();
  const joining = connect({ port: relay.port, reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
  const link1 = await relay.accept();
  await admit(link1, 0x01);
  const net = await withTimeout(joining, STEP_MS, "connect()");
  await link1.close();
  const link2 = await relay.accept("the client to reconnect");
  await admit(link2, 0x01, " again", 0x2d21020a); // 45.33.2.10
  const ended = await withTimeout(net.closed, STEP_MS, "the client to refuse the address");
  assert.ok(ended instanceof AddressChanged, String(ended));
  assert.equal(ended.expected, "83.12.4.200");
  assert.equal(ended.actual, "45.33.2.10");
  assert.equal(net.virtualIp, "83.12.4.200");
});
