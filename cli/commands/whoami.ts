/**
 * `whoami`: prints this client's virtual IP.
 *
 * @module
 */

import { COMMON_HELP, COMMON_OPTIONS, commonOptions, parseCommandLine } from "../args.ts";
import type { Command } from "../command.ts";
import { openClient } from "../session.ts";

const USAGE = `Usage: alphanet whoami [flags]

Joins the relay and prints this client's permanent virtual IP. With the same
--identity-file it prints the same address every time. Joining takes the
address over from any running client with the same identity (or, without an
identity, the same real IP), so use another identity file than your long-running
commands.

${COMMON_HELP}`;

/** `whoami`. */
export const whoami: Command = {
  name: "whoami",
  summary: "print this client's virtual IP",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine("whoami", args, USAGE, [], COMMON_OPTIONS);
    if (parsed === null) return 0;
    const { values } = parsed;
    const net = await openClient(commonOptions(values), { reconnect: false, command: "whoami" });
    console.log(net.virtualIp);
    await net.close();
    return 0;
  },
};
