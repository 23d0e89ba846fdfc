/**
 * Join tokens for tests: made straight in a registry (for unit tests, and
 * for states no command makes, such as an expiry already past), or by the
 * real `server.ts tokens` command beside a running relay.
 */

import assert from "node:assert/strict";
import { keyPairFromSeed } from "../../crypto/ed25519.ts";
import { formatJoinToken, joinTokenIdText } from "../../crypto/join_token.ts";
import type { Registry } from "../../server/registry.ts";
import { type DenoRun, runDeno } from "./run_deno.ts";
import { SERVER } from "./server_process.ts";

/** Limits of a token made by {@linkcode tokenIn}. */
export interface TokenLimits {
  readonly maxUses?: number | null;
  readonly expiresAt?: number | null;
}

/** A token stored in `registry` as `tokens create` would store it; returns its text and id. */
export async function tokenIn(
  registry: Registry,
  limits: TokenLimits = {},
): Promise<{ text: string; id: string }> {
  const id = crypto.getRandomValues(new Uint8Array(8));
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const { publicKey } = await keyPairFromSeed(seed, false);
  registry.createJoinToken({
    id: joinTokenIdText(id),
    publicKey,
    maxUses: limits.maxUses ?? null,
    expiresAt: limits.expiresAt ?? null,
  });
  return { text: formatJoinToken({ id, seed }), id: joinTokenIdText(id) };
}

/** Runs `server.ts tokens ARGS...`. */
export function tokensCommand(...args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", SERVER, "tokens", ...args]);
}

/** A token as `tokens create --json` and `tokens list --json` print it. */
export interface TokenJson {
  id: string;
  token?: string;
  uses: number;
  maxUses: number | null;
  expiresAt: string | null;
  state: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** `tokens create --json` with `args` on the registry `db`; returns what it printed. */
export async function createToken(
  db: string,
  ...args: string[]
): Promise<TokenJson & { token: string }> {
  const run = await tokensCommand("create", "--db", db, "--json", ...args);
  assert.equal(run.code, 0, run.stderr);
  const token = JSON.parse(run.stdout) as TokenJson;
  assert.ok(token.token !== undefined);
  return token as TokenJson & { token: string };
}

/** `tokens list --json` on the registry `db`, by id. */
export async function listTokens(db: string): Promise<Map<string, TokenJson>> {
  const run = await tokensCommand("list", "--db", db, "--json");
  assert.equal(run.code, 0, run.stderr);
  return new Map((JSON.parse(run.stdout) as TokenJson[]).map((token) => [token.id, token]));
}
