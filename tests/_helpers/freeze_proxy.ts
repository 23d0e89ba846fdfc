/**
 * A TCP forwarder on 127.0.0.1 that a test can freeze: every connection,
 * old and new, stays open and nothing passes either way, what a black-holed
 * path or a frozen server looks like to a client (no reset, no close, no
 * answer), until the test thaws or closes it.
 */

/** A running forwarder to one target port. */
export interface FreezeProxy extends AsyncDisposable {
  /** The port it listens on. */
  readonly port: number;
  /** Connections it forwards (or holds, frozen) now. */
  readonly open: number;
  /** Connections it has accepted since it started. */
  readonly accepted: number;
  /** Stops forwarding: bytes wait in the sockets, which stay open. */
  freeze(): void;
  /** Forwards again what waited and what comes. */
  thaw(): void;
  /** Stops listening and closes every connection; resolves once its tasks ended. */
  close(): Promise<void>;
}

/** Forwards connections on a free loopback port to 127.0.0.1:`targetPort`. */
export function startFreezeProxy(targetPort: number): FreezeProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let thawed = null as PromiseWithResolvers<void> | null;
  let closed = false;
  let accepted = 0;
  const closeConn = (conn: Deno.Conn) => {
    if (!conns.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // Closed already.
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
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
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
      // Closed by the test, or by the other side.
    }
    closeConn(from);
    closeConn(to);
  };
  track((async () => {
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
        conns.add(inbound);
        conns.add(outbound);
        if (closed) {
          closeConn(inbound);
          closeConn(outbound);
          continue;
        }
        track(pump(inbound, outbound));
        track(pump(outbound, inbound));
      }
    } catch {
      // Closed.
    }
  })());
  const proxy: FreezeProxy = {
    port: (listener.addr as Deno.NetAddr).port,
    get open() {
      return conns.size;
    },
    get accepted() {
      return accepted;
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
        for (const conn of [...conns]) closeConn(conn);
        proxy.thaw();
      }
      while (tasks.size > 0) await Promise.allSettled([...tasks]);
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}
