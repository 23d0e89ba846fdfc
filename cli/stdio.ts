/**
 * Standard input and output as a pipe source and sink.
 *
 * @module
 */

import type { Sink, Source } from "./pipe.ts";

/** Standard input as a {@linkcode Source}. */
export const stdinSource: Source = {
  read: (buffer: Uint8Array): Promise<number | null> => Deno.stdin.read(buffer),
};

/**
 * Standard output as a {@linkcode Sink}. Its half-close does nothing: Deno
 * cannot close file descriptor 1 while the process runs, so the reader sees
 * end of stream when the command exits (once both directions are done).
 */
export const stdoutSink: Sink = {
  write: (bytes: Uint8Array): Promise<number> => Deno.stdout.write(bytes),
  closeWrite: (): void => {},
};
