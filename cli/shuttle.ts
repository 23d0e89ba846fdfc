/**
 * netcat's data exchange over one virtual connection: standard input to the
 * connection, the connection to standard output, and when to stop.
 *
 * The rules, chosen so that `listen > out.bin` in one terminal and
 * `connect VIP:PORT < in.bin` in another both finish by themselves:
 * - at the end of standard input the write side is shut down (nc's `-N`,
 *   the default): the peer reads end of stream;
 * - when the peer ends its side and standard input is a terminal, reading
 *   the terminal stops and the write side is shut down too: nobody types
 *   to a peer that has finished. Input from a file or pipe is sent to its
 *   end first;
 * - `-q SECONDS`: after the end of standard input, wait at most that long
 *   for the peer to end its side, then close;
 * - the exchange is over when both directions are; SIGINT or SIGTERM ends
 *   it as a failure.
 *
 * @module
 */

import type { VirtualConn } from "../mod.ts";
import { RuntimeError, stateOf } from "./errors.ts";
import type { EventLog } from "./log.ts";
import { writeAll } from "../transport/frame_writer.ts";
import { type Counter, pipe } from "./pipe.ts";
import { startProgress } from "./progress.ts";
import { type InputChunks, stdoutSink } from "./stdio.ts";

/** How one exchange runs. */
export interface ShuttleOptions {
  /** Standard input (shared by the connections of `listen -k`). */
  readonly input: InputChunks;
  /** Whether standard input is a terminal: stop reading it once the peer's side ends. */
  readonly interactive: boolean;
  /** `-q`: after the end of input, close at most this long later; null waits for the peer. */
  readonly quitAfterMs: number | null;
  /** `--progress`: report on stderr. */
  readonly progress: boolean;
  /** Where progress reports go. */
  readonly log: EventLog;
  /** Bytes standard input holds, if known, for percent and ETA. */
  readonly inputSize: number | null;
  /** The peer as `VIP:PORT`, for messages. */
  readonly peer: string;
  /** SIGINT/SIGTERM: interrupts the exchange, which then fails. */
  readonly signal: AbortSignal;
}

/** Why sending stopped: end of input, or told to stop first. */
type SendEnd = "end-of-input" | "stopped";

/**
 * Runs the exchange on `conn` until both directions are done (see the
 * module's rules), then closes `conn`. Throws RuntimeError naming the
 * direction that failed; `--progress` then ends with "failed after", never
 * "done".
 */
export async function shuttle(conn: VirtualConn, options: ShuttleOptions): Promise<void> {
  const sent: Counter = { bytes: 0 };
  const received: Counter = { bytes: 0 };
  const report = options.progress
    ? startProgress(sent, received, options.inputSize, options.log)
    : null;
  const stopSending = Promise.withResolvers<void>();
  let failure: RuntimeError | null = null;
  const fail = (error: RuntimeError): void => {
    failure ??= error;
    stopSending.resolve();
    conn.close(); // Ends the other direction too.
  };
  const interrupt = (): void => {
    fail(new RuntimeError(`cannot finish with ${options.peer}: ${stateOf(options.signal.reason)}`));
  };
  if (options.signal.aborted) interrupt();
  options.signal.addEventListener("abort", interrupt);
  let quitTimer: ReturnType<typeof setTimeout> | undefined;
  const sending = (async (): Promise<void> => {
    const end = await send(options.input, conn, sent, stopSending.promise);
    await conn.closeWrite();
    if (end === "end-of-input" && options.quitAfterMs !== null) {
      quitTimer = setTimeout(() => conn.close(), options.quitAfterMs);
    }
  })().catch((error) => {
    fail(new RuntimeError(`cannot send to ${options.peer}: ${stateOf(error)}`, { cause: error }));
  });
  const receiving = pipe(conn, stdoutSink, received).then(
    () => {
      if (options.interactive) stopSending.resolve();
    },
    (error) => {
      fail(
        new RuntimeError(`cannot receive from ${options.peer}: ${stateOf(error)}`, {
          cause: error,
        }),
      );
    },
  );
  await Promise.all([sending, receiving]);
  options.signal.removeEventListener("abort", interrupt);
  clearTimeout(quitTimer);
  report?.stop(failure === null);
  conn.close();
  if (failure !== null) throw failure;
}

/**
 * Sends `input` to `conn` until its end or until `stop` resolves; a chunk
 * being read when `stop` comes stays in `input` for the next connection.
 */
async function send(
  input: InputChunks,
  conn: VirtualConn,
  counter: Counter,
  stop: Promise<void>,
): Promise<SendEnd> {
  const stopped = stop.then((): "stopped" => "stopped");
  // Each pass sends one chunk; the input's end or `stop` ends the loop.
  while (true) {
    const chunk = await Promise.race([input.next(), stopped]);
    if (chunk === "stopped") return "stopped";
    input.take();
    if (chunk === null) return "end-of-input";
    await writeAll(conn, chunk);
    counter.bytes += chunk.length;
  }
}
