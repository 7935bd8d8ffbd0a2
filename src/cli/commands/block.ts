import { userInfo } from 'node:os';
import type { Redis } from 'ioredis';
import { configPathFromEnv, processEnv } from '../../config/env.js';
import { ConfigError, loadConfigFile } from '../../config/load.js';
import type { GatewayConfig } from '../../config/schema.js';
import { createRedis, withTimeout } from '../../stores/redis.js';
import { BLOCK_KINDS, BlockInputError, blockDuration, blockFields, blockReason, canonicalTarget, escapeUnprintable, isBlockKind, type Block, type BlockKind } from '../../containment/model.js';
import { createFileBlockStore, createRedisBlockStore, type BlockStore } from '../../containment/store.js';
import { flag, stringOption } from '../args.js';
import type { Command, Invocation, Usage } from '../command.js';
import { CliError, openCliLog, type CliLog } from '../context.js';

/** A store operation that takes longer means Redis does not answer: say so rather than hang. */
const STORE_TIMEOUT_MS = 10_000;

const WHAT: Readonly<Record<BlockKind, string>> = {
  ip: 'ADDRESS',
  cidr: 'NETWORK/PREFIX',
  user: 'USER',
  client: 'CLIENT',
  route: 'ROUTE',
};

const EFFECT: Readonly<Record<BlockKind, string>> = {
  ip: 'refuse every request and websocket from this client address (403 CLIENT_BLOCKED), before authentication',
  cidr: `refuse every client address in this network (403 CLIENT_BLOCKED); wider than /8 (IPv4) or /32 (IPv6) needs --force`,
  user: 'refuse this user on every route once authenticated (403 ACCOUNT_BLOCKED) and close their websockets',
  client: 'refuse this API client once authenticated (403 ACCOUNT_BLOCKED) and close its websockets',
  route: 'close this route for maintenance: 503 ROUTE_MAINTENANCE with Retry-After (a page for browsers, JSON for API clients)',
};

const blockUsage = (kind: BlockKind): Usage => ({
  synopsis: `block ${kind} ${WHAT[kind]} --for DURATION --reason TEXT${kind === 'cidr' ? ' [--force]' : ''}`,
  description: `${EFFECT[kind]}.
On every instance within a second, until DURATION (e.g. 30m, 12h, 7d; at most containment.maxDuration, 90d) has passed;
recorded in the audit log (containment.blocked) with who ran it and why.`,
  options: { for: { type: 'string' }, reason: { type: 'string' }, ...(kind === 'cidr' ? { force: { type: 'boolean' } } : {}) },
});

const unblockUsage = (kind: BlockKind): Usage => ({
  synopsis: `unblock ${kind} ${WHAT[kind]} [--reason TEXT]`,
  description: `lift the block of this ${kind} on every instance (containment.unblocked in the audit log)`,
  options: { reason: { type: 'string' } },
});

