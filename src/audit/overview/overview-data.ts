import { statSync, type Stats } from 'node:fs';
import { checkLine } from '../writer/chain.js';
import { gzipContentSize, listLogFiles, readLogLines, readLogRange, type LogFile } from '../writer/files.js';
import { accessFacts, byCount, signInFacts, Tally, UNBOUNDED, type TallyLimits } from './tally.js';
import type { CountEntry } from './top-counts.js';

const HOUR_MS = 3_600_000;
export type OverviewRange = '24h' | '7d' | '30d';
export const OVERVIEW_RANGES: readonly OverviewRange[] = ['24h', '7d', '30d'];

/**
 * Each range is kept at its own bucket size (24 hours, 28 six-hour spans, 30 days) rather than
 * derived from 720 hourly buckets, so the memory bound below holds 82 buckets, not 720.
 */
const TIERS: Record<OverviewRange, { readonly bucketMs: number; readonly buckets: number }> = {
  '24h': { bucketMs: HOUR_MS, buckets: 24 },
  '7d': { bucketMs: 6 * HOUR_MS, buckets: 28 },
  '30d': { bucketMs: 24 * HOUR_MS, buckets: 30 },
};

/**
 * Entries per bucket. The memory bound, whatever the traffic (a flood of distinct addresses,
 * users or paths included): 82 buckets × (33 routes with one 740-byte latency histogram each,
 * 65 reasons, 200 users, 100 clients, 500 addresses, 500 paths, 2 × 100 failed sign-in names
 * and addresses) ≈ 131,000 map entries at most, and 2 MB of histograms. Keys are cut at 256
 * characters, so even all-longest keys stay under about 60 MB. Measured: 4 million requests of
 * distinct addresses, users and paths over 30 days leave 73,000 entries in 10–12 MB (a full
 * list keeps its busiest half when it prunes); test/unit/audit/overview-data.test.ts checks
 * the bound with 300,000.
 */
const BUCKET_LIMITS: TallyLimits = { routes: 32, reasons: 64, users: 200, clients: 100, addresses: 500, paths: 500, signInKeys: 100 };
/** Records stamped later than now by more than this are not counted (they would open buckets no range shows yet). */
const FUTURE_SLACK_MS = 5 * 60_000;
const RECENT_ALERTS = 50;
/** How often the files of the other processes' chains are looked at for new lines. */
export const FOLLOW_INTERVAL_MS = 2_000;
/**
 * Bytes of other chains' lines read per pass at most (the rest waits for the next pass), so a
 * flood written by another worker costs this one a bounded slice of each interval. Measured on
 * 2 cores with 375-byte access lines: 4.5 µs per line read, checked and counted (7.5 µs with
 * the machine busy), so a full pass is ~11,000 lines in 40–100 ms, read 64 KB at a time (the
 * event loop waited 7 ms at most during a 100,000-line flood). Other workers' traffic up to
 * ~2 MB/s (~5,500 lines/s) is followed as it comes; beyond that the figures lag, then catch up.
 */
export const FOLLOW_MAX_BYTES = 4 * 1024 * 1024;
/** A gzip trailer states the content's length modulo 2^32. */
const GZIP_SIZE_MODULO = 2 ** 32;
const TOP = 10;

