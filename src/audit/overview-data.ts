import { boundedCache } from '../stores/bounded-cache.js';
import { FAILED_AUTH_CODES } from './alerts.js';
import { listLogFiles, readLogLines } from './files.js';
import { checkLine } from './chain.js';

const HOUR_MS = 3_600_000;
export const OVERVIEW_HOURS = 24;
/** Distinct IPs counted per hour; beyond it the rarest are not tracked (bounded memory under floods). */
const MAX_IPS_PER_HOUR = 2_000;
const RECENT_ALERTS = 50;
const TOP_IPS = 10;

interface Bucket {
  readonly start: number;
  readonly denials: Map<string, number>;
  readonly deniedIps: Map<string, number>;
  failedLogins: number;
}

export interface RecentAlert {
  readonly time: string;
  readonly alert: string;
  readonly subject: string;
  readonly message: string;
}

export interface OverviewSnapshot {
  readonly from: string;
  readonly to: string;
  readonly totalDenials: number;
  readonly denialsByReason: { reason: string; count: number }[];
  readonly failedLoginsByHour: { hour: string; count: number }[];
  readonly topDeniedIps: { ip: string; count: number }[];
  readonly recentAlerts: RecentAlert[];
}

/**
 * The last 24 hours of security events, by hour, for the overview page: denials by reason,
 * failed logins, denied IPs, recent alerts. Fed with every security record as it is written,
 * and at startup from the security log files, so a restart does not blank the page.
 */
export class SecurityOverview {
  private readonly buckets = new Map<number, Bucket>();
  private readonly alerts: RecentAlert[] = [];
  private readonly failedRequests = boundedCache<string, true>(10_000);

  constructor(private readonly now: () => number = Date.now) {}

  observe(r: Record<string, unknown>): void {
    const event = typeof r.event === 'string' ? r.event : '';
    const time = typeof r.time === 'string' ? Date.parse(r.time) : NaN;
    if (!Number.isFinite(time) || time < this.now() - OVERVIEW_HOURS * HOUR_MS) return;
    const requestId = typeof r.requestId === 'string' ? r.requestId : undefined;
    if (event === 'request.denied') {
      const code = typeof r.code === 'string' ? r.code : 'UNKNOWN';
      const b = this.bucket(time);
      b.denials.set(code, (b.denials.get(code) ?? 0) + 1);
      const ip = typeof r.clientIp === 'string' ? r.clientIp : undefined;
      if (ip && (b.deniedIps.has(ip) || b.deniedIps.size < MAX_IPS_PER_HOUR)) b.deniedIps.set(ip, (b.deniedIps.get(ip) ?? 0) + 1);
      if (FAILED_AUTH_CODES.has(code)) this.failedLogin(time, requestId);
    } else if (event === 'ratelimit.rejected') {
      // Rate-limit refusals are sampled (one event per bucket per period, carrying the number
      // left out since the previous one), so a flood counts fully once its next event is written.
      const suppressed = typeof r.suppressedSinceLast === 'number' && r.suppressedSinceLast > 0 ? r.suppressedSinceLast : 0;
      const b = this.bucket(time);
      b.denials.set('RATE_LIMITED', (b.denials.get('RATE_LIMITED') ?? 0) + 1 + suppressed);
      const ip = typeof r.clientIp === 'string' ? r.clientIp : undefined;
      if (ip && (b.deniedIps.has(ip) || b.deniedIps.size < MAX_IPS_PER_HOUR)) b.deniedIps.set(ip, (b.deniedIps.get(ip) ?? 0) + 1 + suppressed);
    } else if (event === 'auth.login_failed') {
      this.failedLogin(time, requestId);
    } else if (event.startsWith('alert.')) {
      this.alerts.push({
        time: new Date(time).toISOString(),
        alert: event.slice('alert.'.length),
        subject: typeof r.subject === 'string' ? r.subject : '',
        message: typeof r.message === 'string' ? r.message : '',
      });
      this.alerts.sort((a, b) => a.time.localeCompare(b.time));
      if (this.alerts.length > RECENT_ALERTS) this.alerts.splice(0, this.alerts.length - RECENT_ALERTS);
    }
  }

  /** Reads the last day's security files (every chain) in `dir` into the overview. */
  async backfill(dir: string): Promise<number> {
    const since = new Date(this.now() - OVERVIEW_HOURS * HOUR_MS).toISOString().slice(0, 10);
    let n = 0;
    for (const files of listLogFiles(dir).values()) {
      for (const f of files) {
        if (f.stream !== 'security' || f.day < since) continue;
        await readLogLines(f.path, f.gzipped, (line) => {
          const c = checkLine(line);
          if (c.ok) {
            this.observe(c.record);
            n++;
          }
        });
      }
    }
    return n;
  }

  snapshot(): OverviewSnapshot {
    const now = this.now();
    const firstHour = Math.floor(now / HOUR_MS) * HOUR_MS - (OVERVIEW_HOURS - 1) * HOUR_MS;
    for (const start of this.buckets.keys()) if (start < firstHour) this.buckets.delete(start);
    const reasons = new Map<string, number>();
    const ips = new Map<string, number>();
    const hours: { hour: string; count: number }[] = [];
    let total = 0;
    for (let h = 0; h < OVERVIEW_HOURS; h++) {
      const start = firstHour + h * HOUR_MS;
      const b = this.buckets.get(start);
      hours.push({ hour: new Date(start).toISOString(), count: b?.failedLogins ?? 0 });
      if (!b) continue;
      for (const [k, v] of b.denials) {
        reasons.set(k, (reasons.get(k) ?? 0) + v);
        total += v;
      }
      for (const [k, v] of b.deniedIps) ips.set(k, (ips.get(k) ?? 0) + v);
    }
    const sorted = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const from = new Date(now - OVERVIEW_HOURS * HOUR_MS).toISOString();
    return {
      from,
      to: new Date(now).toISOString(),
      totalDenials: total,
      denialsByReason: sorted(reasons).map(([reason, count]) => ({ reason, count })),
      failedLoginsByHour: hours,
      topDeniedIps: sorted(ips)
        .slice(0, TOP_IPS)
        .map(([ip, count]) => ({ ip, count })),
      recentAlerts: this.alerts.filter((a) => a.time >= from).reverse(),
    };
  }

  private failedLogin(time: number, requestId: string | undefined): void {
    if (requestId) {
      if (this.failedRequests.has(requestId)) return;
      this.failedRequests.set(requestId, true);
    }
    this.bucket(time).failedLogins++;
  }

  private bucket(time: number): Bucket {
    const start = Math.floor(time / HOUR_MS) * HOUR_MS;
    let b = this.buckets.get(start);
    if (!b) {
      b = { start, denials: new Map(), deniedIps: new Map(), failedLogins: 0 };
      this.buckets.set(start, b);
    }
    return b;
  }
}
