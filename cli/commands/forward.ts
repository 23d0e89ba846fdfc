/**
 * `forward LOCALPORT VIP:VPORT`: a local TCP port that leads to a virtual
 * port (like `ssh -L`).
 *
 * @module
 */

import type { AlphaNetClient, VirtualConn } from "../../mod.ts";
import { parsePort } from "../../flags/port.ts";
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  formatHostPort,
  type HostPort,
  parseCommandLine,
  parseVipPort,
  relayName,
} from "../args.ts";
import type { Command } from "../command.ts";
import { requestFailure, RuntimeError, stateOf } from "../errors.ts";
import { EventLog } from "../log.ts";
import { closeGently } from "../pipe.ts";
import { clientEnded, openClient } from "../session.ts";
import { waitForSignal } from "../signals.ts";
import { Tunnels } from "../tunnels.ts";
import { FAIL_FAST_HELP } from "./expose.ts";

/** Local connections the kernel queues before `accept()`. */
const TCP_BACKLOG = 4096;

const USAGE = `Usage: alphanet forward LOCALPORT VIP:VPORT [--bind HOST] [--fail-fast] [flags]

Listens on local TCP 127.0.0.1:LOCALPORT (0 picks a free port) and pipes each
local connection to a new virtual connection to VIP:VPORT (like ssh -L), both
directions, with half-close passed on. Prints
"forwarding 127.0.0.1:LOCALPORT -> VIP:VPORT" once the relay is joined and
runs until SIGINT or SIGTERM (exit 0). If the relay is down at start or drops
later, it keeps trying. A local connection that cannot be forwarded is closed
cleanly at once, with one line on stderr naming the cause:
  forward: connection from HOST:PORT: cannot connect to VIP:VPORT: <why>
where <why> is "host is offline", "nothing listens there", "connection
denied", or "relay down (...)" (one line per outage).

Flags:
  --bind HOST            local interface to listen on (default 127.0.0.1)
${FAIL_FAST_HELP}

${COMMON_HELP}`;

/** What serving a local connection needs. */
interface Forwarding {
  /** The client, null until the relay is first joined. */
  net: AlphaNetClient | null;
  readonly target: HostPort;
  readonly tunnels: Tunnels;
  readonly log: EventLog;
  /** Whether this relay outage was reported already: one line per outage, not per connection. */
  downReported: boolean;
}

/** Opens a virtual connection to the target for `tcp` and splices them, or closes `tcp`. */
async function serve(tcp: Deno.TcpConn, forwarding: Forwarding): Promise<void> {
  const from = `${tcp.remoteAddr.hostname}:${tcp.remoteAddr.port}`;
  const where = formatHostPort(forwarding.target);
  const net = forwarding.net;
  // Refused at once: a request now would only wait for the link, up to the request time-out.
  if (net === null || net.state !== "connected") {
    if (!forwarding.downReported) {
      forwarding.downReported = true;
      const line = `cannot connect to ${where}: relay down ` +
        `(local connections are closed at once until it is back)`;
      forwarding.log.log("warn", "relay-down", `forward: connection from ${from}: ${line}`, {
        from,
        target: where,
        error: line,
      });
    }
    await closeGently(tcp);
    return;
  }
  let vconn: VirtualConn;
  try {
    vconn = await net.connect(forwarding.target);
  } catch (error) {
    const line = requestFailure(`connect to ${where}`, error, net.state === "connected");
    forwarding.log.log("warn", "connect-failed", `forward: connection from ${from}: ${line}`, {
      from,
      target: where,
      error: line,
    });
    await closeGently(tcp);
    return;
  }
  tcp.setNoDelay(true);
  forwarding.tunnels.add(tcp, vconn, from, where);
}

/** `forward`. */
export const forward: Command = {
  name: "forward",
  summary: "forward local TCP LOCALPORT to virtual VIP:VPORT (like ssh -L)",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine(args, USAGE, ["LOCALPORT", "VIP:VPORT"], {
      ...COMMON_OPTIONS,
      bind: { type: "string" },
      "fail-fast": { type: "boolean" },
    });
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const localPort = parsePort(positionals[0], "local port", { min: 0 });
    const target = parseVipPort(positionals[1], "target");
    const bind = values.bind ?? "127.0.0.1";
    const common = commonOptions(values);
    const log = new EventLog(common.logFormat, "forward");
    using stop = waitForSignal();
    // Bound first: a port in use is a mistake to report now, not after the relay is up.
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({
        hostname: bind,
        port: localPort,
        transport: "tcp",
        tcpBacklog: TCP_BACKLOG,
      });
    } catch (error) {
      throw new RuntimeError(
        `cannot listen on ${formatHostPort({ hostname: bind, port: localPort })}: ${
          stateOf(error)
        }`,
        { cause: error },
      );
    }
    const forwarding: Forwarding = {
      net: null,
      target,
      tunnels: new Tunnels("forward", log),
      log,
      downReported: false,
    };
    const accepting = (async (): Promise<void> => {
      try {
        for await (const tcp of listener) void serve(tcp, forwarding);
      } catch {
        // Closed on stop.
      }
    })();
    try {
      const net = await openClient(common, {
        reconnect: true,
        command: "forward",
        log,
        retryUntil: values["fail-fast"] ? undefined : stop.aborted,
      });
      if (net === null) return 0; // Stopped before the relay came up.
      forwarding.net = net;
      forwarding.downReported = false;
      net.addEventListener("statechange", (event) => {
        if (event.state === "connected") forwarding.downReported = false;
      });
      try {
        const local = formatHostPort({ hostname: bind, port: listener.addr.port });
        console.log(`forwarding ${local} -> ${formatHostPort(target)}`);
        const ended = await Promise.race([
          stop.signal.then(() => null),
          clientEnded(net, relayName(common)),
        ]);
        if (ended !== null) throw ended;
        return 0;
      } finally {
        listener.close();
        await accepting;
        await forwarding.tunnels.closeAll();
        await net.close();
      }
    } finally {
      try {
        listener.close();
      } catch {
        // Closed above.
      }
      await accepting;
    }
  },
};
