import { FAILED_AUTH_CODES, UPSTREAM_FAILURE_CODES } from './alerts.js';
import { filesFor } from './search.js';
import { readLogLines } from './files.js';
import { printable } from './printable.js';

const TOP = 10;

export interface DailyReport {
  readonly day: string;
  readonly requests: number;
  readonly byStatusClass: Record<string, number>;
  readonly denials: number;
  readonly denialsByReason: { reason: string; count: number }[];
  readonly failedLogins: number;
  readonly failedLoginsByUser: { user: string; count: number }[];
  readonly topDeniedIps: { ip: string; count: number }[];
  readonly upstreamErrors: number;
  readonly alerts: { time: string; alert: string; subject: string; message: string }[];
  readonly securityEvents: number;
  readonly filesRead: string[];
  readonly unreadableFiles: string[];
}

const inc = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
const top = <K extends string>(m: Map<string, number>, key: K, n = TOP): ({ count: number } & Record<K, string>)[] =>
  [...m]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([k, count]) => ({ [key]: k, count }) as { count: number } & Record<K, string>);

/** The summary of one UTC day from the access and security logs (every chain, rotated files too). */
export async function dailyReport(dir: string, day: string): Promise<DailyReport> {
  const start = new Date(`${day}T00:00:00.000Z`);
  if (Number.isNaN(start.getTime())) throw new Error(`not a day: ${day} (use YYYY-MM-DD)`);
  const end = new Date(start.getTime() + 86_400_000 - 1);
  let requests = 0;
  let denials = 0;
  let upstreamErrors = 0;
  let securityEvents = 0;
  const statusClass = new Map<string, number>();
  const reasons = new Map<string, number>();
  const deniedIps = new Map<string, number>();
  const failedUsers = new Map<string, number>();
  const failedRequests = new Set<string>();
  let failedWithoutId = 0;
  const alerts: DailyReport['alerts'] = [];
  const filesRead: string[] = [];
  const unreadable: string[] = [];

  for (const f of filesFor(dir, ['access', 'security'], start, end)) {
    filesRead.push(f.name);
    const result = await readLogLines(f.path, f.gzipped, (text) => {
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      const t = typeof r.time === 'string' ? Date.parse(r.time) : NaN;
      if (!(t >= start.getTime() && t <= end.getTime())) return;
      const code = typeof r.code === 'string' ? r.code : undefined;
      const requestId = typeof r.requestId === 'string' ? r.requestId : undefined;
      if (f.stream === 'access') {
        if (r.event !== undefined) return; // a record about the log itself (lines dropped)
        requests++;
        inc(statusClass, typeof r.status === 'number' ? `${String(r.status)[0]}xx` : 'none');
        if (code && UPSTREAM_FAILURE_CODES.has(code)) upstreamErrors++;
        if (code && (r.outcome === 'denied' || (typeof r.status === 'number' && r.status < 500))) {
          denials++;
          inc(reasons, code);
          if (typeof r.clientIp === 'string') inc(deniedIps, r.clientIp);
        }
        if (code && FAILED_AUTH_CODES.has(code)) {
          if (requestId) failedRequests.add(requestId);
          else failedWithoutId++;
        }
        return;
      }
      securityEvents++;
      const event = typeof r.event === 'string' ? r.event : '';
      if (event === 'auth.login_failed') {
        if (requestId) failedRequests.add(requestId);
        else failedWithoutId++;
        const user = typeof r.user === 'string' ? r.user : typeof r.username === 'string' ? r.username : undefined;
        if (user) inc(failedUsers, user);
      } else if (event.startsWith('alert.')) {
        alerts.push({ time: String(r.time), alert: event.slice(6), subject: String(r.subject ?? ''), message: String(r.message ?? '') });
      }
    });
    if (result.truncated || result.error) unreadable.push(f.name);
  }
  return {
    day,
    requests,
    byStatusClass: Object.fromEntries([...statusClass].sort()),
    denials,
    denialsByReason: top(reasons, 'reason', Infinity),
    failedLogins: failedRequests.size + failedWithoutId,
    failedLoginsByUser: top(failedUsers, 'user'),
    topDeniedIps: top(deniedIps, 'ip'),
    upstreamErrors,
    alerts: alerts.sort((a, b) => a.time.localeCompare(b.time)),
    securityEvents,
    filesRead,
    unreadableFiles: unreadable,
  };
}

export function formatDailyReport(r: DailyReport): string {
  const lines = [
    `crm-gateway daily report ${r.day} (UTC)`,
    `requests: ${r.requests} (${Object.entries(r.byStatusClass).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'})`,
    `denials: ${r.denials}`,
    ...r.denialsByReason.map((d) => `  ${d.reason.padEnd(24)} ${d.count}`),
    `failed logins: ${r.failedLogins}`,
    ...r.failedLoginsByUser.map((u) => `  ${u.user.padEnd(24)} ${u.count}`),
    `top denied IPs:`,
    ...(r.topDeniedIps.length ? r.topDeniedIps.map((i) => `  ${i.ip.padEnd(24)} ${i.count}`) : ['  (none)']),
    `upstream errors: ${r.upstreamErrors}`,
    `security events: ${r.securityEvents}`,
    `alerts: ${r.alerts.length}`,
    ...r.alerts.map((a) => `  ${a.time} ${a.alert} ${a.subject}: ${a.message}`),
  ];
  if (r.unreadableFiles.length) lines.push(`WARNING: unreadable or truncated files: ${r.unreadableFiles.join(', ')}`);
  // Login names and alert subjects come from clients: escaped so each stays on its own line.
  return `${lines.map(printable).join('\n')}\n`;
}
