/**
 * A client in its own process for the ref/unref tests: joins the relay,
 * listens on virtual port 7, connects to itself, unrefs what the mode says,
 * prints `ready`, and lets the event loop decide. An unref'd watchdog prints
 * `alive` and exits if something still holds the process.
 *
 * Usage: deno run --allow-net=127.0.0.1 _unref_child.ts RELAY_PORT MODE
 * MODE: `all` (unref everything), `listener` (keep the listener), `conn` (keep one connection).
 */

import { connect } from "../../mod.ts";

const [relayPort, mode] = Deno.args;
const net = await connect({ port: Number(relayPort), keepaliveMs: 50, peerTimeoutMs: 60_000 });
const listener = net.listen({ port: 7 });
const accepting = listener.accept();
const dialed = await net.connect({ hostname: net.virtualIp, port: 7 });
const accepted = await accepting;

net.unref();
if (mode !== "listener") listener.unref();
if (mode !== "conn") dialed.unref();
accepted.unref();

const watchdog = setTimeout(() => {
  console.log("alive");
  Deno.exit(0);
}, 1_000);
Deno.unrefTimer(watchdog);
console.log("ready");
