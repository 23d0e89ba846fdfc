/**
 * `server.ts tokens ...`: make, list and revoke the join tokens a relay run
 * with `--join token` asks new clients for, beside the running relay (the
 * registry is opened shared, as `clients` does).
 *
 * @module
 */

import { keyPairFromSeed } from "../crypto/ed25519.ts";
import {
  formatJoinToken,
  JOIN_TOKEN_ID_BYTES,
  JOIN_TOKEN_SECRET_BYTES,
  joinTokenIdText,
  parseJoinTokenId,
} from "../crypto/join_token.ts";
import { parseFlags } from "../flags/parse_args.ts";
import { UsageError } from "../flags/usage_error.ts";
import {
  type AdminTarget,
  adminTarget,
  auditLogger,
  operator,
  targetField,
  withAdminRegistry,
} from "./admin_registry.ts";
import { DEFAULT_RELAY_CONFIG } from "./config.ts";
import { parseDuration } from "./duration.ts";
import { type JoinTokenRecord, joinTokenRefusal } from "./join_tokens.ts";
import type { RegistryStore } from "./registry_store.ts";

/** Usage text of the `tokens` subcommand. */
export const TOKENS_USAGE =
  `Usage: deno run -A server.ts tokens create [--uses N] [--expires DURATION] [--db PATH | --registry URL] [--json]
       deno run -A server.ts tokens list [--db PATH | --registry URL] [--json]
       deno run -A server.ts tokens revoke ID [--db PATH | --registry URL] [--json]

Join tokens let new clients register at a relay run with --join token (a client
already registered reconnects without one). Works beside a running relay:
  create    make a token and print its text (anj1.ID.SECRET) on stdout: hand it to
            one user; the registry keeps only its id and public key, so it can never
            be shown again
  list      every token: id, uses, max uses, expiry, state, created, last used
            (never the secret)
  revoke    stop a token admitting anyone; clients it admitted keep their addresses

create and revoke log one audit line on stderr.

Flags:
  --uses N|unlimited    create: how many new clients the token may register (default 1:
                        a token for one user; unlimited: any number until it expires or is
                        revoked)
  --expires DURATION    create: the token stops working this long from now, e.g. 7d, 12h,
                        30m, 90 (seconds) (default: never)
  --db PATH             the relay's SQLite registry (default ${DEFAULT_RELAY_CONFIG.db})
  --registry URL        a cluster's PostgreSQL registry instead, postgres://USER@HOST:PORT/DB
  --json                machine-readable output
  --log-format FORMAT   text | json: the audit line's format (default text)
  --help                print this help and exit
`;

/** One token as `--json` prints it. */
interface TokenJson {
  readonly id: string;
  readonly uses: number;
  /** Null: no limit. */
  readonly maxUses: number | null;
  /** ISO time; null: never. */
  readonly expiresAt: string | null;
  /** `active`, `revoked`, `expired` or `used-up`. */
  readonly state: TokenState;
  readonly createdAt: string;
  /** ISO time; null: not revoked. */
  readonly revokedAt: string | null;
  /** ISO time; null: never used. */
  readonly lastUsedAt: string | null;
}

/** Whether a token admits new clients now, and if not, why. */
type TokenState = "active" | "revoked" | "expired" | "used-up";

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function toJson(token: JoinTokenRecord, now: number): TokenJson {
  const refusal = joinTokenRefusal(token, now);
  return {
    id: token.id,
    uses: token.uses,
    maxUses: token.maxUses,
    expiresAt: iso(token.expiresAt),
    state: refusal === null ? "active" : refusal === "invalid" ? "revoked" : refusal,
    createdAt: iso(token.createdAt)!,
    revokedAt: iso(token.revokedAt),
    lastUsedAt: iso(token.lastUsedAt),
  };
}

/** Widths of the text table's columns; the times are all one width. */
const ID_WIDTH = 16;
const COUNT_WIDTH = "MAX USES".length;
const TIME_WIDTH = "2000-01-01T00:00:00.000Z".length;
const STATE_WIDTH = "used-up".length;

function row(cells: readonly string[]): string {
  const widths = [ID_WIDTH, COUNT_WIDTH, COUNT_WIDTH, TIME_WIDTH, STATE_WIDTH, TIME_WIDTH];
  return cells.map((cell, i) => i < widths.length ? cell.padEnd(widths[i]) : cell).join("  ");
}

function table(tokens: readonly TokenJson[]): string {
  return [
    row(["ID", "USES", "MAX USES", "EXPIRES", "STATE", "CREATED", "LAST USED"]),
    ...tokens.map((token) =>
      row([
        token.id,
        String(token.uses),
        token.maxUses === null ? "-" : String(token.maxUses),
        token.expiresAt ?? "never",
        token.state,
        token.createdAt,
        token.lastUsedAt ?? "-",
      ])
    ),
  ].join("\n");
}

/**
 * Runs `tokens ...` with the arguments after `tokens`; resolves to the exit
 * code (0 done, 1 not found or refused, 2 usage). Throws UsageError.
 */
