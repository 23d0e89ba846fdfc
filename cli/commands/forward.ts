/**
 * `forward LOCALPORT VIP:VPORT`: a local TCP port that leads to a virtual
 * port (like `ssh -L`).
 *
 * @module
 */

import type { AlphaNetClient, VirtualConn } from "../../mod.ts";
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  type HostPort,
  parseCommandLine,
  parsePort,
  parseVipPort,
} from "../args.ts";
import type { Command } from "../command.ts";
import { describe, RuntimeError } from "../errors.ts";
import { clientEnded, openClient } from "../session.ts";
import { waitForSignal } from "../signals.ts";
import { Tunnels } from "../tunnels.ts";

/** Local connections the kernel queues before `accept()`. */
const TCP_BACKLOG = 4096;

const USAGE = `Usage: alphanet forward LOCALPORT VIP:VPORT [flags]

Listens on local TCP 127.0.0.1:LOCALPORT (0 picks a free port) and pipes each
local connection to a new virtual connection to VIP:VPORT (like ssh -L), both
directions, with half-close passed on. Prints
"forwarding 127.0.0.1:LOCALPORT -> VIP:VPORT" when ready and runs until
SIGINT or SIGTERM (exit 0). If the relay drops, it reconnects; a local
connection whose virtual connection fails is closed and reported on stderr.

Flags:
  --bind HOST            local interface to listen on (default 127.0.0.1)

${COMMON_HELP}`;

/** Opens a virtual connection to `target` for `tcp` and splices them. */
async function serve(
  tcp: Deno.TcpConn,
  net: AlphaNetClient,
  target: HostPort,
  tunnels: Tunnels,
): Promise<void> {
  const from = `${tcp.remoteAddr.hostname}:${tcp.remoteAddr.port}`;
  let vconn: VirtualConn;
  try {
    vconn = await net.connect(target);
  } catch (error) {
    tcp.close();
    console.error(`forward: connection from ${from}: ${describe(error)}`);
    return;
  }
  tcp.setNoDelay(true);
  tunnels.add(tcp, vconn, `connection from ${from}`);
}

/** `forward`. */
export const forward: Command = {
  name: "forward",
  summary: "forward local TCP LOCALPORT to virtual VIP:VPORT (like ssh -L)",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine("forward", args, USAGE, ["LOCALPORT", "VIP:VPORT"], {
      ...COMMON_OPTIONS,
      bind: { type: "string" },
    });
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const localPort = parsePort(positionals[0], "local port", 0);
    const target = parseVipPort(positionals[1], "target");
    const bind = values.bind ?? "127.0.0.1";
    using stop = waitForSignal();
    const net = await openClient(commonOptions(values), { reconnect: true, command: "forward" });
    const tunnels = new Tunnels("forward");
    try {
      let listener: Deno.TcpListener;
      try {
        listener = Deno.listen({
          hostname: bind,
          port: localPort,
          transport: "tcp",
          tcpBacklog: TCP_BACKLOG,
        });
      } catch (error) {
        throw new RuntimeError(`cannot listen on ${bind}:${localPort}: ${describe(error)}`);
      }
      const accepting = (async (): Promise<void> => {
        try {
          for await (const tcp of listener) void serve(tcp, net, target, tunnels);
        } catch {
          // Closed on stop.
        }
      })();
      const host = bind.includes(":") ? `[${bind}]` : bind;
      console.log(
        `forwarding ${host}:${listener.addr.port} -> ${target.hostname}:${target.port}`,
      );
      const ended = await Promise.race([stop.signal.then(() => null), clientEnded(net)]);
      listener.close();
      await accepting;
      if (ended !== null) throw ended;
      return 0;
    } finally {
      await tunnels.closeAll();
      await net.close();
    }
  },
};
