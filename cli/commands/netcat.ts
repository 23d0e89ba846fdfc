/**
 * `listen PORT` and `connect VIP:PORT`: netcat over AlphaNET. Standard input
 * goes to the connection and the connection to standard output, with
 * half-close both ways; the command ends when both directions are done.
 *
 * @module
 */

import type { VirtualConn, VirtualListener } from "../../mod.ts";
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  parseCommandLine,
  parsePort,
  parseVipPort,
} from "../args.ts";
import type { Command } from "../command.ts";
import { describe, RuntimeError } from "../errors.ts";
import { type Counter, pipe } from "../pipe.ts";
import { startProgress } from "../progress.ts";
import { openClient } from "../session.ts";
import { stdinSource, stdoutSink } from "../stdio.ts";

const OPTIONS = { ...COMMON_OPTIONS, progress: { type: "boolean" } } as const;

const DATA_HELP = `Standard input goes to the connection, the connection to standard output.
When standard input ends, the write side is shut down (the peer reads end of
stream) and reading goes on until the peer ends its side; standard output is
closed then. The command exits when both directions are done: 0, or 1 if the
connection failed.

Flags:
  --progress             print bytes and rates to stderr every 500 ms, and totals at the end`;

const LISTEN_USAGE = `Usage: alphanet listen PORT [flags]

Listens on virtual port PORT (0 picks a free one), prints
"listening on VIP:PORT" to stderr, accepts ONE connection and stops listening.
${DATA_HELP}

${COMMON_HELP}`;

const CONNECT_USAGE = `Usage: alphanet connect VIP:PORT [flags]

Connects to virtual port PORT of VIP.
${DATA_HELP}

${COMMON_HELP}`;

/**
 * Pipes stdin to `conn` and `conn` to stdout until both directions end;
 * closes `conn`. Throws RuntimeError if either direction fails.
 */
async function shuttle(conn: VirtualConn, progress: boolean): Promise<void> {
  const sent: Counter = { bytes: 0 };
  const received: Counter = { bytes: 0 };
  const report = progress ? startProgress(sent, received) : null;
  try {
    await Promise.all([pipe(stdinSource, conn, sent), pipe(conn, stdoutSink, received)]);
  } catch (error) {
    throw new RuntimeError(`connection failed: ${describe(error)}`, { cause: error });
  } finally {
    report?.stop();
    conn.close();
  }
}

/** `listen`. */
export const listen: Command = {
  name: "listen",
  summary: "accept one virtual connection on PORT; stdin/stdout to it (netcat -l)",
  usage: LISTEN_USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine("listen", args, LISTEN_USAGE, ["PORT"], OPTIONS);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const port = parsePort(positionals[0], "port", 0);
    const net = await openClient(commonOptions(values), { reconnect: false, command: "listen" });
    try {
      let listener: VirtualListener;
      try {
        listener = net.listen({ port, backlog: 1 });
      } catch (error) {
        throw new RuntimeError(describe(error), { cause: error });
      }
      console.error(`listening on ${listener.addr.hostname}:${listener.addr.port}`);
      let conn: VirtualConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        throw new RuntimeError(`cannot accept: ${describe(error)}`, { cause: error });
      } finally {
        listener.close(); // One connection only.
      }
      console.error(`connection from ${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`);
      await shuttle(conn, values.progress === true);
      return 0;
    } finally {
      await net.close();
    }
  },
};

/** `connect`. */
export const connect: Command = {
  name: "connect",
  summary: "open a virtual connection to VIP:PORT; stdin/stdout to it (netcat)",
  usage: CONNECT_USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine("connect", args, CONNECT_USAGE, ["VIP:PORT"], OPTIONS);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const target = parseVipPort(positionals[0], "target");
    const net = await openClient(commonOptions(values), { reconnect: false, command: "connect" });
    try {
      const conn = await net.connect(target).catch((error) => {
        throw new RuntimeError(describe(error), { cause: error });
      });
      await shuttle(conn, values.progress === true);
      return 0;
    } finally {
      await net.close();
    }
  },
};
