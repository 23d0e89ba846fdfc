/**
 * Opens the AlphaNET client a command runs with: the relay from `--server`,
 * the identity from `--identity-file`.
 *
 * @module
 */

import { type AlphaNetClient, connect } from "../mod.ts";
import type { CommonOptions } from "./args.ts";
import { describe, RuntimeError } from "./errors.ts";
import { loadIdentity } from "./identity.ts";

/** How a command wants its client. */
export interface SessionOptions {
  /**
   * Whether the client reconnects after losing the relay: true for the
   * long-running commands (expose, forward), whose listeners survive it.
   */
  readonly reconnect: boolean;
  /** Name printed before reconnect notices on stderr. */
  readonly command: string;
  /** How long a request (status, connect, ping) may take, in ms. @default {15000} */
  readonly requestTimeoutMs?: number;
}

/**
 * Connects to the relay and waits for the virtual IP. Throws RuntimeError
 * (one line) if the identity file or the relay fails.
 */
export async function openClient(
  common: CommonOptions,
  options: SessionOptions,
): Promise<AlphaNetClient> {
  const identity = common.identityFile === null
    ? undefined
    : await loadIdentity(common.identityFile);
  const where = `${common.server.hostname}:${common.server.port}`;
  let net: AlphaNetClient;
  try {
    net = await connect({
      hostname: common.server.hostname,
      port: common.server.port,
      identity,
      reconnect: options.reconnect,
      requestTimeoutMs: options.requestTimeoutMs,
    });
  } catch (error) {
    throw new RuntimeError(`cannot join relay at ${where}: ${describe(error)}`, { cause: error });
  }
  if (options.reconnect) {
    net.addEventListener("statechange", (event) => {
      if (event.state === "reconnecting") {
        console.error(
          `${options.command}: lost the relay (${describe(event.error)}), reconnecting`,
        );
      } else if (event.state === "connected") {
        console.error(`${options.command}: reconnected to the relay`);
      }
    });
  }
  return net;
}

/** Resolves with a RuntimeError when the client ends for good by itself (e.g. `Replaced`). */
export async function clientEnded(net: AlphaNetClient): Promise<RuntimeError> {
  const error = await net.closed;
  return new RuntimeError(`the relay link ended: ${error === null ? "closed" : describe(error)}`, {
    cause: error,
  });
}
