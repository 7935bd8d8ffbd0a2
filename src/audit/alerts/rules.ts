import { boundedCache } from '../../stores/bounded-cache.js';
import type { AlertsConfig } from '../../config/schema.js';
import type { EventFields, SecurityEvent } from '../../log/events.js';
import { normalizeIp } from '../../net/ip.js';
import { ipGroup } from '../../ratelimit/keys.js';

/** Keys (IPs, users, routes) tracked per rule; the least recently seen are forgotten beyond it. */
const MAX_KEYS = 10_000;
/** Addresses remembered per user for the new-address rule. */
const MAX_IPS_PER_USER = 64;
/**
 * IPv6 clients are counted per /64, the rate limiter's grouping (src/ratelimit/keys.ts): one
 * host holds a whole /64 and can use a fresh address for every request, so per-address counts
 * would never reach a threshold. Automatic containment blocks the same /64 (src/containment/auto.ts).
 */
export const ALERT_IPV6_PREFIX = 64;

/** What an address is counted as: IPv4 itself, IPv6 its /64 (`2001:db8:1:2::/64`). */
export function addressGroup(ip: string): string {
  const parsed = normalizeIp(ip);
  return parsed ? ipGroup(parsed, ALERT_IPV6_PREFIX) : ip;
}

/** Denial codes that mean credentials were presented and refused (not merely missing). */
export const FAILED_AUTH_CODES: ReadonlySet<string> = new Set(['AUTH_INVALID', 'AUTH_REVOKED', 'AUTH_FAILED', 'AUTH_DISABLED', 'AUTH_AMBIGUOUS']);
/** Denial codes of paths or targets the gateway refused as unsafe. */
export const REJECTED_PATH_CODES: ReadonlySet<string> = new Set(['PATH_REJECTED', 'BAD_REQUEST_TARGET']);
export const UPSTREAM_FAILURE_CODES: ReadonlySet<string> = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_BAD_RESPONSE']);

export type AlertType =
  | 'failed_logins_user'
  | 'failed_logins_ip'
  | 'account_locked'
  | 'new_ip_for_user'
  | 'suspicious_rate_limited'
  | 'suspicious_rejected_paths'
  | 'upstream_down'
  | 'event_loop_lag'
  | 'memory_high'
  | 'log_unwritable'
  | 'log_backlog_full'
  | 'log_recovered'
  | 'events_db_unavailable'
  | 'acme_failed';

/** Raises an alert: one security event (`alert.<type>`, with the fields it declares), and the other channels (console, webhook). */
export type RaiseAlert = <T extends AlertType>(type: T, subject: string, message: string, fields?: EventFields<`alert.${T}`>) => void;

/** Hits per key within a sliding window; says when a key reaches its threshold. */
export class WindowCounter {
  private readonly hits = boundedCache<string, number[]>(MAX_KEYS);
  constructor(
    private readonly windowMs: number,
    private readonly threshold: number,
  ) {}

  /** Records a hit; returns the count when it reaches the threshold (the key then starts over). */
  hit(key: string, now: number): number | undefined {
    const since = now - this.windowMs;
    const list = (this.hits.get(key) ?? []).filter((t) => t > since);
    list.push(now);
    if (list.length >= this.threshold) {
      this.hits.delete(key);
      return list.length;
    }
    this.hits.set(key, list);
    return undefined;
  }
}

