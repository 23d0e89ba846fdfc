/**
 * `expose VPORT HOST:PORT`: serve a local TCP service on a virtual port
 * (like `ssh -R`).
 *
 * @module
 */

import type { VirtualConn, VirtualListener } from "../../mod.ts";
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  type HostPort,
  parseCommandLine,
  parseHostPort,
  parsePort,
} from "../args.ts";
import type { Command } from "../command.ts";
import { describe, RuntimeError } from "../errors.ts";
import { clientEnded, openClient } from "../session.ts";
import { waitForSignal } from "../signals.ts";
import { Tunnels } from "../tunnels.ts";

const USAGE = `Usage: alphanet expose VPORT HOST:PORT [flags]

Listens on virtual port VPORT and pipes each accepted virtual connection to a
new TCP connection to HOST:PORT (like ssh -R), both directions, with
half-close passed on. Prints "exposing VIP:VPORT -> HOST:PORT" when ready and
runs until SIGINT or SIGTERM (exit 0). If the relay drops, it reconnects and
keeps listening. A connection that HOST:PORT refuses is closed and reported on
stderr.

${COMMON_HELP}`;

/** Connects `vconn` to a new TCP connection to `local` and splices them. */
async function serve(vconn: VirtualConn, local: HostPort, tunnels: Tunnels): Promise<void> {
  const from = `${vconn.remoteAddr.hostname}:${vconn.remoteAddr.port}`;
  let tcp: Deno.TcpConn;
  try {
    tcp = await Deno.connect({ hostname: local.hostname, port: local.port, transport: "tcp" });
  } catch (error) {
    vconn.close();
    console.error(
      `expose: connection from ${from}: cannot connect to ${local.hostname}:${local.port}: ${
        describe(error)
      }`,
    );
    return;
  }
  tcp.setNoDelay(true);
  tunnels.add(vconn, tcp, `connection from ${from}`);
}

/** `expose`. */
export const expose: Command = {
  name: "expose",
  summary: "serve local TCP HOST:PORT on virtual port VPORT (like ssh -R)",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine("expose", args, USAGE, ["VPORT", "HOST:PORT"], COMMON_OPTIONS);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const vport = parsePort(positionals[0], "virtual port");
    const local = parseHostPort(positionals[1], "local service");
    using stop = waitForSignal();
    const net = await openClient(commonOptions(values), { reconnect: true, command: "expose" });
    const tunnels = new Tunnels("expose");
    try {
      let listener: VirtualListener;
      try {
        listener = net.listen({ port: vport });
      } catch (error) {
        throw new RuntimeError(describe(error), { cause: error });
      }
      const accepting = (async (): Promise<void> => {
        for await (const vconn of listener) void serve(vconn, local, tunnels);
      })();
      console.log(`exposing ${net.virtualIp}:${vport} -> ${local.hostname}:${local.port}`);
      const ended = await Promise.race([stop.signal.then(() => null), clientEnded(net)]);
      listener.close();
      await accepting.catch(() => {});
      if (ended !== null) throw ended;
      return 0;
    } finally {
      await tunnels.closeAll();
      await net.close();
    }
  },
};
