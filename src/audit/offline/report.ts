import { filesFor } from './search.js';
import { readLogLines } from '../writer/files.js';
import { printable } from '../redact/printable.js';
import { accessFacts, byCount, signInFacts, Tally, type TallyLimits } from '../overview/tally.js';

const TOP = 10;
/**
 * Entries kept per list for one day: far more than the report prints, so its top 10 are exact
 * for any ordinary day, yet bounded when the day was a flood of distinct addresses or paths.
 */
const DAY_LIMITS: TallyLimits = { routes: 1_000, reasons: 1_000, users: 20_000, clients: 20_000, addresses: 50_000, paths: 50_000, signInKeys: 20_000 };

export interface DailyReport {
  readonly day: string;
  readonly requests: number;
  readonly byStatusClass: Record<string, number>;
  /** Every refusal (4xx with a reason code), rate-limit refusals included. */
  readonly denials: number;
  readonly denialsByReason: { reason: string; count: number }[];
  /** Counted from the access lines (the sampled `ratelimit.rejected` events are not counts). */
  readonly rateLimited: number;
  /** Sign-in form attempts (security events), tokens refused and client secrets refused (access lines): see tally.ts. */
  readonly signIns: { succeeded: number; failed: number; locked: number; rejectedTokens: number; clientCredentialsFailed: number };
  readonly failedSignInsByUser: { user: string; count: number }[];
  readonly failedSignInsByIp: { ip: string; count: number }[];
  readonly topDeniedIps: { ip: string; count: number }[];
  readonly upstreamErrors: number;
  readonly alerts: { time: string; alert: string; subject: string; message: string }[];
  readonly securityEvents: number;
  readonly filesRead: string[];
  readonly unreadableFiles: string[];
}

/** The summary of one UTC day from the access and security logs (every chain, rotated files too). */
export async function dailyReport(dir: string, day: string): Promise<DailyReport> {
  const start = new Date(`${day}T00:00:00.000Z`);
  if (Number.isNaN(start.getTime())) throw new Error(`not a day: ${day} (use YYYY-MM-DD)`);
  const end = new Date(start.getTime() + 86_400_000 - 1);
  const tally = new Tally(DAY_LIMITS);
  let securityEvents = 0;
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
      if (f.stream === 'access') {
        const facts = accessFacts(r);
        if (facts) tally.addAccess(facts);
        return;
      }
      securityEvents++;
      const signIn = signInFacts(r);
      if (signIn) tally.addSignIn(signIn);
      const event = typeof r.event === 'string' ? r.event : '';
      if (event.startsWith('alert.')) alerts.push({ time: String(r.time), alert: event.slice(6), subject: String(r.subject ?? ''), message: String(r.message ?? '') });
    });
    if (result.truncated || result.error) unreadable.push(f.name);
  }
  return {
    day,
    requests: tally.requests,
    byStatusClass: Object.fromEntries([...tally.statusClass].sort()),
    denials: tally.denied,
    denialsByReason: byCount(tally.reasons).map(([reason, count]) => ({ reason, count })),
    rateLimited: tally.rateLimited,
    signIns: { succeeded: tally.signIns.succeeded, failed: tally.signIns.failed, locked: tally.signIns.locked, rejectedTokens: tally.rejectedTokens, clientCredentialsFailed: tally.signIns.clientFailed },
    failedSignInsByUser: tally.failedSignInUsers.top(TOP).map((e) => ({ user: e.value, count: e.count })),
    failedSignInsByIp: tally.failedSignInAddresses.top(TOP).map((e) => ({ ip: e.value, count: e.count })),
    topDeniedIps: tally.addresses.top(TOP, 'denied').map((e) => ({ ip: e.value, count: e.denied })),
    upstreamErrors: tally.upstreamErrors,
    alerts: alerts.sort((a, b) => a.time.localeCompare(b.time)),
    securityEvents,
    filesRead,
    unreadableFiles: unreadable,
  };
}

export function formatDailyReport(r: DailyReport): string {
  const list = (rows: { key: string; count: number }[]): string[] => (rows.length ? rows.map((x) => `  ${x.key.padEnd(24)} ${x.count}`) : ['  (none)']);
  const s = r.signIns;
  const lines = [
    `crm-gateway daily report ${r.day} (UTC)`,
    `requests: ${r.requests} (${Object.entries(r.byStatusClass).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'})`,
    `denials: ${r.denials}`,
    ...r.denialsByReason.map((d) => `  ${d.reason.padEnd(24)} ${d.count}`),
    `rate-limit refusals: ${r.rateLimited}`,
    `sign-ins: ${s.succeeded} succeeded, ${s.failed} failed, ${s.locked} refused while locked`,
    `failed sign-ins by user:`,
    ...list(r.failedSignInsByUser.map((u) => ({ key: u.user, count: u.count }))),
    `failed sign-ins by address:`,
    ...list(r.failedSignInsByIp.map((u) => ({ key: u.ip, count: u.count }))),
    `rejected tokens: ${s.rejectedTokens}`,
    `rejected client credentials: ${s.clientCredentialsFailed}`,
    `top denied IPs:`,
    ...list(r.topDeniedIps.map((i) => ({ key: i.ip, count: i.count }))),
    `upstream errors: ${r.upstreamErrors}`,
    `security events: ${r.securityEvents}`,
    `alerts: ${r.alerts.length}`,
    ...r.alerts.map((a) => `  ${a.time} ${a.alert} ${a.subject}: ${a.message}`),
  ];
  if (r.unreadableFiles.length) lines.push(`WARNING: unreadable or truncated files: ${r.unreadableFiles.join(', ')}`);
  // Login names and alert subjects come from clients: escaped so each stays on its own line.
  return `${lines.map(printable).join('\n')}\n`;
}
