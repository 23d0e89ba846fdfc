/**
 * `whoami`: prints this client's virtual IP (and, with `--json`, the relay's id).
 *
 * @module
 */

import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  JSON_OPTION,
  parseCommandLine,
} from "../args.ts";
import type { Command } from "../command.ts";
import { EventLog } from "../log.ts";
import { openClient } from "../session.ts";

const USAGE = `Usage: alphanet whoami [--json] [flags]

Joins the relay and prints this client's permanent virtual IP. With the same
identity (--identity-file, or the default file) it prints the same address
every time. Joining takes the address over from any running client with the
same identity (with --no-identity, the same real IP), ending that client with
Replaced: give your long-running commands identity files of their own.

Flags:
  --json                 print one JSON object: {"virtualIp": "83.12.4.200",
                         "relay": "HOST:PORT", "relayId": "<64 hex digits>"};
                         relay is the relay joined: HOST:PORT (the one of a
                         --server list that took the client), or the ws:// or
                         wss:// URL as given; relayId is the relay's id, for
                         --relay-id

${COMMON_HELP}`;

/** `whoami`. */
export const whoami: Command = {
  name: "whoami",
  summary: "print this client's virtual IP",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine(args, USAGE, [], {
      ...COMMON_OPTIONS,
      ...JSON_OPTION,
    });
    if (parsed === null) return 0;
    const { values } = parsed;
    const common = commonOptions(values);
    const log = new EventLog(common.logFormat, "whoami");
    const net = await openClient(common, { reconnect: false, command: "whoami", log });
    try {
      console.log(
        values.json
          ? JSON.stringify({
            virtualIp: net.virtualIp,
            relay: common.websocket ?? net.relay,
            relayId: net.relayId,
          })
          : net.virtualIp,
      );
      return 0;
    } finally {
      await net.close();
    }
  },
};
