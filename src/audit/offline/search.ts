import { listLogFiles, readLogLines, STREAMS, type LogFile, type StreamName } from '../writer/files.js';
import { printable } from '../redact/printable.js';

export interface SearchQuery {
  readonly since?: Date | undefined;
  readonly until?: Date | undefined;
  readonly user?: string | undefined;
  readonly ip?: string | undefined;
  readonly route?: string | undefined;
  /** A request path (`/api/contacts`), or a prefix ending in `*` (`/api/*`). */
  readonly path?: string | undefined;
  /** An exact status (`429`) or a class (`4xx`). */
  readonly status?: string | undefined;
  /** A reason code (`RATE_LIMITED`), matched case-insensitively against `code` / `reason`. */
  readonly reason?: string | undefined;
  /** An event name or prefix (`auth.`, `alert.`), security stream. */
  readonly event?: string | undefined;
  readonly streams?: readonly StreamName[] | undefined;
  readonly limit?: number | undefined;
}

export interface Match {
  readonly stream: StreamName;
  readonly file: string;
  readonly line: number;
  readonly record: Record<string, unknown>;
  readonly text: string;
}

const day = (d: Date): string => d.toISOString().slice(0, 10);
const DAY_MS = 86_400_000;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The files of the chosen streams whose day can hold lines of [since, until], by day then stream. */
export function filesFor(dir: string, streams: readonly StreamName[], since?: Date, until?: Date): LogFile[] {
  const from = since ? day(since) : '0000-00-00';
  // A line written just before midnight can land in the next day's file.
  const to = until ? day(new Date(until.getTime() + DAY_MS)) : '9999-99-99';
  const out: LogFile[] = [];
  for (const files of listLogFiles(dir).values()) for (const f of files) if (streams.includes(f.stream) && f.day >= from && f.day <= to) out.push(f);
  return out.sort((a, b) => a.day.localeCompare(b.day) || STREAMS.indexOf(a.stream) - STREAMS.indexOf(b.stream) || a.chain.localeCompare(b.chain));
}

export function matches(r: Record<string, unknown>, q: SearchQuery): boolean {
  const time = str(r.time);
  if (q.since || q.until) {
    const t = time ? Date.parse(time) : NaN;
    if (!Number.isFinite(t)) return false;
    if (q.since && t < q.since.getTime()) return false;
    if (q.until && t > q.until.getTime()) return false;
  }
  if (q.user !== undefined && ![r.user, r.subject, r.username].includes(q.user)) return false;
  if (q.ip !== undefined && r.clientIp !== q.ip && r.peerIp !== q.ip) return false;
  if (q.route !== undefined && r.route !== q.route) return false;
  if (q.path !== undefined) {
    const path = str(r.path);
    if (path === undefined || (q.path.endsWith('*') ? !path.startsWith(q.path.slice(0, -1)) : path !== q.path)) return false;
  }
  if (q.status !== undefined) {
    const s = typeof r.status === 'number' ? String(r.status) : undefined;
    if (!s) return false;
    if (/^[1-5]xx$/i.test(q.status) ? s[0] !== q.status[0] : s !== q.status) return false;
  }
  if (q.reason !== undefined) {
    const reason = (str(r.code) ?? str(r.reason) ?? '').toUpperCase();
    if (reason !== q.reason.toUpperCase()) return false;
  }
  if (q.event !== undefined) {
    const event = str(r.event) ?? '';
    if (!(q.event.endsWith('.') ? event.startsWith(q.event) : event === q.event)) return false;
  }
  return true;
}

/** How many matches `audit search` prints unless told otherwise: a wide query must not flood a terminal. */
export const DEFAULT_SEARCH_LIMIT = 1000;

const timeOf = (m: Match): number => {
  const t = typeof m.record.time === 'string' ? Date.parse(m.record.time) : NaN;
  return Number.isFinite(t) ? t : Number.POSITIVE_INFINITY;
};

/**
 * Searches current and rotated (gzipped) files line by line, and calls `onMatch` for each
 * matching line in time order across streams and chains (a day's files are merged by their
 * `time`); stops at `limit` matches. Each file is in time order, so the first `limit` matches
 * of a day are among the first `limit` of each of its files: memory stays within files × limit.
 */
export async function searchLogs(
  dir: string,
  q: SearchQuery,
  onMatch: (m: Match) => void,
): Promise<{ matched: number; scanned: number; truncatedFiles: string[]; limited: boolean }> {
  const streams = q.streams ?? ['access', 'security'];
  const limit = q.limit ?? Number.POSITIVE_INFINITY;
  let matched = 0;
  let scanned = 0;
  let limited = false;
  const truncatedFiles: string[] = [];
  const byDay = new Map<string, LogFile[]>();
  for (const f of filesFor(dir, streams, q.since, q.until)) byDay.set(f.day, [...(byDay.get(f.day) ?? []), f]);
  for (const files of byDay.values()) {
    if (limited) break;
    const found: Match[] = [];
    for (const f of files) {
      let inFile = 0;
      const result = await readLogLines(f.path, f.gzipped, (text, line) => {
        scanned++;
        let record: Record<string, unknown>;
        try {
          record = JSON.parse(text) as Record<string, unknown>;
        } catch {
          return true;
        }
        if (!matches(record, q)) return true;
        inFile++;
        found.push({ stream: f.stream, file: f.name, line, record, text });
        return inFile < limit - matched + 1;
      });
      if (result.truncated || result.error) truncatedFiles.push(f.name);
    }
    // Stable: lines of one time keep their file order (stream, then chain).
    found.sort((x, y) => timeOf(x) - timeOf(y));
    for (const m of found) {
      if (matched >= limit) {
        limited = true;
        break;
      }
      matched++;
      onMatch(m);
    }
  }
  return { matched, scanned, truncatedFiles, limited };
}

/**
 * One match as a JSON line: the stream it came from, then the record's own fields. A record's own `stream` field (events about a log stream name its chain) is kept as
 * `chain` so the stream of the match is never overwritten.
 */
export function matchJson(m: Match): string {
  const { stream: own, ...rest } = m.record;
  return JSON.stringify({ stream: m.stream, ...(own !== undefined && rest.chain === undefined ? { chain: own } : {}), ...rest });
}

/** One line of search output for a person (control characters escaped). */
export function formatMatch(m: Match): string {
  const r = m.record;
  const parts = [str(r.time) ?? '-', m.stream];
  if (m.stream === 'access') {
    parts.push(String(r.status ?? '-'), String(r.method ?? '-'), `${str(r.host) ?? ''}${str(r.path) ?? ''}${r.query ? `?${String(r.query)}` : ''}`, `route=${str(r.route) ?? '-'}`);
  } else if (m.stream === 'security') parts.push(String(r.event ?? '-'));
  else parts.push(String(r.level ?? '-'), String(r.message ?? ''));
  if (r.code) parts.push(`reason=${String(r.code)}`);
  if (r.clientIp) parts.push(`ip=${String(r.clientIp)}`);
  const user = str(r.user) ?? str(r.subject);
  if (user) parts.push(`user=${user}`);
  if (r.detail) parts.push(`detail=${JSON.stringify(r.detail)}`);
  if (r.message && m.stream === 'security') parts.push(JSON.stringify(r.message));
  // Values come from clients (login names, paths): one match must stay one inert line.
  return printable(parts.join(' '));
}
