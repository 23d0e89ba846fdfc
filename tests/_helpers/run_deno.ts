/**
 * Runs Deno itself as a subprocess (the relay's or the command line's
 * entrypoint, or an example) and collects what it printed.
 */

/** How a finished subprocess ended and what it printed. */
export interface DenoRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@linkcode runDeno}. */
export interface RunDenoOptions {
  /** Extra environment variables. */
  readonly env?: Record<string, string>;
  /** Kills the subprocess when it aborts (e.g. `AbortSignal.timeout(ms)`). */
  readonly signal?: AbortSignal;
}

/** Runs `deno <args>` with stdin closed and resolves once it has exited. */
export async function runDeno(args: string[], options: RunDenoOptions = {}): Promise<DenoRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
    signal: options.signal,
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