export function runTokensCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    allowPositionals: true,
    options: {
      uses: { type: "string" },
      expires: { type: "string" },
      db: { type: "string" },
      registry: { type: "string" },
      json: { type: "boolean" },
      "log-format": { type: "string" },
      help: { type: "boolean" },
    },
  }, "tokens");
  if (values.help) {
    console.log(TOKENS_USAGE);
    return Promise.resolve(0);
  }
  const [action, target, ...extra] = positionals;
  if (action === undefined) throw new UsageError("tokens: expected create, list or revoke");
  if (!["create", "list", "revoke"].includes(action)) {
    throw new UsageError(`tokens: unknown action "${action}": expected create, list or revoke`);
  }
  const unexpected = action === "revoke" ? extra[0] : target;
  if (unexpected !== undefined) {
    throw new UsageError(`tokens ${action}: unexpected argument "${unexpected}"`);
  }
  if (action !== "create") {
    for (const flag of ["uses", "expires"] as const) {
      if (values[flag] !== undefined) {
        throw new UsageError(`tokens ${action}: --${flag} is for create`);
      }
    }
  }
  const id = action === "revoke" ? parseJoinTokenId(target ?? "") : null;
  if (action === "revoke" && id === null) {
    throw new UsageError(
      `tokens revoke: bad token id "${
        target ?? ""
      }": expected 16 lowercase hex digits (see tokens list)`,
    );
  }
  // One use by default: a token handed to one user admits one identity, and a leaked copy of a
  // used token admits no one.
  const maxUses = values.uses === undefined ? 1 : parseUses(values.uses);
  const lifetimeMs = values.expires === undefined ? null : parseLifetime(values.expires);
  const audit = auditLogger(values["log-format"], "tokens");
  const where = adminTarget(values, "tokens");
  const json = values.json === true;
  return withAdminRegistry(where, async (registry) => {
    const now = Date.now();
    if (action === "list") {
      const tokens = (await registry.joinTokens()).map((token) => toJson(token, now));
      console.log(json ? JSON.stringify(tokens) : table(tokens));
      return 0;
    }
    if (action === "revoke") {
      return revoke(registry, joinTokenIdText(id!), now, json, audit, where);
    }
    const token = await createToken(registry, maxUses, lifetimeMs, now);
    audit.log("info", "admin-token-create", {
      token: token.id,
      maxUses,
      expiresAt: iso(token.record.expiresAt),
      ...targetField(where),
      ...operator(),
    });
    console.log(
      json ? JSON.stringify({ ...toJson(token.record, now), token: token.text }) : token.text,
    );
    return 0;
  });
}

/** The `--uses` limit, or null for `unlimited`. */
function parseUses(text: string): number | null {
  if (text === "unlimited") return null;
  const uses = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(uses) || uses < 1) {
    throw new UsageError(
      `tokens create: bad --uses "${text}": expected a whole number above 0 or "unlimited"`,
    );
  }
  return uses;
}

function parseLifetime(text: string): number {
  const ms = parseDuration(text);
  if (ms === null || ms <= 0) {
    throw new UsageError(
      `tokens create: bad --expires "${text}": expected a duration above 0 such as 7d, 12h or 30m`,
    );
  }
  return ms;
}

/** A new token's text (shown once) and its stored row. */
interface CreatedToken {
  readonly id: string;
  readonly text: string;
  readonly record: JoinTokenRecord;
}

/** Makes a token: a random id and seed; only the id and the seed's public key are stored. */
async function createToken(
  registry: RegistryStore,
  maxUses: number | null,
  lifetimeMs: number | null,
  now: number,
): Promise<CreatedToken> {
  const id = crypto.getRandomValues(new Uint8Array(JOIN_TOKEN_ID_BYTES));
  const seed = crypto.getRandomValues(new Uint8Array(JOIN_TOKEN_SECRET_BYTES));
  const { publicKey } = await keyPairFromSeed(seed, false);
  const record = await registry.createJoinToken({
    id: joinTokenIdText(id),
    publicKey,
    maxUses,
    expiresAt: lifetimeMs === null ? null : now + lifetimeMs,
  }, now);
  return { id: record.id, text: formatJoinToken({ id, seed }), record };
}

/** Revokes the token `id` in one statement; what is read after only words the outcome. */
async function revoke(
  registry: RegistryStore,
  id: string,
  now: number,
  json: boolean,
  audit: ReturnType<typeof auditLogger>,
  target: AdminTarget,
): Promise<number> {
  if (await registry.revokeJoinToken(id, now)) {
    audit.log("info", "admin-token-revoke", { token: id, ...targetField(target), ...operator() });
    console.log(json ? JSON.stringify({ revoked: id }) : `revoked ${id}`);
    return 0;
  }
  if (await registry.joinToken(id) === null) {
    console.error(`alphanet relay: no join token has id ${id}`);
  } else {
    console.error(`alphanet relay: join token ${id} is revoked already`);
  }
  return 1;
}
