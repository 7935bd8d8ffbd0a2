import { CLIENT_SUBJECT_PREFIX } from '../../auth/store/types.js';
import { ERRORS, type ErrorCode } from '../../errors.js';
import type { SecurityEvent } from '../../log/events.js';
import { UPSTREAM_FAILURE_CODES } from '../alerts/rules.js';
import { LatencyHistogram } from './latency-histogram.js';
import { TopCounts } from './top-counts.js';

/**
 * The one place that says what a log record counts as, for the security overview (by hour,
 * live and backfilled) and for `audit report` (one day, from the files), so both give the same
 * figures for the same lines.
 *
 * One source per figure, so nothing is counted twice:
 * - Requests, denials (every reason, RATE_LIMITED included), rate-limit refusals, rejected
 *   tokens, routes, latency and the top lists come from the ACCESS records: every answered
 *   request has exactly one, written as it is answered, and the `crmgw_*` request metrics are
 *   read from the same reply. `request.denied` events are not counted (they repeat the access
 *   record of a denial), nor `ratelimit.rejected` events (sampled: one per bucket and period,
 *   the rest reported late through `suppressedSinceLast`).
 * - Sign-ins come from the SECURITY events of the sign-in forms (`auth.login_succeeded`,
 *   `auth.login_failed`, `auth.login_locked`; the overview's own sign-in writes them too):
 *   the access record of a form post says only AUTH_FAILED or AUTH_LOCKED, which the token
 *   endpoint answers too.
 */

/** Codes of a bearer or cookie token (or websocket ticket) that was presented and refused. */
export const TOKEN_REJECTION_CODES: ReadonlySet<string> = new Set(['AUTH_INVALID', 'AUTH_EXPIRED', 'AUTH_REVOKED', 'AUTH_AMBIGUOUS', 'AUTH_DISABLED']);
/** The route name of requests that matched no route. */
export const NO_ROUTE = '(none)';
/** Where routes and reasons beyond a tally's limits are counted (logs of an older, larger config). */
export const OTHER = '(other)';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** What one access record counts as. */
export interface AccessFacts {
  readonly route: string;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly denied: boolean;
  readonly rateLimited: boolean;
  readonly rejectedToken: boolean;
  readonly upstreamError: boolean;
  /**
   * Forwarded plain requests only: the time to the upstream's response head. Never the request's
   * whole duration: a websocket session or a 30 s long-poll is not upstream latency.
   */
  readonly upstreamMs: number | undefined;
  readonly user: string | undefined;
  readonly client: string | undefined;
  readonly address: string | undefined;
  readonly path: string | undefined;
}

/**
 * The facts of an access record; undefined for a line that is not a request (the log's own
 * records, such as lines dropped, carry an `event`).
 */
export function accessFacts(r: Record<string, unknown>): AccessFacts | undefined {
  if (r.event !== undefined) return undefined;
  const code = str(r.code);
  const status = typeof r.status === 'number' ? r.status : undefined;
  // As the denial metric (crmgw_denials_total) decides, from the code's own status rather than
  // the line's: a refusal after the answer's head went out is logged `aborted` with the status
  // the client got (200), and is a denial all the same. Not the gateway's own failures (5xx).
  const codeStatus = code === undefined ? undefined : Object.hasOwn(ERRORS, code) ? ERRORS[code as ErrorCode].status : status;
  const denied = code !== undefined && !UPSTREAM_FAILURE_CODES.has(code) && ((codeStatus ?? 500) < 500 || r.outcome === 'denied');
  const subject = str(r.user);
  const isClient = subject !== undefined && (subject.startsWith(CLIENT_SUBJECT_PREFIX) || r.authMethod === 'whatsapp');
  const forwarded = r.outcome === 'forwarded';
  const upstreamMs = forwarded && typeof r.upstreamMs === 'number' ? r.upstreamMs : undefined;
  return {
    route: str(r.route) ?? NO_ROUTE,
    status,
    code,
    denied,
    rateLimited: denied && code === 'RATE_LIMITED',
    rejectedToken: denied && code !== undefined && TOKEN_REJECTION_CODES.has(code),
    upstreamError: code !== undefined && UPSTREAM_FAILURE_CODES.has(code),
    upstreamMs,
    user: isClient ? undefined : subject,
    client: isClient ? subject : undefined,
    address: str(r.clientIp),
    path: str(r.path),
  };
}

export type SignInOutcome = 'succeeded' | 'failed' | 'locked' | 'clientFailed';

export interface SignInFacts {
  readonly outcome: SignInOutcome;
  readonly user: string | undefined;
  readonly address: string | undefined;
}

/**
 * The address of a sign-in event. Older lines hold the lockout key (`ip:127.0.0.1`, an IPv6
 * /64 as `ip:2001:db8::/64`) in `clientIp`: read as the plain address so old and new logs
 * count under one spelling.
 */
export function plainAddress(v: unknown): string | undefined {
  const s = str(v);
  return s?.startsWith('ip:') ? s.slice(3) || undefined : s;
}

/**
 * The facts of a security event about a sign-in; undefined for any other event. A failed
 * `/auth/token` client-credentials attempt writes `auth.login_failed` too, for `client:<name>`:
 * it is no sign-in of a person, so it is its own figure.
 */
export function signInFacts(r: Record<string, unknown>): SignInFacts | undefined {
  const event = r.event;
  const user = str(r.user) ?? str(r.username);
  const address = plainAddress(r.clientIp);
  if (event === ('auth.login_succeeded' satisfies SecurityEvent)) return { outcome: 'succeeded', user, address };
  if (event === ('auth.login_locked' satisfies SecurityEvent)) return { outcome: 'locked', user, address };
  if (event === ('auth.login_failed' satisfies SecurityEvent)) return { outcome: user?.startsWith(CLIENT_SUBJECT_PREFIX) ? 'clientFailed' : 'failed', user, address };
  return undefined;
}

