import { hostname } from 'node:os';
import pg from 'pg';
import { configPathFromEnv, processEnv, type Env } from '../../config/env.js';
import { loadConfigFile } from '../../config/load.js';
import { parseDuration } from '../../config/units.js';
import { FileHeadStore, PostgresHeadStore, type HeadRecord } from '../../audit/heads.js';
import { verifyLogDir, formatReport } from '../../audit/verify.js';
import { formatMatch, searchLogs, type SearchQuery } from '../../audit/search.js';
import { dailyReport, formatDailyReport } from '../../audit/report.js';
import { STREAMS, type StreamName } from '../../audit/files.js';
import { parseArgs } from '../context.js';
import type { Command } from '../command.js';

const USAGE = `usage:
  crm-gateway audit verify [dir] [--node name] [--local-heads] [--json]
      check every log file (gzipped too): changed, removed, reordered lines, missing or cut files;
      with DATABASE_URL the chain heads recorded in PostgreSQL (fails when they cannot be read),
      else, or with --local-heads, ${'`'}.chain-heads.json${'`'} in dir (which whoever can edit the logs can edit too)
  crm-gateway audit search [--dir d] [--since t] [--until t] [--user u] [--ip a] [--route r]
      [--status 429|4xx] [--reason CODE] [--event name|prefix.] [--stream access,security,app] [--limit n] [--json]
      t: ISO time, YYYY-MM-DD, or an age such as 90m, 12h, 7d
  crm-gateway audit report --day YYYY-MM-DD [--dir d] [--json]
      requests, denials by reason, failed logins, top denied IPs, alerts of one UTC day
`;

interface Settings {
  dir: string;
  databaseUrl?: string | undefined;
  node: string;
}

/** LOG_DIR and DATABASE_URL from the gateway's config when it loads, else from the environment. */
function settings(env: Env): Settings {
  try {
    const cfg = loadConfigFile(configPathFromEnv(env), env);
    return { dir: cfg.log.dir, databaseUrl: cfg.stores.databaseUrl, node: cfg.log.node ?? hostname() };
  } catch {
    // An auditor's machine may hold only the logs: the environment alone is enough.
    return { dir: env.LOG_DIR || 'logs', databaseUrl: env.DATABASE_URL || undefined, node: env.LOG_NODE || hostname() };
  }
}

function parseTime(value: string | true | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  if (value === true) throw new UsageError(`--${name} needs a value`);
  const age = /^\d+(\.\d+)?(ms|s|m|h|d)$/.test(value) ? parseDuration(value) : undefined;
  const t = age !== undefined ? new Date(Date.now() - age) : new Date(value);
  if (Number.isNaN(t.getTime())) throw new UsageError(`--${name}: not a time: ${value}`);
  return t;
}

class UsageError extends Error {}

function opt(options: Map<string, string | true>, name: string): string | undefined {
  const v = options.get(name);
  if (v === true) throw new UsageError(`--${name} needs a value`);
  return v;
}

/** The heads an honest verify needs could not be read: verify fails instead of passing without them. */
class HeadsUnavailable extends Error {}

/**
 * The chain heads to check the files against. With DATABASE_URL they must come from
 * PostgreSQL: falling back to the heads file in the log folder (editable by whoever can edit
 * the logs) would let a verify pass exactly when the out-of-folder record matters. No heads for
 * this node there means a wrong --node / LOG_NODE or a wiped table, not a clean log.
 */
async function loadHeads(s: Settings, dir: string, localOnly: boolean): Promise<{ records: HeadRecord[]; from: string } | undefined> {
  if (s.databaseUrl && !localOnly) {
    const pool = new pg.Pool({ connectionString: s.databaseUrl, max: 1, connectionTimeoutMillis: 5_000 });
    try {
      const store = new PostgresHeadStore(pool, s.node);
      let records: HeadRecord[];
      try {
        records = await store.load();
      } catch (err) {
        throw new HeadsUnavailable(`cannot read chain heads from PostgreSQL (${(err as Error).message}); fix the connection, or pass --local-heads to check against ${dir}/.chain-heads.json knowing it lives beside the logs`);
      }
      if (records.length === 0) throw new HeadsUnavailable(`PostgreSQL holds no chain heads for node ${s.node}: set --node (or LOG_NODE) to the gateway's node name`);
      return { records, from: `${store.where} (node ${s.node})` };
    } finally {
      await pool.end();
    }
  }
  const local = new FileHeadStore(dir);
  const records = await local.load();
  return records.length > 0 ? { records, from: local.where } : undefined;
}

