/**
 * `listen PORT` and `connect VIP:PORT`: netcat over AlphaNET. Standard input
 * goes to the connection and the connection to standard output; see
 * `../shuttle.ts` for when an exchange ends.
 *
 * @module
 */

import type { VirtualConn, VirtualListener } from "../../mod.ts";
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  formatHostPort,
  parseCommandLine,
  parseSeconds,
  parseVipPort,
} from "../args.ts";
import { parsePort } from "../../flags/port.ts";
import type { Command } from "../command.ts";
import { requestFailure, RuntimeError, stateOf } from "../errors.ts";
import { EventLog } from "../log.ts";
import { openClient } from "../session.ts";
import { shuttle, type ShuttleOptions } from "../shuttle.ts";
import { waitForSignal } from "../signals.ts";
import { stdinChunks, stdinIsTerminal, stdinSize } from "../stdio.ts";

/** Connections `listen -k` lets wait while it serves one. */
const KEEP_LISTENING_BACKLOG = 16;

const DATA_OPTIONS = {
  ...COMMON_OPTIONS,
  progress: { type: "boolean" },
  "shutdown-on-eof": { type: "boolean", short: "N" },
  quit: { type: "string", short: "q" },
} as const;

const DATA_HELP = `Standard input goes to the connection, the connection to standard output.
At the end of standard input the write side is shut down (the peer reads end
of stream); reading goes on until the peer ends its side. When the peer ends
its side and standard input is a terminal, the command stops reading it and
finishes too; input from a file or pipe is sent to its end first. So
"listen > out.bin" and "connect VIP:PORT < in.bin" both finish by themselves.
Exit 0, or 1 if the connection failed.

Flags:
  -N, --shutdown-on-eof  shut down the write side at the end of input (the default;
                         accepted for nc habits)
  -q, --quit SEC         after the end of input, wait at most SEC seconds for the
                         peer to end its side, then close (default: wait as long
                         as the peer sends)
  --progress             print bytes and rates to stderr every 500 ms (with percent
                         and ETA when standard input is a file), and a final line:
                         "done in ..." or "failed after ..."`;

const LISTEN_USAGE = `Usage: alphanet listen PORT [-k] [-N] [-q SEC] [--progress] [flags]

Listens on virtual port PORT (0 picks a free one), prints
"listening on VIP:PORT" to stderr, accepts ONE connection and stops listening
(with -k, serves connections one after another until SIGINT or SIGTERM; a
connection that fails is one line, "listen: cannot <action>: <why>", and the
next one is served).
${DATA_HELP}
  -k, --keep-listening   after a connection ends, accept the next one (nc -k);
                         exit 0 on SIGINT or SIGTERM

${COMMON_HELP}`;

const CONNECT_USAGE = `Usage: alphanet connect VIP:PORT [-N] [-q SEC] [--progress] [flags]

Connects to virtual port PORT of VIP.
${DATA_HELP}

${COMMON_HELP}`;

/** The exchange settings of a parsed command line, less the peer. */
function exchangeOptions(
  values: { progress?: boolean; quit?: string },
  signal: AbortSignal,
  log: EventLog,
): Omit<ShuttleOptions, "peer"> {
  return {
    signal,
    log,
    input: stdinChunks(),
    interactive: stdinIsTerminal(),
    quitAfterMs: values.quit === undefined ? null : parseSeconds(values.quit, "--quit", 0),
    progress: values.progress === true,
    inputSize: stdinSize(),
  };
}

/** `VIP:PORT` of a connection's peer. */
function peerOf(conn: VirtualConn): string {
  return `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
}

/** `listen`. */
export const listen: Command = {
  name: "listen",
  summary: "accept a virtual connection on PORT; stdin/stdout to it (netcat -l)",
  usage: LISTEN_USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine(args, LISTEN_USAGE, ["PORT"], {
      ...DATA_OPTIONS,
      "keep-listening": { type: "boolean", short: "k" },
    });
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const port = parsePort(positionals[0], "port", { min: 0 });
    const keep = values["keep-listening"] === true;
    const common = commonOptions(values);
    const log = new EventLog(common.logFormat, "listen");
    using stop = waitForSignal();
    const exchange = exchangeOptions(values, stop.aborted, log);
    const net = await openClient(common, { reconnect: false, command: "listen", log });
    try {
      let listener: VirtualListener;
      try {
        listener = net.listen({ port, backlog: keep ? KEEP_LISTENING_BACKLOG : 1 });
      } catch (error) {
        // Listening needs no link to the relay: whatever failed, the library named it.
        throw new RuntimeError(requestFailure(`listen on port ${port}`, error, true), {
          cause: error,
        });
      }
      const address = `${listener.addr.hostname}:${listener.addr.port}`;
      log.log("info", "listening", `listening on ${address}`, { address });
      // A signal ends the wait for a connection (and, below, the connection itself).
      stop.signal.then(() => listener.close());
      try {
        // Each pass serves one connection; a signal or (without -k) the first connection ends it.
        do {
          let conn: VirtualConn;
          try {
            conn = await listener.accept();
          } catch (error) {
            if (stop.aborted.aborted) return 0;
            throw new RuntimeError(`cannot accept: ${stateOf(error)}`, { cause: error });
          }
          if (!keep) listener.close(); // One connection only.
          const peer = peerOf(conn);
          log.log("info", "connection", `connection from ${peer}`, { from: peer });
          try {
            await shuttle(conn, { ...exchange, peer });
          } catch (error) {
            if (!keep) throw error;
            // -k: a signal is the normal end; a failed connection is reported, the next one served.
            if (!stop.aborted.aborted) {
              const line = (error as Error).message;
              log.log("warn", "connection-failed", `listen: ${line}`, { from: peer, error: line });
            }
          }
        } while (keep && !stop.aborted.aborted);
        return 0;
      } finally {
        listener.close();
      }
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
    const parsed = parseCommandLine(args, CONNECT_USAGE, ["VIP:PORT"], DATA_OPTIONS);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const target = parseVipPort(positionals[0], "target");
    const common = commonOptions(values);
    const log = new EventLog(common.logFormat, "connect");
    using stop = waitForSignal();
    const exchange = exchangeOptions(values, stop.aborted, log);
    const net = await openClient(common, { reconnect: false, command: "connect", log });
    try {
      const where = formatHostPort(target);
      const conn = await net.connect(target).catch((error) => {
        const line = requestFailure(`connect to ${where}`, error, net.state === "connected");
        throw new RuntimeError(line, { cause: error });
      });
      await shuttle(conn, { ...exchange, peer: where });
      return 0;
    } finally {
      await net.close();
    }
  },
};
