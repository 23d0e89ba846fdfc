/**
 * The AlphaNET relay server. Run it with `deno run -A server.ts`, or import
 * {@linkcode Relay} to embed one.
 *
 * @example Embed a relay
 * ```ts ignore
 * import { Relay } from "@alphanet/net/server";
 * await using relay = await Relay.start({ port: 0, db: ":memory:" });
 * console.log(`listening on ${relay.addr.hostname}:${relay.addr.port}`);
 * ```
 *
 * @module
 */

import { parseRelayFlags, USAGE, UsageError } from "./server/flags.ts";
import { Relay } from "./server/relay.ts";
import { ADMIN_USAGE, runClientsCommand } from "./server/admin.ts";
import { resolveRelayConfig } from "./server/config.ts";

export { Relay } from "./server/relay.ts";
export {
  DEFAULT_RELAY_CONFIG,
  LOG_LEVELS,
  type LogLevel,
  type RelayConfig,
  type RelayOptions,
} from "./server/config.ts";

async function main(args: string[]): Promise<number> {
  if (args[0] === "clients") {
    try {
      return runClientsCommand(args.slice(1));
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      console.error(`alphanet relay: ${error.message}\n\n${ADMIN_USAGE}`);
      return 2;
    }
  }
  let parsed;
  try {
    parsed = parseRelayFlags(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`alphanet relay: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    resolveRelayConfig(parsed.options); // combinations, e.g. --peer-timeout above --keepalive
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    console.error(`alphanet relay: ${error.message}`);
    return 2;
  }
  let relay: Relay;
  try {
    relay = await Relay.start(parsed.options);
  } catch (error) {
    console.error(
      `alphanet relay: cannot start: ${error instanceof Error ? error.message : error}`,
    );
    return 1;
  }
  console.log(`listening on ${relay.addr.hostname}:${relay.addr.port}`);
  const stopped = Promise.withResolvers<void>();
  const stop = () => stopped.resolve();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await stopped.promise;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  await relay.close();
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