export interface Count {
  readonly value: string;
  readonly count: number;
  readonly denied: number;
}
export interface TimePoint {
  /** ISO UTC start of the bucket. */
  readonly start: string;
  readonly requests: number;
  readonly denied: number;
}
export interface RouteFigures {
  /** The route's name as the access record names it; `(none)` for requests that matched no route, `(other)` beyond the bucket limit. */
  readonly route: string;
  readonly requests: number;
  readonly denied: number;
  /** denied / requests, 0..1 (0 without requests). */
  readonly denialRatio: number;
  /** Forwarded requests only, from log-scale histograms (each figure within ±4.5%). */
  readonly upstreamMs: { readonly p50: number; readonly p95: number; readonly p99: number } | undefined;
  readonly overTime: TimePoint[];
}
export interface SignInFigures {
  /** Sign-in form attempts only. */
  readonly succeeded: number;
  readonly failed: number;
  /** Attempts refused because the account or address was locked (`auth.login_locked`). */
  readonly locked: number;
  /** Bearer or cookie tokens (and websocket tickets) refused: AUTH_INVALID, AUTH_EXPIRED, AUTH_REVOKED, AUTH_AMBIGUOUS, AUTH_DISABLED. */
  readonly rejectedTokens: number;
  /** Wrong or unknown client secrets at /auth/token (client credentials), apart from people's sign-ins. */
  readonly clientCredentialsFailed: number;
  readonly overTime: { readonly start: string; readonly succeeded: number; readonly failed: number; readonly locked: number }[];
}
export interface RecentAlert {
  readonly time: string;
  readonly alert: string;
  readonly subject: string;
  readonly message: string;
}
export interface OverviewSnapshot {
  readonly range: OverviewRange;
  /** Start of the first bucket: the figures cover [from, to]. */
  readonly from: string;
  readonly to: string;
  /** 60 for 24h, 360 for 7d, 1440 for 30d. */
  readonly bucketMinutes: number;
  readonly totalRequests: number;
  /** Every refusal (4xx with a reason code), rate-limit refusals included. */
  readonly totalDenials: number;
  readonly rateLimited: number;
  /** 5xx answers with an upstream reason (UPSTREAM_UNAVAILABLE, UPSTREAM_TIMEOUT, UPSTREAM_BAD_RESPONSE). */
  readonly upstreamErrors: number;
  readonly denialsByReason: { readonly reason: string; readonly count: number }[];
  /** All routes. */
  readonly overTime: TimePoint[];
  /** By requests, most first. */
  readonly routes: RouteFigures[];
  readonly signIns: SignInFigures;
  /** By requests, most first; 10 each. Clients are API clients (`client:<name>`) and the WhatsApp webhook. */
  readonly top: { readonly users: Count[]; readonly clients: Count[]; readonly addresses: Count[]; readonly paths: Count[] };
  /** Newest first. */
  readonly recentAlerts: RecentAlert[];
}

const timeOf = (r: Record<string, unknown>): number => (typeof r.time === 'string' ? Date.parse(r.time) : NaN);
const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * The last 30 days of access and security records, for the overview page: requests, denials
 * and latency per route, rate-limit refusals, sign-ins, top users, clients, addresses and paths,
 * recent alerts. Fed with every record as it is written, and at startup from the log files, so
 * a restart does not blank the page. Counting is tally.ts's, shared with `audit report`.
 */
export class SecurityOverview {
  private readonly tiers = new Map<OverviewRange, Map<number, Tally>>(OVERVIEW_RANGES.map((r) => [r, new Map()]));
  private readonly alerts: RecentAlert[] = [];
  private backfilled = false;
  /** Chains fed live by the logger (this process's own): never followed in the files. */
  private own: ReadonlySet<string> = new Set();
  /**
   * Per followed file, by its name without `.gz` (the same before and after compression): the
   * content offset read so far, and whether it is done (a `.gz` read to its end: no more lines).
   */
  private readonly followed = new Map<string, { offset: number; done: boolean }>();
  private follower: { timer?: NodeJS.Timeout; pass?: Promise<void>; stopped: boolean } | undefined;
  private passes: Promise<void> = Promise.resolve();

  constructor(private readonly now: () => number = Date.now) {}

  /** A security record (sign-ins and alerts count; denials are counted from the access record). */
  observe(r: Record<string, unknown>): void {
    const time = timeOf(r);
    const buckets = this.bucketsFor(time);
    if (buckets.length === 0) return;
    const event = typeof r.event === 'string' ? r.event : '';
    if (event.startsWith('alert.')) this.alert(time, event, r);
    const f = signInFacts(r);
    if (f) for (const b of buckets) b.addSignIn(f);
  }

