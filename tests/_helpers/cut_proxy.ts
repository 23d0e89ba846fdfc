/**
 * A TCP forwarder on 127.0.0.1 whose connections a test can cut: what a
 * broken network path between two relays looks like to them (both ends of
 * each forwarded connection close).
 */

/** A running forwarder to one target port. */
export interface CutProxy extends AsyncDisposable {
  /** The port it listens on. */
  readonly port: number;
  /** Connections it forwards now. */
  readonly open: number;
  /** Connections it has accepted since it started. */
  readonly accepted: number;
  /** Closes every forwarded connection; new ones are still accepted. */
  cut(): void;
  /** Stops listening and closes everything. */
  close(): Promise<void>;
}

/** Forwards connections on a free loopback port to 127.0.0.1:`targetPort`. */
export function startCutProxy(targetPort: number): CutProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs = new Set<[Deno.Conn, Deno.Conn]>();
  const pumps = new Set<Promise<void>>();
  let accepted = 0;
  const closePair = (pair: [Deno.Conn, Deno.Conn]) => {
    if (!pairs.delete(pair)) return;
    for (const conn of pair) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
  };
  const pump = async (from: Deno.Conn, to: Deno.Conn, pair: [Deno.Conn, Deno.Conn]) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const count = await from.read(buffer);
        if (count === null) break;
        let at = 0;
        while (at < count) at += await to.write(buffer.subarray(at, count));
      }
    } catch {
      // Cut, or the other side closed.
    }
    closePair(pair);
  };
  const accepting = (async () => {
    try {
      for await (const inbound of listener) {
        accepted++;
        let outbound: Deno.Conn;
        try {
          outbound = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
        } catch {
          inbound.close();
          continue;
        }
        const pair: [Deno.Conn, Deno.Conn] = [inbound, outbound];
        pairs.add(pair);
        for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
          const running = pump(from, to, pair).finally(() => pumps.delete(running));
          pumps.add(running);
        }
      }
    } catch {
      // Closed.
    }
  })();
  const proxy: CutProxy = {
    port: (listener.addr as Deno.NetAddr).port,
    get open() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    cut: () => {
      for (const pair of [...pairs]) closePair(pair);
    },
    close: async () => {
      listener.close();
      await accepting;
      proxy.cut();
      await Promise.all(pumps);
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}
