/**
 * The AlphaNET command line: `deno task cli <command> ...`, or
 * `deno run --allow-net --allow-read --allow-write --allow-env cli.ts <command> ...`.
 * Commands: whoami, listen, connect, expose, forward, status, ping; each
 * takes `--help`. The global flags (`--server`, `--identity-file`, `--help`)
 * go before or after the command. Exit codes: 0 success, 1 runtime failure,
 * 2 usage error; errors are one line on stderr.
 *
 * @example Expose a local web server on virtual port 80
 * ```sh
 * deno task cli --identity-file ~/.alphanet/web expose 80 127.0.0.1:8000
 * ```
 *
 * @module
 */

import type { Command } from "./cli/command.ts";
import { connect, listen } from "./cli/commands/netcat.ts";
import { expose } from "./cli/commands/expose.ts";
import { forward } from "./cli/commands/forward.ts";
import { ping } from "./cli/commands/ping.ts";
import { status } from "./cli/commands/status.ts";
import { whoami } from "./cli/commands/whoami.ts";
import { COMMON_HELP, splitCommandLine } from "./cli/args.ts";
import { oneLine } from "./flags/one_line.ts";
import { UsageError } from "./flags/usage_error.ts";

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [
  whoami,
  listen,
  connect,
  expose,
  forward,
  status,
  ping,
];

/** The top-level `--help` text. */
export const USAGE: string = `Usage: alphanet [global flags] <command> [arguments] [flags]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}

Run "alphanet <command> --help" for a command's arguments and flags.
Exit codes: 0 success, 1 failure, 2 bad command line.

${COMMON_HELP}`;

/**
 * Runs the command line `args` (without the program name); resolves with the
 * exit code. Prints a failure as one line on stderr: exit 2 for a bad
 * command line, 1 for anything else.
 */
export async function main(args: string[]): Promise<number> {
  try {
    const { globals, command: name, rest } = splitCommandLine(args);
    if (
      name === "help" || (name === undefined && globals.some((g) => g === "-h" || g === "--help"))
    ) {
      console.log(USAGE);
      return 0;
    }
    if (name === undefined) throw new UsageError("missing command (see --help)");
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command "${name}" (see --help)`);
    // In front, so that a "--" among the command's arguments cannot swallow them.
    return await command.run([...globals, ...rest]);
  } catch (error) {
    console.error(`alphanet: ${oneLine(error)}`);
    return error instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