  /** An access record: one answered request. */
  observeAccess(r: Record<string, unknown>): void {
    const f = accessFacts(r);
    if (!f) return;
    for (const b of this.bucketsFor(timeOf(r))) b.addAccess(f);
  }

  /**
   * Reads the security and access files of the last 30 days, line by line, each line whose
   * chain hash holds. Of the `own` chains (fed live by this process's logger, which observes
   * before it backfills) only lines stamped before this call count, so none counts twice. Of
   * every other chain (other workers, the CLI) every complete line read counts, and where the
   * reading stopped is kept: `follow` continues from there. Once per overview; a second call
   * reads nothing.
   */
  async backfill(dir: string, own: ReadonlySet<string> = new Set()): Promise<number> {
    if (this.backfilled) return 0;
    this.backfilled = true;
    this.own = own;
    const before = this.now();
    const since = this.firstDay(before);
    let n = 0;
    for (const [chain, files] of listLogFiles(dir)) {
      for (const f of files) {
        // Only regular files: a name that points at a device (a test's /dev/full, a misplaced
        // FIFO) would be read without end.
        if (f.stream === 'app' || f.day < since || !regularFile(f.path)) continue;
        if (!own.has(chain)) {
          n += await this.readOther(f, Infinity).catch(() => 0);
          continue;
        }
        const observe = this.observerOf(f);
        await readLogLines(f.path, f.gzipped, (line) => {
          const c = checkLine(line);
          if (!c.ok || !(timeOf(c.record) < before)) return;
          observe(c.record);
          n++;
        });
      }
    }
    return n;
  }

  /**
   * After `backfill`: every `intervalMs` (unref'd), reads the lines other processes appended to
   * their access and security chains in `dir` since the last look, at most `maxBytes` a pass
   * (cluster workers each count only what they log themselves; the admin page may be answered
   * by any of them). Until `stopFollowing`.
   */
  follow(dir: string, opts: { intervalMs?: number; maxBytes?: number; onError?: (err: Error) => void } = {}): void {
    if (this.follower) return;
    const follower: NonNullable<SecurityOverview['follower']> = { stopped: false };
    this.follower = follower;
    const intervalMs = opts.intervalMs ?? FOLLOW_INTERVAL_MS;
    const maxBytes = opts.maxBytes ?? FOLLOW_MAX_BYTES;
    let lastError = '';
    const schedule = (): void => {
      if (follower.stopped) return;
      // One pass at a time: the next is timed from the end of this one.
      follower.timer = setTimeout(() => {
        follower.pass = this.followPass(dir, maxBytes).then(
          () => {
            lastError = '';
          },
          (err: Error) => {
            // Said once per distinct problem, not every interval.
            if (err.message !== lastError) opts.onError?.(err);
            lastError = err.message;
          },
        );
        void follower.pass.then(schedule);
      }, intervalMs);
      follower.timer.unref();
    };
    schedule();
  }

  /** Stops following (also before `follow` was called); resolves when a pass under way is over. */
  async stopFollowing(): Promise<void> {
    this.follower ??= { stopped: true };
    this.follower.stopped = true;
    clearTimeout(this.follower.timer);
    await this.follower.pass;
  }

  /**
   * One look at the other chains' files (what `follow` does every interval); returns the lines
   * counted. Passes run one after the other, never two over the same offsets at once.
   */
  followPass(dir: string, maxBytes = FOLLOW_MAX_BYTES): Promise<number> {
    const pass = this.passes.then(() => this.readOthers(dir, maxBytes));
    this.passes = pass.then(
      () => undefined,
      () => undefined,
    );
    return pass;
  }

  private async readOthers(dir: string, maxBytes: number): Promise<number> {
    const since = this.firstDay(this.now());
    const listed = new Set<string>();
    let budget = maxBytes;
    let n = 0;
    let failure: Error | undefined;
    for (const [chain, files] of listLogFiles(dir)) {
      if (this.own.has(chain)) continue;
      for (const f of files) {
        if (f.stream === 'app' || f.day < since) continue;
        listed.add(f.name);
        if (budget <= 0 || this.followed.get(f.name)?.done) continue;
        const before = this.followed.get(f.name)?.offset ?? 0;
        try {
          n += await this.readOther(f, budget);
        } catch (err) {
          failure ??= err as Error;
        }
        budget -= (this.followed.get(f.name)?.offset ?? 0) - before;
      }
    }
    // Files removed (retention) or out of the range: nothing more to keep of them.
    for (const name of this.followed.keys()) if (!listed.has(name)) this.followed.delete(name);
    if (failure) throw failure;
    return n;
  }