/** Lets one alert per type and subject through per cooldown. */
export class Cooldown {
  private readonly last = boundedCache<string, number>(MAX_KEYS);
  constructor(private readonly ms: number) {}
  allow(key: string, now: number): boolean {
    const t = this.last.get(key);
    if (t !== undefined && now - t < this.ms) return false;
    this.last.set(key, now);
    return true;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const minutes = (ms: number): string => (ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`);

/**
 * The alert rules of the security architecture, fed with every (redacted) access and security
 * record: repeated failed authentication per user and per IP, a user from an address never
 * seen for them, bursts of rate-limit refusals or rejected paths from one IP, an upstream that
 * keeps failing. Memory is bounded (LRU per rule). Known addresses are learned in memory, so
 * after a restart each user's first address is learned without an alert.
 */
export class AlertRules {
  private readonly failedByUser: WindowCounter;
  private readonly failedByIp: WindowCounter;
  private readonly rateLimited: WindowCounter;
  private readonly rejectedPaths: WindowCounter;
  private readonly upstream: WindowCounter;
  private readonly knownIps = boundedCache<string, Set<string>>(MAX_KEYS);
  /** Requests whose failed login was counted from its security event (not again from its access line). */
  private readonly counted = boundedCache<string, true>(MAX_KEYS);

  constructor(
    private readonly cfg: AlertsConfig,
    private readonly raise: RaiseAlert,
    private readonly now: () => number = Date.now,
  ) {
    this.failedByUser = new WindowCounter(cfg.failedLogins.window, cfg.failedLogins.perUser);
    this.failedByIp = new WindowCounter(cfg.failedLogins.window, cfg.failedLogins.perIp);
    this.rateLimited = new WindowCounter(cfg.suspicious.window, cfg.suspicious.rateLimited);
    this.rejectedPaths = new WindowCounter(cfg.suspicious.window, cfg.suspicious.rejectedPaths);
    this.upstream = new WindowCounter(cfg.upstreamDown.window, cfg.upstreamDown.errors);
  }

  security(r: Record<string, unknown>): void {
    const event = str(r.event) ?? '';
    if (event.startsWith('alert.')) return;
    const ip = str(r.clientIp);
    const user = str(r.user) ?? str(r.username) ?? str(r.subject);
    if (event === ('auth.login_failed' satisfies SecurityEvent)) {
      const requestId = str(r.requestId);
      if (requestId) this.counted.set(requestId, true);
      if (user) this.failedUser(user, ip);
      if (ip) this.failedIp(ip);
    } else if (event === ('auth.lockout' satisfies SecurityEvent)) {
      this.locked(r, ip);
    } else if (event === ('auth.login_succeeded' satisfies SecurityEvent) && user && ip) {
      this.seen(user, ip);
    }
  }

  access(r: Record<string, unknown>): void {
    const ip = str(r.clientIp);
    const code = str(r.code);
    const user = str(r.user);
    if (user && ip && typeof r.status === 'number' && r.status < 400) this.seen(user, ip);
    if (!code) return;
    if (FAILED_AUTH_CODES.has(code) && ip) {
      const requestId = str(r.requestId);
      if (!requestId || !this.counted.has(requestId)) this.failedIp(ip);
    } else if (code === 'RATE_LIMITED' && ip) {
      const group = addressGroup(ip);
      const n = this.rateLimited.hit(group, this.now());
      if (n) this.raise('suspicious_rate_limited', group, `${n} rate-limited requests from ${group} within ${minutes(this.cfg.suspicious.window)}`, { clientIp: ip, count: n, windowMs: this.cfg.suspicious.window });
    } else if (REJECTED_PATH_CODES.has(code) && ip) {
      const group = addressGroup(ip);
      const n = this.rejectedPaths.hit(group, this.now());
      if (n) this.raise('suspicious_rejected_paths', group, `${n} rejected paths from ${group} within ${minutes(this.cfg.suspicious.window)}`, { clientIp: ip, count: n, windowMs: this.cfg.suspicious.window });
    } else if (UPSTREAM_FAILURE_CODES.has(code)) {
      const route = str(r.route) ?? '(unknown)';
      const n = this.upstream.hit(route, this.now());
      if (n) this.raise('upstream_down', route, `upstream of route ${route} failed ${n} times within ${minutes(this.cfg.upstreamDown.window)} (last: ${code})`, { route, count: n, lastCode: code, windowMs: this.cfg.upstreamDown.window });
    }
  }

  /**
   * A lockout names what it locked as its subject: `user:<name>` or `ip:<address group>`. The
   * alert keeps that subject (one cooldown per locked thing; a user may be named like an
   * address) and says it in words.
   */
  private locked(r: Record<string, unknown>, ip: string | undefined): void {
    const subject = str(r.subject);
    if (!subject) return;
    const failures = typeof r.failures === 'number' ? ` after ${r.failures} failed sign-ins` : ' after repeated failed sign-ins';
    const lockedFor = typeof r.lockedForMs === 'number' ? ` for ${minutes(r.lockedForMs)}` : '';
    const [kind, name] = subject.startsWith('ip:') ? ['address', subject.slice(3)] : ['account', str(r.user) ?? subject.replace(/^user:/, '')];
    this.raise('account_locked', subject, `${kind} ${name} locked${lockedFor}${failures}`, { ...(kind === 'account' ? { user: name } : {}), clientIp: ip, lockedForMs: r.lockedForMs });
  }

  private failedUser(user: string, ip: string | undefined): void {
    const n = this.failedByUser.hit(user, this.now());
    if (n) this.raise('failed_logins_user', user, `${n} failed logins for user ${user} within ${minutes(this.cfg.failedLogins.window)}`, { user, clientIp: ip, count: n, windowMs: this.cfg.failedLogins.window });
  }

  /** The subject and message name the address group (an IPv6 /64); `clientIp` is the last address. */
  private failedIp(ip: string): void {
    const group = addressGroup(ip);
    const n = this.failedByIp.hit(group, this.now());
    if (n) this.raise('failed_logins_ip', group, `${n} failed authentications from ${group} within ${minutes(this.cfg.failedLogins.window)}`, { clientIp: ip, count: n, windowMs: this.cfg.failedLogins.window });
  }

  private seen(user: string, ip: string): void {
    if (!this.cfg.newIp) return;
    const known = this.knownIps.get(user);
    if (!known) {
      this.knownIps.set(user, new Set([ip]));
      return;
    }
    if (known.has(ip)) return;
    if (known.size >= MAX_IPS_PER_USER) known.delete(known.values().next().value as string);
    known.add(ip);
    this.raise('new_ip_for_user', `${user}|${ip}`, `user ${user} seen from ${ip}, an address never seen for them`, { user, clientIp: ip, knownAddresses: known.size - 1 });
  }
}
