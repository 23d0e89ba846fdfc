/**
 * `status VIP:PORT`: is that virtual IP online, and does it listen on the port?
 *
 * @module
 */

import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  formatHostPort,
  JSON_OPTION,
  parseCommandLine,
  parseVipPort,
} from "../args.ts";
import type { Command } from "../command.ts";
import { requestFailure, RuntimeError } from "../errors.ts";
import { EventLog } from "../log.ts";
import { openClient } from "../session.ts";

const USAGE = `Usage: alphanet status VIP:PORT [--json] [flags]

Asks the relay whether VIP is online and listens on PORT, without connecting,
and prints one of:
  VIP:PORT online, listening         (exit 0)
  VIP:PORT online, not listening     (exit 1)
  VIP:PORT offline                   (exit 1)
A request the relay refuses (rate limit, too many pending) is an error (exit 1).

Flags:
  --json                 print one JSON object instead (same exit codes):
                         {"target": "VIP:PORT", "online": true, "listening": true}

${COMMON_HELP}`;

/** `status`. */
export const status: Command = {
  name: "status",
  summary: "show whether VIP:PORT is online and listening",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine(args, USAGE, ["VIP:PORT"], {
      ...COMMON_OPTIONS,
      ...JSON_OPTION,
    });
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const target = parseVipPort(positionals[0], "target");
    const where = formatHostPort(target);
    const common = commonOptions(values);
    const log = new EventLog(common.logFormat, "status");
    const net = await openClient(common, { reconnect: false, command: "status", log });
    try {
      const answer = await net.status(target).catch((error) => {
        const line = requestFailure(`query status of ${where}`, error, net.state === "connected");
        throw new RuntimeError(line, { cause: error });
      });
      if (values.json) {
        console.log(
          JSON.stringify({ target: where, online: answer.online, listening: answer.listening }),
        );
      } else {
        const state = !answer.online
          ? "offline"
          : answer.listening
          ? "online, listening"
          : "online, not listening";
        console.log(`${where} ${state}`);
      }
      return answer.listening ? 0 : 1;
    } finally {
      await net.close();
    }
  },
};