  snapshot(range: OverviewRange = '24h'): OverviewSnapshot {
    const now = this.now();
    const { bucketMs, buckets: count } = TIERS[range];
    const first = this.windowStart(range, now);
    const buckets = this.prune(range, first);
    const total = new Tally(UNBOUNDED);
    const overTime: TimePoint[] = [];
    const signInsOverTime: SignInFigures['overTime'][number][] = [];
    const perRoute = new Map<string, TimePoint[]>();
    for (let i = 0; i < count; i++) {
      const start = iso(first + i * bucketMs);
      const b = buckets.get(first + i * bucketMs);
      overTime.push({ start, requests: b?.requests ?? 0, denied: b?.denied ?? 0 });
      signInsOverTime.push({ start, succeeded: b?.signIns.succeeded ?? 0, failed: b?.signIns.failed ?? 0, locked: b?.signIns.locked ?? 0 });
      if (!b) continue;
      total.addAll(b);
      for (const [name, r] of b.routes) {
        let series = perRoute.get(name);
        if (!series) perRoute.set(name, (series = []));
        series[i] = { start, requests: r.requests, denied: r.denied };
      }
    }
    const routes: RouteFigures[] = [...total.routes]
      .sort((a, b) => b[1].requests - a[1].requests || a[0].localeCompare(b[0]))
      .map(([route, r]) => {
        const series = perRoute.get(route) ?? [];
        const latency = r.latency;
        return {
          route,
          requests: r.requests,
          denied: r.denied,
          denialRatio: r.requests === 0 ? 0 : r.denied / r.requests,
          upstreamMs: latency && latency.count > 0 ? { p50: latency.percentile(0.5) as number, p95: latency.percentile(0.95) as number, p99: latency.percentile(0.99) as number } : undefined,
          overTime: overTime.map((p, i) => series[i] ?? { start: p.start, requests: 0, denied: 0 }),
        };
      });
    const from = iso(first);
    const top = (c: { top(n: number): CountEntry[] }): Count[] => c.top(TOP);
    return {
      range,
      from,
      to: iso(now),
      bucketMinutes: bucketMs / 60_000,
      totalRequests: total.requests,
      totalDenials: total.denied,
      rateLimited: total.rateLimited,
      upstreamErrors: total.upstreamErrors,
      denialsByReason: byCount(total.reasons).map(([reason, n]) => ({ reason, count: n })),
      overTime,
      routes,
      signIns: {
        succeeded: total.signIns.succeeded,
        failed: total.signIns.failed,
        locked: total.signIns.locked,
        rejectedTokens: total.rejectedTokens,
        clientCredentialsFailed: total.signIns.clientFailed,
        overTime: signInsOverTime,
      },
      top: { users: top(total.users), clients: top(total.clients), addresses: top(total.addresses), paths: top(total.paths) },
      recentAlerts: this.alerts.filter((a) => a.time >= from).reverse(),
    };
  }

  /** Map entries held now, over every bucket (for the memory-bound test). */
  trackedEntries(): number {
    let n = 0;
    for (const buckets of this.tiers.values()) for (const b of buckets.values()) n += b.entries();
    return n;
  }

  private alert(time: number, event: string, r: Record<string, unknown>): void {
    this.alerts.push({
      time: iso(time),
      alert: event.slice('alert.'.length),
      subject: typeof r.subject === 'string' ? r.subject : '',
      message: typeof r.message === 'string' ? r.message : '',
    });
    this.alerts.sort((a, b) => a.time.localeCompare(b.time));
    if (this.alerts.length > RECENT_ALERTS) this.alerts.splice(0, this.alerts.length - RECENT_ALERTS);
  }