/** The operating-system user running the command: `by` of the block and `actor` of its event. */
function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid:${process.getuid?.() ?? 'unknown'}`;
  }
}

function loadConfig(): GatewayConfig {
  const env = processEnv();
  try {
    return loadConfigFile(configPathFromEnv(env), env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
}

/** The positional target of `kind`, canonical, or a usage error (exit 2) naming what is wrong. */
function target(inv: Invocation, verb: 'block' | 'unblock', kind: BlockKind, force: boolean): string {
  const where = `${verb} ${kind}`;
  if (inv.positionals.length === 0) throw new CliError(`${where} needs ${WHAT[kind]}`, 2, where);
  if (inv.positionals.length > 1) throw new CliError(`unexpected argument ${String(inv.positionals[1])}`, 2, where);
  try {
    return canonicalTarget(kind, inv.positionals[0] ?? '', { force });
  } catch (err) {
    if (err instanceof BlockInputError) throw new CliError(err.message, 2, where);
    throw err;
  }
}

function usageError<T>(where: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof BlockInputError) throw new CliError(err.message, 2, where);
    throw err;
  }
}

interface Opened {
  readonly store: BlockStore;
  readonly log: CliLog;
  close(): Promise<void>;
}

/** The store the gateways read: Redis with REDIS_URL, else the file in DATA_DIR. */
async function openStore(cfg: GatewayConfig, verbose: boolean): Promise<Opened> {
  const log = await openCliLog(cfg, verbose);
  let redis: Redis | undefined;
  try {
    redis = await createRedis(cfg, log.log, { enableOfflineQueue: true, lazyConnect: false });
  } catch (err) {
    await log.close();
    throw err;
  }
  const limits = { maxMs: cfg.containment.maxDuration };
  const store = redis ? createRedisBlockStore(redis, limits) : createFileBlockStore(cfg.stores.dataDir, limits, log.log);
  return {
    store,
    log,
    async close() {
      await store.close();
      if (redis) await Promise.allSettled([redis.quit()]);
      await log.close();
    },
  };
}

async function timed<T>(work: Promise<T>, cfg: GatewayConfig): Promise<T> {
  if (!cfg.stores.redisUrl) return work;
  try {
    return await withTimeout(work, STORE_TIMEOUT_MS);
  } catch (err) {
    throw new CliError(`the block store (Redis) did not answer: ${(err as Error).message}; nothing was changed`);
  }
}

/**
 * The table of `block list`. Every cell is escaped: a stored reason (or `by`, or rule) may hold
 * what no command would take (an older version's automatic reason quoting an attacker-typed
 * name, a hand-edited file, a key written to Redis directly), and an ESC sequence printed on
 * an operator's terminal can rewrite the screen or worse.
 */
export function formatList(blocks: readonly Block[]): string {
  if (blocks.length === 0) return 'no blocks in force\n';
  const rows = blocks.map((b) => [b.kind, b.target, new Date(b.until).toISOString(), b.source === 'auto' ? `auto (${b.rule ?? ''})` : b.by, b.reason].map(escapeUnprintable));
  const head = ['kind', 'target', 'until', 'by', 'reason'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

/**
 * `block list --json`. JSON.stringify escapes C0 controls but not DEL, C1 controls, format
 * characters or U+2028: those are escaped too (the same JSON value). Its only raw newlines are
 * the indentation's, kept.
 */
export function formatJson(blocks: readonly Block[]): string {
  return `${JSON.stringify(blocks.map(blockFields), null, 2).split('\n').map(escapeUnprintable).join('\n')}\n`;
}

async function runBlock(inv: Invocation): Promise<number> {
  const sub = inv.sub;
  if (sub === 'list') {
    if (inv.positionals.length > 0) throw new CliError(`unexpected argument ${String(inv.positionals[0])}`, 2, 'block list');
    const cfg = loadConfig();
    const opened = await openStore(cfg, inv.verbose);
    try {
      const blocks = (await timed(opened.store.list(), cfg)).sort((a, b) => a.until - b.until);
      process.stdout.write(flag(inv, 'json') ? formatJson(blocks) : formatList(blocks));
      return 0;
    } finally {
      await opened.close();
    }
  }
  if (!isBlockKind(sub)) throw new CliError(`unknown block command ${String(sub)}`, 2, 'block');
  const where = `block ${sub}`;
  // Everything the command line says is checked before a store is opened: a refusal stores nothing.
  const what = target(inv, 'block', sub, flag(inv, 'force'));
  const reason = usageError(where, () => blockReason(stringOption(inv, 'reason')));
  const cfg = loadConfig();
  const forMs = usageError(where, () => blockDuration(stringOption(inv, 'for'), cfg.containment.maxDuration));
  if (sub === 'route' && !cfg.routes.some((r) => r.name === what)) {
    throw new CliError(`no route named ${what} in the config (routes: ${cfg.routes.map((r) => r.name).join(', ')})`, 2, where);
  }
  const opened = await openStore(cfg, inv.verbose);
  try {
    // Timed from the store's write, not from the connection to it: --for counts from now.
    const now = Date.now();
    const block: Block = { kind: sub, target: what, reason, until: now + forMs, createdAt: now, by: osUser(), source: 'manual' };
    await timed(opened.store.add(block), cfg);
    opened.log.log.security('containment.blocked', blockFields(block));
    process.stderr.write(`blocked ${sub} ${what} until ${new Date(block.until).toISOString()} on every instance${cfg.stores.redisUrl ? '' : ` (${cfg.stores.dataDir}/blocks.json)`}\n`);
    return 0;
  } finally {
    await opened.close();
  }
}

async function runUnblock(inv: Invocation): Promise<number> {
  const sub = inv.sub;
  if (!isBlockKind(sub)) throw new CliError(`unknown unblock command ${String(sub)}`, 2, 'unblock');
  // Any block once made can be lifted, however wide: --force is implied.
  const what = target(inv, 'unblock', sub, true);
  const reasonText = stringOption(inv, 'reason');
  const reason = reasonText === undefined ? undefined : usageError(`unblock ${sub}`, () => blockReason(reasonText));
  const cfg = loadConfig();
  const opened = await openStore(cfg, inv.verbose);
  try {
    const existed = await timed(opened.store.remove(sub, what), cfg);
    opened.log.log.security('containment.unblocked', { kind: sub, target: what, by: osUser(), existed, ...(reason ? { reason } : {}) });
    process.stderr.write(existed ? `unblocked ${sub} ${what} on every instance\n` : `no block of ${sub} ${what} was in force (nothing to lift)\n`);
    return 0;
  } finally {
    await opened.close();
  }
}

export const blockCommand: Command = {
  name: 'block',
  usage: 'block ip|cidr|user|client|route X --for 1h --reason TEXT | list [--json]   refuse someone or close a route on every instance, for a time',
  subcommands: {
    ...Object.fromEntries(BLOCK_KINDS.map((k) => [k, blockUsage(k)])),
    list: { synopsis: 'block list [--json]', description: 'the blocks in force on every instance: what, until when, who made it and why', options: { json: { type: 'boolean' } } },
  },
  run: runBlock,
};

export const unblockCommand: Command = {
  name: 'unblock',
  usage: 'unblock ip|cidr|user|client|route X [--reason TEXT]   lift a block on every instance',
  subcommands: Object.fromEntries(BLOCK_KINDS.map((k) => [k, unblockUsage(k)])),
  run: runUnblock,
};
