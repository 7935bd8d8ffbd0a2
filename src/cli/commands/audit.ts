import { hostname } from 'node:os';
import pg from 'pg';
import { configPathFromEnv, processEnv, type Env } from '../../config/env.js';
import { DEFAULTS } from '../../config/defaults.js';
import { loadConfigFile } from '../../config/load.js';
import { parseDuration } from '../../config/units.js';
import { FileHeadStore, PostgresHeadStore, type HeadRecord } from '../../audit/writer/heads.js';
import { verifyLogDir, formatReport } from '../../audit/offline/verify.js';
import { DEFAULT_SEARCH_LIMIT, formatMatch, matchJson, searchLogs, type SearchQuery } from '../../audit/offline/search.js';
import { dailyReport, formatDailyReport } from '../../audit/offline/report.js';
import { STREAMS, type StreamName } from '../../audit/writer/files.js';
import { flag, stringOption } from '../args.js';
import type { Command, Invocation, OptionSpecs } from '../command.js';
import { CliError } from '../errors.js';

const TIME_HELP = 't: ISO time, YYYY-MM-DD, or an age such as 90m, 12h, 7d';
const str = (...names: string[]): OptionSpecs => Object.fromEntries(names.map((n) => [n, { type: 'string' as const }]));

const SUBCOMMANDS = {
  verify: {
    synopsis: 'audit verify [dir] [--dir d] [--node name] [--local-heads] [--json]',
    description: `check every log file (gzipped too): changed, removed, reordered lines, missing or cut files;
with DATABASE_URL the chain heads recorded in PostgreSQL (fails when they cannot be read),
else, or with --local-heads, \`.chain-heads.json\` in dir (which whoever can edit the logs can edit too)`,
    options: { ...str('dir', 'node'), 'local-heads': { type: 'boolean' }, json: { type: 'boolean' } },
  },
  search: {
    synopsis: `audit search [--dir d] [--since t] [--until t] [--user u] [--ip a] [--route r] [--path p|prefix*]
      [--status 429|4xx] [--reason CODE] [--event name|prefix.] [--stream access,security,app] [--limit n] [--json]`,
    description: `matching lines in time order across streams, at most --limit (default ${DEFAULT_SEARCH_LIMIT});
--json prints each line's record with its "stream"; exit 1 when nothing matches
${TIME_HELP}`,
    options: { ...str('dir', 'since', 'until', 'user', 'ip', 'route', 'path', 'status', 'reason', 'event', 'stream', 'limit'), json: { type: 'boolean' } },
  },
  report: {
    synopsis: 'audit report [--day YYYY-MM-DD] [--dir d] [--json]',
    description: 'requests, denials by reason, failed sign-ins, top denied IPs, alerts of one UTC day (default today);\nexit 1 when the logs hold no line of that day',
    options: { ...str('day', 'dir'), json: { type: 'boolean' } },
  },
} as const;

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
    return { dir: env.LOG_DIR || DEFAULTS.logDir, databaseUrl: env.DATABASE_URL || undefined, node: env.LOG_NODE || hostname() };
  }
}

function usage(sub: string, message: string): CliError {
  return new CliError(message, 2, `audit ${sub}`);
}

function parseTime(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const age = /^\d+(\.\d+)?(ms|s|m|h|d)$/.test(value) ? parseDuration(value) : undefined;
  const t = age !== undefined ? new Date(Date.now() - age) : new Date(value);
  if (Number.isNaN(t.getTime())) throw usage('search', `--${name}: not a time: ${value}`);
  return t;
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

async function verify(inv: Invocation, s: Settings): Promise<number> {
  if (inv.positionals.length > 1) throw usage('verify', 'give one log folder');
  const dir = inv.positionals[0] ?? stringOption(inv, 'dir') ?? s.dir;
  const node = stringOption(inv, 'node');
  let heads: Awaited<ReturnType<typeof loadHeads>>;
  try {
    heads = await loadHeads(node ? { ...s, node } : s, dir, flag(inv, 'local-heads'));
  } catch (err) {
    if (!(err instanceof HeadsUnavailable)) throw err;
    throw new CliError(`audit verify FAILED: ${err.message}`);
  }
  const report = await verifyLogDir(dir, heads);
  process.stdout.write(flag(inv, 'json') ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

async function search(inv: Invocation, s: Settings): Promise<number> {
  if (inv.positionals.length > 0) throw usage('search', `unexpected argument ${inv.positionals[0]}`);
  const streams = (stringOption(inv, 'stream') ?? 'access,security').split(',').map((x) => x.trim());
  for (const x of streams) if (!(STREAMS as readonly string[]).includes(x)) throw usage('search', `--stream: unknown stream ${x}`);
  const limit = stringOption(inv, 'limit');
  const q: SearchQuery = {
    since: parseTime(stringOption(inv, 'since'), 'since'),
    until: parseTime(stringOption(inv, 'until'), 'until'),
    user: stringOption(inv, 'user'),
    ip: stringOption(inv, 'ip'),
    route: stringOption(inv, 'route'),
    path: stringOption(inv, 'path'),
    status: stringOption(inv, 'status'),
    reason: stringOption(inv, 'reason'),
    event: stringOption(inv, 'event'),
    streams: streams as StreamName[],
    limit: limit === undefined ? DEFAULT_SEARCH_LIMIT : Number(limit),
  };
  if (q.status !== undefined && !/^([1-5]\d\d|[1-5]xx)$/i.test(q.status)) throw usage('search', '--status: a status (429) or a class (4xx)');
  if (!(Number.isInteger(q.limit) && (q.limit ?? 0) > 0)) throw usage('search', '--limit: a positive whole number');
  const json = flag(inv, 'json');
  const result = await searchLogs(stringOption(inv, 'dir') ?? s.dir, q, (m) => {
    process.stdout.write(json ? `${matchJson(m)}\n` : `${formatMatch(m)}\n`);
  });
  if (result.truncatedFiles.length > 0) process.stderr.write(`WARNING: unreadable or truncated files: ${result.truncatedFiles.join(', ')}\n`);
  if (result.limited) process.stderr.write(`showing the first ${q.limit} matches; more match: narrow the search or raise --limit\n`);
  else if (!json) process.stderr.write(`${result.matched} matching of ${result.scanned} lines\n`);
  return result.matched > 0 ? 0 : 1;
}

async function report(inv: Invocation, s: Settings): Promise<number> {
  if (inv.positionals.length > 0) throw usage('report', `unexpected argument ${inv.positionals[0]}`);
  const day = stringOption(inv, 'day') ?? new Date().toISOString().slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) throw usage('report', '--day: a date, YYYY-MM-DD');
  const dir = stringOption(inv, 'dir') ?? s.dir;
  const r = await dailyReport(dir, day);
  // A day without a single line is a gap (logs removed, wrong folder, gateway down), never a quiet day.
  if (r.requests === 0 && r.securityEvents === 0) {
    throw new CliError(`no log lines for ${day} (UTC) in ${dir}${r.filesRead.length > 0 ? ` (read ${r.filesRead.join(', ')})` : ': no log file of that day'}`);
  }
  process.stdout.write(flag(inv, 'json') ? `${JSON.stringify(r, null, 2)}\n` : formatDailyReport(r));
  return 0;
}

export const auditCommand: Command = {
  name: 'audit',
  usage: 'audit verify|search|report  check, search and summarize the audit logs (audit --help)',
  subcommands: SUBCOMMANDS,
  async run(inv) {
    const s = settings(processEnv());
    if (inv.sub === 'verify') return verify(inv, s);
    if (inv.sub === 'search') return search(inv, s);
    return report(inv, s);
  },
};