  private windowStart(range: OverviewRange, now: number): number {
    const { bucketMs, buckets } = TIERS[range];
    return Math.floor(now / bucketMs) * bucketMs - (buckets - 1) * bucketMs;
  }

  /** The bucket of `time` in each range that still shows it (none for a time out of every range). */
  private bucketsFor(time: number): Tally[] {
    const now = this.now();
    if (!Number.isFinite(time) || time > now + FUTURE_SLACK_MS) return [];
    const out: Tally[] = [];
    for (const range of OVERVIEW_RANGES) {
      const first = this.windowStart(range, now);
      if (time < first) continue;
      const { bucketMs } = TIERS[range];
      const start = Math.floor(time / bucketMs) * bucketMs;
      const buckets = this.tiers.get(range) as Map<number, Tally>;
      let b = buckets.get(start);
      if (!b) {
        // A new bucket: the ones that have left the range go first, so no range ever holds more than its count (+1 ahead).
        this.prune(range, first);
        b = new Tally(BUCKET_LIMITS);
        buckets.set(start, b);
      }
      out.push(b);
    }
    return out;
  }

  /**
   * Reads a file of another chain on from where the last read of it stopped, at most about
   * `maxBytes`, and counts each complete line whose hash holds. A plain file is read up to its
   * last newline (the writer may be in the middle of a line). Its `.gz`, after compression, is
   * read only for what the plain file got after the last read; when its trailer says there is
   * nothing more (the usual case), it is not inflated at all.
   */
  private async readOther(f: LogFile, maxBytes: number): Promise<number> {
    const state = this.followed.get(f.name) ?? { offset: 0, done: false };
    if (state.done) return 0;
    // Only regular files: a name that points at a device (a test's /dev/full) would be read without end.
    const stats = regularFile(f.path);
    if (!stats) return 0;
    const end = f.gzipped ? undefined : stats.size;
    if (end !== undefined && end <= state.offset) return 0;
    if (f.gzipped && state.offset > 0 && state.offset < GZIP_SIZE_MODULO && (await gzipContentSize(f.path).catch(() => undefined)) === state.offset) {
      this.followed.set(f.name, { offset: state.offset, done: true });
      return 0;
    }
    const observe = this.observerOf(f);
    let n = 0;
    const read = await readLogRange(f.path, f.gzipped, { start: state.offset, ...(end !== undefined ? { end } : {}), maxBytes }, (line) => {
      const c = checkLine(line);
      if (!c.ok) return;
      observe(c.record);
      n++;
    });
    // A `.gz` is closed for good: read to its end (a torn last line included) or unreadable, it is done.
    this.followed.set(f.name, { offset: read.next, done: f.gzipped && (read.reachedEnd || (read.error !== undefined && read.error.code !== 'ENOENT')) });
    // Gone since the listing (compressed, removed): the next listing shows what became of it.
    if (read.error && read.error.code !== 'ENOENT') throw new Error(`${f.name}: ${read.error.message}`);
    return n;
  }

  private observerOf(f: LogFile): (r: Record<string, unknown>) => void {
    return f.stream === 'access' ? this.observeAccess.bind(this) : this.observe.bind(this);
  }

  /** The first UTC day (YYYY-MM-DD) of the longest range: older files are not read. */
  private firstDay(now: number): string {
    return iso(this.windowStart('30d', now)).slice(0, 10);
  }

  private prune(range: OverviewRange, first: number): Map<number, Tally> {
    const buckets = this.tiers.get(range) as Map<number, Tally>;
    for (const start of buckets.keys()) if (start < first) buckets.delete(start);
    return buckets;
  }
}

/** The file's stats when it is a regular file (not a device, FIFO or folder, not gone). */
function regularFile(path: string): Stats | undefined {
  try {
    const st = statSync(path);
    return st.isFile() ? st : undefined;
  } catch {
    return undefined;
  }
}
