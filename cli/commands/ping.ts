/**
 * `ping VIP`: round-trip times to another client through the relay, like ping(8).
 *
 * @module
 */

import { TimedOut } from "../../mod.ts";
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  commonOptions,
  JSON_OPTION,
  parseCommandLine,
  parseCount,
  parseSeconds,
  parseVip,
} from "../args.ts";
import type { Command } from "../command.ts";
import { causeOf } from "../errors.ts";
import { EventLog } from "../log.ts";
import { openClient } from "../session.ts";
import { waitForSignal } from "../signals.ts";

const USAGE = `Usage: alphanet ping VIP [-c COUNT] [-i INTERVAL] [-W TIMEOUT] [--json] [flags]

Measures the round-trip time to the client that owns VIP, through the relay
(every client answers by itself; nothing needs to listen). Prints
"reply from VIP: seq=N time=X.XXX ms" per answer (or "no reply from VIP:
seq=N: why"), and after the last one, or on SIGINT/SIGTERM, the summary
"N sent, M received, X% loss, min/avg/max = A/B/C ms".
Exit 0 if any reply came back, else 1.

Flags:
  -c, --count COUNT      stop after COUNT pings (default: until interrupted)
  -i, --interval SEC     seconds between pings, at least 0.01 (default 1)
  -W, --timeout SEC      how long to wait for each reply, at least 0.1 (default 5)
  --json                 print only the summary, as one JSON object: {"target", "sent",
                         "received", "lossPercent", "timesMs", "minMs", "avgMs",
                         "maxMs"} (the last three null without replies)

${COMMON_HELP}`;

/** Milliseconds with three decimals. */
function ms(value: number): string {
  return value.toFixed(3);
}

/** Why a ping got no reply, in a few words. */
function why(error: unknown, timeoutMs: number, linkUp: boolean): string {
  if (linkUp && error instanceof TimedOut) return `no answer within ${timeoutMs / 1000} s`;
  return causeOf(error, linkUp);
}

/** Percent of pings without a reply, rounded. */
function lossPercent(sent: number, times: number[]): number {
  return sent === 0 ? 0 : Math.round((100 * (sent - times.length)) / sent);
}

/** The summary line of a run. */
function summary(sent: number, times: number[]): string {
  let line = `${sent} sent, ${times.length} received, ${lossPercent(sent, times)}% loss`;
  if (times.length > 0) {
    const avg = times.reduce((a, b) => a + b, 0) / times.length;
    line += `, min/avg/max = ${ms(Math.min(...times))}/${ms(avg)}/${ms(Math.max(...times))} ms`;
  }
  return line;
}

/** The summary as one JSON object, times rounded to microseconds. */
function summaryJson(target: string, sent: number, times: number[]): string {
  const round = (value: number): number => Math.round(value * 1000) / 1000;
  const any = times.length > 0;
  return JSON.stringify({
    target,
    sent,
    received: times.length,
    lossPercent: lossPercent(sent, times),
    timesMs: times.map(round),
    minMs: any ? round(Math.min(...times)) : null,
    avgMs: any ? round(times.reduce((a, b) => a + b, 0) / times.length) : null,
    maxMs: any ? round(Math.max(...times)) : null,
  });
}

/** `ping`. */
export const ping: Command = {
  name: "ping",
  summary: "measure round-trip time to VIP through the relay (like ping(8))",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const parsed = parseCommandLine(args, USAGE, ["VIP"], {
      ...COMMON_OPTIONS,
      ...JSON_OPTION,
      count: { type: "string", short: "c" },
      interval: { type: "string", short: "i" },
      timeout: { type: "string", short: "W" },
    });
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const hostname = parseVip(positionals[0], "VIP");
    const count = values.count === undefined ? Infinity : parseCount(values.count, "--count");
    const intervalMs = parseSeconds(values.interval ?? "1", "--interval", 0.01);
    const timeoutMs = parseSeconds(values.timeout ?? "5", "--timeout", 0.1);
    const json = values.json === true;
    using stop = waitForSignal();
    let stopped = false;
    stop.signal.then(() => stopped = true);
    const common = commonOptions(values);
    const net = await openClient(common, {
      reconnect: false,
      command: "ping",
      log: new EventLog(common.logFormat, "ping"),
      requestTimeoutMs: timeoutMs,
    });
    const times: number[] = [];
    let sent = 0;
    try {
      for (let seq = 1; seq <= count && !stopped; seq++) {
        const started = performance.now();
        sent++;
        try {
          const time = await net.ping({ hostname });
          times.push(time);
          if (!json) console.log(`reply from ${hostname}: seq=${seq} time=${ms(time)} ms`);
        } catch (error) {
          if (!json) {
            console.log(
              `no reply from ${hostname}: seq=${seq}: ${
                why(error, timeoutMs, net.state === "connected")
              }`,
            );
          }
        }
        if (seq >= count || stopped) break;
        const wait = Math.max(0, intervalMs - (performance.now() - started));
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          new Promise<void>((resolve) => timer = setTimeout(resolve, wait)),
          stop.signal,
        ]);
        clearTimeout(timer);
      }
    } finally {
      await net.close();
    }
    console.log(json ? summaryJson(hostname, sent, times) : summary(sent, times));
    return times.length > 0 ? 0 : 1;
  },
};
