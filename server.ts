/**
 * The AlphaNET relay server. Run it with `deno run -A server.ts` (`--help`
 * lists its flags), or import {@linkcode Relay} to embed one: its options are
 * {@linkcode RelayOptions}, their defaults {@linkcode DEFAULT_RELAY_CONFIG}.
 *
 * @example Embed a relay and join it
 * ```ts
 * import { connect } from "@alphanet/net";
 * import { Relay } from "@alphanet/net/server";
 * import assert from "node:assert/strict";
 *
 * await using relay = await Relay.start({ hostname: "127.0.0.1", port: 0, db: ":memory:" });
 * await using net = await connect({ hostname: "127.0.0.1", port: relay.addr.port });
 * assert.equal(relay.onlineCount, 1);
 * assert.match(net.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
 * ```
 *
 * @module
 */

import { oneLine } from "./flags/one_line.ts";
import { UsageError } from "./flags/usage_error.ts";
import { parseRelayFlags, USAGE } from "./server/flags.ts";
import { Relay } from "./server/relay.ts";
import { runClientsCommand } from "./server/admin.ts";
import { runTokensCommand } from "./server/admin_tokens.ts";
import {
  redactedUrl,
  type RelayConfig,
  type RelayTls,
  resolveRelayConfig,
} from "./server/config.ts";
import { Logger } from "./server/log.ts";
import { readMeshCa, readTlsFiles } from "./server/tls_files.ts";

export { Relay } from "./server/relay.ts";
export {
  DEFAULT_RELAY_CONFIG,
  JOIN_MODES,
  type JoinMode,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  type RelayConfig,
  type RelayOptions,
  type RelayTls,
} from "./server/config.ts";

async function main(args: string[]): Promise<number> {
  const command = args[0] === "clients"
    ? runClientsCommand
    : args[0] === "tokens"
    ? runTokensCommand
    : null;
  if (command !== null) {
    try {
      return await command(args.slice(1));
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      console.error(`alphanet relay: ${error.message} (see ${args[0]} --help)`);
      return 2;
    }
  }
  let parsed;
  try {
    parsed = parseRelayFlags(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`alphanet relay: ${error.message} (see --help)`);
    return 2;
  }
  if (parsed.help) {
    console.log(USAGE);
    return 0;
  }
  let tls: RelayTls | undefined;
  let meshCaCerts: string[] | null = null;
  try {
    tls = parsed.tlsFiles === null ? undefined : readTlsFiles(parsed.tlsFiles);
    meshCaCerts = parsed.tlsFiles === null ? null : readMeshCa(parsed.tlsFiles);
  } catch (error) {
    console.error(`alphanet relay: ${oneLine(error)}`);
    return 1;
  }
  let config: RelayConfig;
  try {
    // Combinations, e.g. --peer-timeout above --keepalive.
    config = resolveRelayConfig({ ...parsed.options, tls, meshCaCerts });
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    console.error(`alphanet relay: ${oneLine(error)}`);
    return 2;
  }
  const log = new Logger(config.logLevel, config.logFormat);
  let relay: Relay;
  try {
    // This process is only a relay: one bug anywhere in it must cost a log line, not every link.
    relay = await Relay.start({ ...config, guardRejections: true });
  } catch (error) {
    console.error(`alphanet relay: cannot start: ${oneLine(error)}`);
    return 1;
  }
  // Listen for signals before saying "listening": a supervisor may stop the relay right after.
  const stopped = Promise.withResolvers<Deno.Signal>();
  const stops = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const stop = (): void => stopped.resolve(signal);
    Deno.addSignalListener(signal, stop);
    return [signal, stop] as const;
  });
  console.log(`listening on ${relay.addr.hostname}:${relay.addr.port}`);
  const websocket = relay.websocketAddr;
  if (websocket !== null) {
    const tls = config.tls === null ? "" : " (tls)";
    console.log(`websocket${tls} on ${websocket.hostname}:${websocket.port}`);
  }
  const admin = relay.adminAddr;
  if (admin !== null) console.log(`admin on ${admin.hostname}:${admin.port}`);
  const mesh = relay.meshAddr;
  if (mesh !== null) console.log(`mesh on ${mesh.hostname}:${mesh.port}`);
  // What a debugging operator wants first: every setting the relay really runs with.
  log.log("debug", "config", {
    ...config,
    // A password in the URL stays out of logs.
    registry: config.registry === null ? null : redactedUrl(config.registry),
    tls: config.tls !== null,
    meshCaCerts: config.meshCaCerts?.length ?? 0,
    port: relay.addr.port,
    websocketPort: websocket?.port ?? null,
    relayId: relay.relayId,
  });
  const signal = await stopped.promise;
  for (const [name, stop] of stops) Deno.removeSignalListener(name, stop);
  log.log("info", "shutdown", { signal });
  await relay.close();
  log.log("debug", "stopped", {});
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
