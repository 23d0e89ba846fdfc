/**
 * `expose VPORT HOST:PORT`: serve a local TCP service on a virtual port
 * (like `ssh -R`).
 *
 * @module
 */

import type { VirtualListener } from "../../mod.ts";
import { parsePort } from "../../flags/port.ts";
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  formatHostPort,
  parseCommandLine,
  parseHostPort,
  relayName,
} from "../args.ts";
import type { Command } from "../command.ts";
import { requestFailure, RuntimeError } from "../errors.ts";
import { LocalDials } from "../local_dials.ts";
import { EventLog } from "../log.ts";
import { clientEnded, openClient } from "../session.ts";
import { waitForSignal } from "../signals.ts";
import { Tunnels } from "../tunnels.ts";

/** Shared with `forward`: what starting before the relay does. */
export const FAIL_FAST_HELP =
  `  --fail-fast            exit at once if the relay cannot be reached at start
                         (default: retry with the reconnect backoff, one line per
                         reason, so the command can start before the relay)`;

const USAGE = `Usage: alphanet expose VPORT HOST:PORT [--fail-fast] [flags]

Listens on virtual port VPORT and pipes each virtual connection to a new TCP
connection to HOST:PORT (like ssh -R), both directions, with half-close passed
on. Prints "exposing VIP:VPORT -> HOST:PORT" when ready and runs until SIGINT
or SIGTERM (exit 0). If the relay is down at start or drops later, it keeps
trying and keeps listening. A connection that HOST:PORT refuses is denied (the
other end sees "connection denied"). Each connection that fails is one line on
stderr: "expose: connection from VIP:PORT: cannot <action>: <why>".

Flags:
${FAIL_FAST_HELP}

${COMMON_HELP}`;

/** `expose`. */
export const expose: Command = {
  name: "expose",
  summary: "serve local TCP HOST:PORT on virtual port VPORT (like ssh -R)",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine(args, USAGE, ["VPORT", "HOST:PORT"], {
      ...COMMON_OPTIONS,
      "fail-fast": { type: "boolean" },
    });
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const vport = parsePort(positionals[0], "virtual port");
    const local = parseHostPort(positionals[1], "local service");
    const common = commonOptions(values);
    const log = new EventLog(common.logFormat, "expose");
    using stop = waitForSignal();
    const net = await openClient(common, {
      reconnect: true,
      command: "expose",
      log,
      retryUntil: values["fail-fast"] ? undefined : stop.aborted,
    });
    if (net === null) return 0; // Stopped before the relay came up.
    const tunnels = new Tunnels("expose", log);
    const dials = new LocalDials(local, "expose", log);
    try {
      let listener: VirtualListener;
      try {
        listener = net.listen({ port: vport, accept: (remote) => dials.dial(remote) });
      } catch (error) {
        // Listening needs no link to the relay: whatever failed, the library named it.
        throw new RuntimeError(requestFailure(`listen on port ${vport}`, error, true), {
          cause: error,
        });
      }
      const accepting = (async (): Promise<void> => {
        for await (const vconn of listener) {
          const from = `${vconn.remoteAddr.hostname}:${vconn.remoteAddr.port}`;
          const tcp = dials.take(vconn.remoteAddr);
          if (tcp === null) vconn.close(); // Its dial was dropped meanwhile.
          else tunnels.add(vconn, tcp, from, formatHostPort(local));
        }
      })();
      console.log(`exposing ${net.virtualIp}:${vport} -> ${formatHostPort(local)}`);
      const ended = await Promise.race([
        stop.signal.then(() => null),
        clientEnded(net, relayName(common)),
      ]);
      listener.close();
      await accepting.catch(() => {});
      if (ended !== null) throw ended;
      return 0;
    } finally {
      dials.closeAll();
      await tunnels.closeAll();
      await net.close();
    }
  },
};