/** Entries a tally keeps per kind: bounded so a flood of distinct values costs bounded memory. */
export interface TallyLimits {
  readonly routes: number;
  readonly reasons: number;
  readonly users: number;
  readonly clients: number;
  readonly addresses: number;
  readonly paths: number;
  /** Names and addresses of failed sign-ins, each. */
  readonly signInKeys: number;
}

export const UNBOUNDED: TallyLimits = { routes: Infinity, reasons: Infinity, users: Infinity, clients: Infinity, addresses: Infinity, paths: Infinity, signInKeys: Infinity };

export class RouteTally {
  requests = 0;
  denied = 0;
  /** Created with the first forwarded request: routes that only refuse cost no histogram. */
  latency: LatencyHistogram | undefined;

  addLatency(other: LatencyHistogram): void {
    (this.latency ??= new LatencyHistogram()).addAll(other);
  }
}

export interface SignInCounts {
  succeeded: number;
  failed: number;
  locked: number;
  clientFailed: number;
}

/** The counts of a span of time (an hour of the overview, a day of the report). */
export class Tally {
  requests = 0;
  denied = 0;
  rateLimited = 0;
  rejectedTokens = 0;
  upstreamErrors = 0;
  readonly statusClass = new Map<string, number>();
  readonly reasons = new Map<string, number>();
  readonly routes = new Map<string, RouteTally>();
  readonly users: TopCounts;
  readonly clients: TopCounts;
  readonly addresses: TopCounts;
  readonly paths: TopCounts;
  readonly signIns: SignInCounts = { succeeded: 0, failed: 0, locked: 0, clientFailed: 0 };
  readonly failedSignInUsers: TopCounts;
  readonly failedSignInAddresses: TopCounts;

  constructor(private readonly limits: TallyLimits) {
    this.users = new TopCounts(limits.users);
    this.clients = new TopCounts(limits.clients);
    this.addresses = new TopCounts(limits.addresses);
    this.paths = new TopCounts(limits.paths);
    this.failedSignInUsers = new TopCounts(limits.signInKeys);
    this.failedSignInAddresses = new TopCounts(limits.signInKeys);
  }

  addAccess(f: AccessFacts): void {
    this.requests++;
    const cls = f.status === undefined ? 'none' : `${String(f.status)[0]}xx`;
    this.statusClass.set(cls, (this.statusClass.get(cls) ?? 0) + 1);
    if (f.upstreamError) this.upstreamErrors++;
    if (f.denied) {
      this.denied++;
      if (f.rateLimited) this.rateLimited++;
      if (f.rejectedToken) this.rejectedTokens++;
      const reason = this.reasons.has(f.code as string) || this.reasons.size < this.limits.reasons ? (f.code as string) : OTHER;
      this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    }
    const route = this.route(f.route);
    route.requests++;
    if (f.denied) route.denied++;
    if (f.upstreamMs !== undefined) (route.latency ??= new LatencyHistogram()).add(f.upstreamMs);
    if (f.user) this.users.add(f.user, f.denied);
    if (f.client) this.clients.add(f.client, f.denied);
    if (f.address) this.addresses.add(f.address, f.denied);
    if (f.path) this.paths.add(f.path, f.denied);
  }

  addSignIn(f: SignInFacts): void {
    this.signIns[f.outcome]++;
    if (f.outcome !== 'failed') return;
    if (f.user) this.failedSignInUsers.add(f.user, true);
    if (f.address) this.failedSignInAddresses.add(f.address, true);
  }

  /** Adds another tally's counts (the buckets of a range into one). */
  addAll(o: Tally): void {
    this.requests += o.requests;
    this.denied += o.denied;
    this.rateLimited += o.rateLimited;
    this.rejectedTokens += o.rejectedTokens;
    this.upstreamErrors += o.upstreamErrors;
    for (const [k, v] of o.statusClass) this.statusClass.set(k, (this.statusClass.get(k) ?? 0) + v);
    for (const [k, v] of o.reasons) this.reasons.set(k, (this.reasons.get(k) ?? 0) + v);
    for (const [name, r] of o.routes) {
      const mine = this.route(name);
      mine.requests += r.requests;
      mine.denied += r.denied;
      if (r.latency) mine.addLatency(r.latency);
    }
    this.users.addAll(o.users);
    this.clients.addAll(o.clients);
    this.addresses.addAll(o.addresses);
    this.paths.addAll(o.paths);
    for (const k of Object.keys(this.signIns) as SignInOutcome[]) this.signIns[k] += o.signIns[k];
    this.failedSignInUsers.addAll(o.failedSignInUsers);
    this.failedSignInAddresses.addAll(o.failedSignInAddresses);
  }

  /** Map entries held (routes, reasons and every top list). */
  entries(): number {
    return this.statusClass.size + this.reasons.size + this.routes.size + this.users.size + this.clients.size + this.addresses.size + this.paths.size + this.failedSignInUsers.size + this.failedSignInAddresses.size;
  }

  private route(name: string): RouteTally {
    let r = this.routes.get(name);
    if (!r) {
      const key = this.routes.size < this.limits.routes ? name : OTHER;
      r = this.routes.get(key);
      if (!r) {
        r = new RouteTally();
        this.routes.set(key, r);
      }
    }
    return r;
  }
}

/** Map entries sorted by count, then name. */
export function byCount(m: ReadonlyMap<string, number>): [string, number][] {
  return [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}