async function verify(positional: string[], options: Map<string, string | true>, s: Settings): Promise<number> {
  const dir = positional[0] ?? opt(options, 'dir') ?? s.dir;
  const node = opt(options, 'node');
  let heads: Awaited<ReturnType<typeof loadHeads>>;
  try {
    heads = await loadHeads(node ? { ...s, node } : s, dir, options.has('local-heads'));
  } catch (err) {
    if (!(err instanceof HeadsUnavailable)) throw err;
    process.stderr.write(`crm-gateway audit verify: FAILED: ${err.message}\n`);
    return 1;
  }
  const report = await verifyLogDir(dir, heads);
  process.stdout.write(options.has('json') ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

async function search(options: Map<string, string | true>, s: Settings): Promise<number> {
  const streams = (opt(options, 'stream') ?? 'access,security').split(',').map((x) => x.trim());
  for (const x of streams) if (!(STREAMS as readonly string[]).includes(x)) throw new UsageError(`--stream: unknown stream ${x}`);
  const limit = opt(options, 'limit');
  const q: SearchQuery = {
    since: parseTime(options.get('since'), 'since'),
    until: parseTime(options.get('until'), 'until'),
    user: opt(options, 'user'),
    ip: opt(options, 'ip'),
    route: opt(options, 'route'),
    status: opt(options, 'status'),
    reason: opt(options, 'reason'),
    event: opt(options, 'event'),
    streams: streams as StreamName[],
    limit: limit === undefined ? undefined : Number(limit),
  };
  if (q.status !== undefined && !/^([1-5]\d\d|[1-5]xx)$/i.test(q.status)) throw new UsageError('--status: a status (429) or a class (4xx)');
  if (q.limit !== undefined && !(Number.isInteger(q.limit) && q.limit > 0)) throw new UsageError('--limit: a positive number');
  const json = options.has('json');
  const result = await searchLogs(opt(options, 'dir') ?? s.dir, q, (m) => {
    process.stdout.write(json ? `${m.text}\n` : `${formatMatch(m)}\n`);
  });
  if (result.truncatedFiles.length > 0) process.stderr.write(`WARNING: unreadable or truncated files: ${result.truncatedFiles.join(', ')}\n`);
  if (!json) process.stderr.write(`${result.matched} matching of ${result.scanned} lines\n`);
  return result.matched > 0 ? 0 : 1;
}

async function report(options: Map<string, string | true>, s: Settings): Promise<number> {
  const day = opt(options, 'day') ?? new Date().toISOString().slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new UsageError('--day: YYYY-MM-DD');
  const r = await dailyReport(opt(options, 'dir') ?? s.dir, day);
  process.stdout.write(options.has('json') ? `${JSON.stringify(r, null, 2)}\n` : formatDailyReport(r));
  return 0;
}

export const auditCommand: Command = {
  name: 'audit',
  usage: 'audit verify|search|report  check, search and summarize the audit logs (audit help)',
  async run(args) {
    const [sub, ...rest] = args;
    const { positional, options } = parseArgs(rest);
    try {
      const s = settings(processEnv());
      if (sub === 'verify') return await verify(positional, options, s);
      if (sub === 'search') return await search(options, s);
      if (sub === 'report') return await report(options, s);
      process.stdout.write(USAGE);
      return sub === 'help' || sub === undefined ? 0 : 2;
    } catch (err) {
      if (err instanceof UsageError) {
        process.stderr.write(`crm-gateway audit: ${err.message}\n${USAGE}`);
        return 2;
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        process.stderr.write(`crm-gateway audit: ${(err as Error).message}\n`);
        return 2;
      }
      throw err;
    }
  },
};
