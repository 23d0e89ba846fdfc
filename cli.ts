/**
 * The AlphaNET command line: `deno task cli <command> ...`, or
 * `deno run --allow-net --allow-read --allow-write --allow-env cli.ts <command> ...`.
 * Commands: whoami, listen, connect, expose, forward, status, ping; each
 * takes `--help`. The global flags (`--server`, `--identity-file`,
 * `--no-identity`, `--join-token`, `--log-format`, `--tls`, `--ca-cert`,
 * `--help`) go before or after the command. Exit codes: 0 success, 1
 * runtime failure, 2 usage error.
 *
 * An error that ends a command is one line on stderr:
 * `alphanet: cannot <action>: <why>` at run time (exit 1), or
 * `alphanet: <what is wrong> (see [<command> ]--help)` for a bad command line
 * (exit 2). The long-running commands print one line per event on stderr
 * while they run (`expose: connection from ...: cannot ...`), as text or,
 * with `--log-format json`, one JSON object a line.
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

export type { Command } from "./cli/command.ts";

/**
 * Every command, in the order `--help` lists them: each has its name, a
 * one-line summary, its `--help` text and `run(args)`.
 *
 * @example Look a command up by name
 * ```ts
 * import { COMMANDS } from "@alphanet/net/cli";
 * import assert from "node:assert/strict";
 *
 * const names = COMMANDS.map((command) => command.name);
 * assert.deepEqual(names, ["whoami", "listen", "connect", "expose", "forward", "status", "ping"]);
 * const ping = COMMANDS.find((command) => command.name === "ping");
 * assert.ok(ping?.usage.startsWith("Usage: alphanet ping VIP"));
 * ```
 */
export const COMMANDS: readonly Command[] = [
  whoami,
  listen,
  connect,
  expose,
  forward,
  status,
  ping,
];

/**
 * The top-level `--help` text: the commands with their summaries, the exit
 * codes and the global flags.
 *
 * @example Every command and global flag is listed
 * ```ts
 * import { COMMANDS, USAGE } from "@alphanet/net/cli";
 * import assert from "node:assert/strict";
 *
 * assert.match(USAGE, /^Usage: alphanet \[global flags\] <command>/);
 * for (const command of COMMANDS) assert.match(USAGE, new RegExp(`^  ${command.name} `, "m"));
 * assert.match(USAGE, /--log-format FORMAT/);
 * assert.match(USAGE, /--join-token TOKEN/);
 * ```
 */
export const USAGE: string = `Usage: alphanet [global flags] <command> [arguments] [flags]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}

Run "alphanet <command> --help" for a command's arguments and flags.
Exit codes: 0 success, 1 failure, 2 bad command line.

${COMMON_HELP}`;

/**
 * Runs the command line `args` (without the program name), as the
 * `alphanet` program does, and prints a failure as one line on stderr:
 * `alphanet: <what is wrong> (see [<command> ]--help)` for a bad command
 * line, `alphanet: cannot <action>: <why>` for anything else.
 *
 * @param args The arguments after the program name, such as `["whoami", "--json"]`.
 * @returns The exit code: 0 success, 1 failure at run time, 2 bad command line.
 *
 * @example Help succeeds; a bad command line exits 2
 * ```ts
 * import { main } from "@alphanet/net/cli";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["--help"]), 0); // Prints the usage on stdout.
 * // Prints 'alphanet: unknown command "frobnicate" (see --help)' on stderr.
 * assert.equal(await main(["frobnicate"]), 2);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  // Where a bad command line is explained: the command's own help once it is known.
  let help = "--help";
  try {
    const { globals, command: name, rest } = splitCommandLine(args);
    if (
      name === "help" || (name === undefined && globals.some((g) => g === "-h" || g === "--help"))
    ) {
      console.log(USAGE);
      return 0;
    }
    if (name === undefined) throw new UsageError("missing command");
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command "${name}"`);
    help = `${name} --help`;
    // In front, so that a "--" among the command's arguments cannot swallow them.
    return await command.run([...globals, ...rest]);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`alphanet: ${oneLine(error)} (see ${help})`);
      return 2;
    }
    console.error(`alphanet: ${oneLine(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
