/**
 * `status VIP:PORT`: is that virtual IP online, and does it listen on the port?
 *
 * @module
 */

import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  parseCommandLine,
  parseVipPort,
} from "../args.ts";
import type { Command } from "../command.ts";
import { describe, RuntimeError } from "../errors.ts";
import { openClient } from "../session.ts";

const USAGE = `Usage: alphanet status VIP:PORT [flags]

Asks the relay whether VIP is online and listens on PORT, without connecting,
and prints one of:
  VIP:PORT online, listening         (exit 0)
  VIP:PORT online, not listening     (exit 1)
  VIP:PORT offline                   (exit 1)

${COMMON_HELP}`;

/** `status`. */
export const status: Command = {
  name: "status",
  summary: "show whether VIP:PORT is online and listening",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine("status", args, USAGE, ["VIP:PORT"], COMMON_OPTIONS);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const target = parseVipPort(positionals[0], "target");
    const common = commonOptions(values);
    const net = await openClient(common, { reconnect: false, command: "status" });
    try {
      const answer = await net.status(target).catch((error) => {
        throw new RuntimeError(`status: ${describe(error)}`, { cause: error });
      });
      const where = `${target.hostname}:${target.port}`;
      const state = !answer.online
        ? "offline"
        : answer.listening
        ? "online, listening"
        : "online, not listening";
      console.log(`${where} ${state}`);
      return answer.listening ? 0 : 1;
    } finally {
      await net.close();
    }
  },
};
