/**
 * Per source IP limits on the real relay: links, links in their handshake,
 * and one request rate shared by all links of an IP; and a full relay makes
 * room for a new client by closing a link that never said Hello. The
 * attacking links come from 127.0.0.2 (a subprocess, see
 * fixtures/source_links.ts); the honest pair from 127.0.0.1 keeps echoing.
 */

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { PacketType, Reason, reasonName } from "../protocol/mod.ts";
import { STEP_MS, waitUntil, withTimeout } from "./_helpers/async.ts";
import { randomIdentity } from "./_helpers/bytes.ts";
import { startEchoPair } from "./_helpers/echo_pair.ts";
import { rawClient } from "./_helpers/raw_client.ts";
import { startRelay, type TestRelay } from "./_helpers/relay_fixture.ts";
import { readLinkToEnd } from "./_helpers/link_outcome.ts";

const FIXTURE = new URL("./fixtures/source_links.ts", import.meta.url).pathname;
const OTHER_SOURCE = "127.0.0.2";

/** Links from 127.0.0.2 in a subprocess: its output lines as they come, and a way to end it. */
interface SourceLinks {
  /** Waits until the subprocess printed `line`. */
  waitFor(line: string): Promise<void>;
  readonly lines: string[];
  close(): Promise<void>;
}

function openLinks(relay: TestRelay, steps: string[]): SourceLinks {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", `--allow-net=127.0.0.1,${OTHER_SOURCE}`, FIXTURE, String(relay.port)]
      .concat([OTHER_SOURCE, ...steps]),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  let waiters: (() => void)[] = [];
  const reading = (async () => {
    let rest = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      rest += text;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      for (const wake of waiters.splice(0)) wake();
    }
    for (const wake of waiters.splice(0)) wake();
  })();
  return {
    lines,
    async waitFor(line: string): Promise<void> {
      for (let i = 0; i < 1000 && !lines.includes(line); i++) {
        await withTimeout(
          new Promise<void>((resolve) => waiters.push(resolve)),
          STEP_MS,
          `"${line}" from the links of ${OTHER_SOURCE} (got ${JSON.stringify(lines)})`,
        );
      }
      assert.ok(lines.includes(line));
    },
    async close(): Promise<void> {
      await child.stdin.close().catch(() => {});
      await child.status;
      await reading;
      waiters = [];
    },
  };
}

Deno.test("one source IP gets ServerFull beyond --max-links-per-ip and --max-handshakes-per-ip; another IP's pair keeps echoing", async () => {
  const relay = await startRelay({ db: ":memory:", maxLinksPerIp: 3, maxHandshakesPerIp: 2 });
  const pair = await startEchoPair(relay.port);
  try {
    await pair.assertEchoes("before");
    // Three links join, the fourth is one link too many for 127.0.0.2.
    const joined = openLinks(relay, ["hello", "hello", "hello", "hello"]);
    try {
      await joined.waitFor("steps-done");
      for (const i of [0, 1, 2]) assert.ok(joined.lines.includes(`first ${i} VirtualIP`));
      assert.ok(joined.lines.includes("first 3 Error:ServerFull"), joined.lines.join(", "));
      await joined.waitFor("end 3");
      await pair.assertEchoes("with 127.0.0.2 at its link limit");
    } finally {
      await joined.close();
    }
    await waitUntil(() => relay.relay.linkCount === 2, "the relay to drop 127.0.0.2's links");
    // Links that never say Hello: two wait in their handshake, the rest are turned away.
    const bare = openLinks(relay, ["bare", "bare", "bare", "bare"]);
    try {
      await bare.waitFor("steps-done");
      await bare.waitFor("first 2 Error:ServerFull");
      await bare.waitFor("first 3 Error:ServerFull");
      await waitUntil(() => relay.relay.linkCount === 4, "two bare links held");
      assert.ok(!bare.lines.some((line) => /^first [01] /.test(line)), bare.lines.join(", "));
      await pair.assertEchoes("with 127.0.0.2 at its handshake limit");
      // 127.0.0.1 is not 127.0.0.2: a new client joins.
      const probe = await connect({ port: relay.port, identity: randomIdentity() });
      await probe.close();
    } finally {
      await bare.close();
    }
  } finally {
    await pair.close();
    await relay.close();
  }
});

Deno.test("a full relay closes its oldest link still in the handshake (ServerFull) to let a new client join", async () => {
  const relay = await startRelay({ db: ":memory:", maxClients: 4 });
  const pair = await startEchoPair(relay.port);
  const bare = [
    await Deno.connect({ hostname: "127.0.0.1", port: relay.port }),
    await Deno.connect({ hostname: "127.0.0.1", port: relay.port }),
  ];
  const outcomes = bare.map((conn) => readLinkToEnd(conn));
  try {
    await waitUntil(() => relay.relay.linkCount === 4, "the relay to be full");
    const newcomer = await withTimeout(
      connect({ port: relay.port, identity: randomIdentity(), reconnect: false }),
      STEP_MS,
      "a new client to join the full relay",
    );
    try {
      const oldest = await withTimeout(outcomes[0], STEP_MS, "the oldest bare link to close");
      assert.equal(reasonName(oldest.error!.reason), reasonName(Reason.ServerFull));
      assert.match(oldest.error!.message, /had not completed its handshake/);
      await pair.assertEchoes("after the eviction");
      // Now every link has joined but one: the next newcomer takes the last bare link's place.
      const second = await connect({
        port: relay.port,
        identity: randomIdentity(),
        reconnect: false,
      });
      await second.close();
      const next = await withTimeout(outcomes[1], STEP_MS, "the second bare link to close");
      assert.equal(reasonName(next.error!.reason), reasonName(Reason.ServerFull));
    } finally {
      await newcomer.close();
    }
  } finally {
    for (const conn of bare) {
      try {
        conn.close();
      } catch {
        // Closed by the relay already.
      }
    }
    await Promise.allSettled(outcomes);
    await pair.close();
    await relay.close();
  }
});

Deno.test("--max-requests-per-ip is shared by all links of one IP: two links each under their own burst get RateLimited together", async () => {
  // Burst 2 × 10 = 20 for the IP, while each link's own burst is the default 20,000.
  const relay = await startRelay({ db: ":memory:", maxRequestsPerIp: 10 });
  const a = await rawClient(relay.port);
  const b = await rawClient(relay.port);
  try {
    await a.handshake();
    await b.handshake();
    const answers = new Map<string, number>();
    for (const [client, first] of [[a, 1], [b, 100]] as const) {
      const requests = Array.from({ length: 15 }, (_, i) => ({
        type: PacketType.EchoRequest,
        requestId: first + i,
        source: client.address,
        destination: 0xc0000201, // nobody: Offline unless rate-limited first
      } as const));
      await client.send(...requests);
      for (let i = 0; i < 15; i++) {
        const answer = await client.expect(PacketType.RequestFailed, "an answer");
        const name = reasonName(answer.reason);
        answers.set(name, (answers.get(name) ?? 0) + 1);
      }
    }
    const limited = answers.get("RateLimited") ?? 0;
    assert.ok(limited >= 5, `30 requests against a burst of 20: ${JSON.stringify([...answers])}`);
    assert.ok((answers.get("Offline") ?? 0) >= 20);
  } finally {
    await a.close();
    await b.close();
    await relay.close();
  }
});
