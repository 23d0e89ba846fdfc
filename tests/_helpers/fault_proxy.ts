/**
 * A TCP forwarder on 127.0.0.1 that a test can break in the two ways a
 * network path fails: cut (both ends of each forwarded connection close, what
 * a broken path between two relays looks like to them) or freeze (every
 * connection, old and new, stays open and nothing passes either way, what a
 * black-holed path or a frozen server looks like: no reset, no close, no
 * answer, until the test thaws or closes it).
 */

/** A running forwarder to one target port. */
export interface FaultProxy extends AsyncDisposable {
  /** The port it listens on. */
  readonly port: number;
  /** Connections it forwards (or holds, frozen) now. */
  readonly open: number;
  /** Connections it has accepted since it started. */
  readonly accepted: number;
  /** Closes every forwarded connection; new ones are still accepted. */
  cut(): void;
  /** Stops forwarding: bytes wait in the sockets, which stay open. */
  freeze(): void;
  /** Forwards again what waited and what comes. */
  thaw(): void;
  /** Stops listening and closes every connection; resolves once its tasks ended. Idempotent. */
  close(): Promise<void>;
}

/** The two sockets of one forwarded connection: the test's side, then the target's. */
type Pair = readonly [Deno.Conn, Deno.Conn];

/**
 * Forwards connections on a free loopback port to 127.0.0.1:`targetPort`
 * (a function: read at each connection, for a target that listens only
 * once the proxy's port is known).
 */
export function startFaultProxy(targetPort: number | (() => number)): FaultProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs = new Set<Pair>();
  const tasks = new Set<Promise<void>>();
  let thawed = null as PromiseWithResolvers<void> | null;
  let closed = false;
  let accepted = 0;
  const closePair = (pair: Pair) => {
    if (!pairs.delete(pair)) return;
    for (const conn of pair) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
  };
  const track = (task: Promise<void>) => {
    tasks.add(task);
    task.finally(() => tasks.delete(task));
  };
  /** Resolves once the proxy is not frozen (at once if it is not). */
  const whileFrozen = async (): Promise<void> => {
    for (let frozen = thawed; frozen !== null; frozen = thawed) await frozen.promise;
  };
  const pump = async (from: Deno.Conn, to: Deno.Conn, pair: Pair) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        await whileFrozen();
        const count = await from.read(buffer);
        if (count === null) break;
        await whileFrozen();
        let at = 0;
        while (at < count) at += await to.write(buffer.subarray(at, count));
      }
    } catch {
      // Cut or closed by the test, or by the other side.
    }
    closePair(pair);
  };
  track((async () => {
    try {
      for await (const inbound of listener) {
        accepted++;
        let outbound: Deno.Conn;
        try {
          const port = typeof targetPort === "number" ? targetPort : targetPort();
          outbound = await Deno.connect({ hostname: "127.0.0.1", port });
        } catch {
          inbound.close();
          continue;
        }
        const pair: Pair = [inbound, outbound];
        pairs.add(pair);
        // Connected while close() ran: nobody else will close this pair.
        if (closed) {
          closePair(pair);
          continue;
        }
        track(pump(inbound, outbound, pair));
        track(pump(outbound, inbound, pair));
      }
    } catch {
      // Closed.
    }
  })());
  const proxy: FaultProxy = {
    port: (listener.addr as Deno.NetAddr).port,
    get open() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    cut(): void {
      for (const pair of [...pairs]) closePair(pair);
    },
    freeze(): void {
      thawed ??= Promise.withResolvers<void>();
    },
    thaw(): void {
      const waiting = thawed;
      thawed = null;
      waiting?.resolve();
    },
    async close(): Promise<void> {
      if (!closed) {
        closed = true;
        try {
          listener.close();
        } catch {
          // Closed already.
        }
        proxy.cut();
        proxy.thaw();
      }
      while (tasks.size > 0) await Promise.allSettled([...tasks]);
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}
