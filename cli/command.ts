/**
 * The shape of a CLI command: a name, its help, and what it runs.
 *
 * @module
 */

/** One `alphanet <name> ...` command. */
export interface Command {
  /** The word after `cli.ts`. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly usage: string;
  /**
   * Runs with the arguments after the name; resolves with the exit code.
   * Throws UsageError (exit 2) or RuntimeError (exit 1).
   */
  run(args: string[]): Promise<number>;
}
