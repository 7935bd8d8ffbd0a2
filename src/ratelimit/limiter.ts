import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../stores/bounded-cache.js';
import type { Redis } from 'ioredis';
import type { RequestContext } from '../context.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { createLimitStore, type Hits, type LimitStore } from './store.js';
import { OutageLog } from './outage.js';
import { RejectionSampler } from './sample.js';
import type { RateLimitMetrics } from './metrics.js';

export type FailMode = 'open' | 'closed';

/** What a limit is built from: the gateway's logger, Redis client and metrics (GatewayDeps has them all). */
export interface LimitDeps {
  readonly log: Logger;
  readonly redis?: Redis | undefined;
  readonly metrics: { readonly rateLimit: RateLimitMetrics };
}

/** What a client may do: `max` requests per fixed window, and what happens while the store is down. */
export interface LimitPolicy {
  /** For logs and metrics: a route name, `login`, `token`. */
  readonly name: string;
  /** Start of every key of this limit, unique among limits (routes `r:<name>`, auth `auth:<kind>`). */
  readonly keyPrefix: string;
  readonly windowMs: number;
  readonly max: number;
  readonly failMode: FailMode;
}

/** One bucket's state after a hit. */
export interface Usage {
  readonly limiter: Limiter;
  readonly bucket: string;
  readonly hits: number;
  readonly remaining: number;
  /** Seconds until the bucket's window ends. */
  readonly resetSeconds: number;
  readonly exceeded: boolean;
}

/** Retry-After sent while a fail-closed limit cannot reach its store: about one reconnect attempt. */
export const UNAVAILABLE_RETRY_AFTER_S = 5;

/**
 * How long this process answers for a bucket it saw reach its max without asking the store
 * again: the store stays the truth (a bucket emptied there, by a Redis restart, is believed
 * within this time), while a flood from one client over its limit costs one round trip per
 * bucket per this period instead of one per request.
 */
export const FULL_BUCKET_MEMORY_MS = 5_000;
/** Full buckets remembered per limit; past this the least recent is forgotten (and asked again). */
const MAX_FULL_BUCKETS = 10_000;

/** A bucket that reached its max: its hits then, and when its window ends (ms since epoch). */
interface Full {
  readonly hits: number;
  readonly resetAt: number;
}

/**
 * A fixed-window limit on a store (Redis, or this process's memory), with its fail mode applied,
 * and a short memory of the buckets it saw full (see FULL_BUCKET_MEMORY_MS): a fixed window
 * never empties before its end, so a request to a full bucket is refused here, before any step
 * after it runs and without a round trip.
 */
export class Limiter {
  readonly store: LimitStore;
  private readonly outage: OutageLog;
  private readonly sampler: RejectionSampler;
  private readonly full: LRUCache<string, Full>;
  private readonly log: Logger;
  private readonly metrics: RateLimitMetrics;

  constructor(
    readonly policy: LimitPolicy,
    deps: LimitDeps,
  ) {
    this.log = deps.log;
    this.metrics = deps.metrics.rateLimit;
    this.store = createLimitStore(policy.windowMs, deps.redis);
    this.outage = new OutageLog(policy.name, policy.failMode, this.store.kind, deps.log);
    this.sampler = new RejectionSampler(policy.windowMs);
    this.full = boundedCache(MAX_FULL_BUCKETS);
  }

  /**
   * Counts one request in `bucket` (one round trip), or refuses it from memory when the bucket
   * was seen full. Undefined when the store failed and the limit fails open (the request passes
   * unchecked); throws RATE_LIMIT_UNAVAILABLE when it fails closed.
   */
  async take(bucket: string): Promise<Usage | undefined> {
    const known = this.knownFull(bucket);
    if (known) return known;
    let hits;
    try {
      hits = await this.store.hit(this.key(bucket));
    } catch (err) {
      return this.failed(err);
    }
    this.outage.succeeded();
    return this.learn(bucket, hits);
  }

  /**
   * Counts one request in `bucket` unless `guard` is full, in one round trip (see
   * LimitStore.hitUnlessFull). When `guard` is full the usage returned is the guard's, exceeded,
   * and nothing was counted. Fail modes as in `take`.
   */
  async takeUnlessFull(bucket: string, guard: string): Promise<Usage | undefined> {
    const known = this.knownFull(bucket) ?? this.knownFull(guard);
    if (known) return known;
    let result;
    try {
      result = await this.store.hitUnlessFull(this.key(bucket), this.key(guard), this.policy.max);
    } catch (err) {
      return this.failed(err);
    }
    this.outage.succeeded();
    const guardUsage = this.learn(guard, result.guard);
    if (result.charged) return this.learn(bucket, result.charged);
    // Refused for its address: this request would have been one hit more there.
    return this.usage(guard, guardUsage.hits + 1, (result.guard.resetTime?.getTime() ?? Date.now()) - Date.now());
  }

  /** The usage of a bucket this process saw full (the request would be one more hit), else undefined. */
  knownFull(bucket: string): Usage | undefined {
    const f = this.full.get(bucket);
    return f ? this.usage(bucket, f.hits + 1, f.resetAt - Date.now()) : undefined;
  }

  /**
   * Refuses with RATE_LIMIT_UNAVAILABLE, before anything else runs, when the limit fails closed
   * and its store is known to be unreachable: the answer the charge would get anyway.
   */
  refuseWhileUnavailable(): void {
    if (this.policy.failMode === 'closed' && !this.store.ready) this.failed(new Error(`${this.store.kind} store not connected`));
  }

  /** Takes the store's answer as this bucket's usage, and remembers the bucket when it is full. */
  private learn(bucket: string, hits: Hits): Usage {
    const resetMs = hits.resetTime ? hits.resetTime.getTime() - Date.now() : this.policy.windowMs;
    if (hits.totalHits >= this.policy.max && resetMs > 0) {
      this.full.set(bucket, { hits: hits.totalHits, resetAt: Date.now() + resetMs }, { ttl: Math.min(resetMs, FULL_BUCKET_MEMORY_MS) });
    }
    return this.usage(bucket, hits.totalHits, resetMs);
  }

  private usage(bucket: string, hits: number, resetMs: number): Usage {
    const { max, windowMs } = this.policy;
    return {
      limiter: this,
      bucket,
      hits,
      remaining: Math.max(0, max - hits),
      resetSeconds: Math.min(Math.max(0, Math.ceil(resetMs / 1000)), Math.ceil(windowMs / 1000)),
      exceeded: hits > max,
    };
  }

  private key(bucket: string): string {
    return `${this.policy.keyPrefix}:${bucket}`;
  }

  /** The store did not answer: logged once per outage, counted, then the fail mode decides. */
  private failed(err: unknown): undefined {
    const { name, failMode } = this.policy;
    this.outage.failed(err);
    this.metrics.storeFailuresTotal.inc({ limit: name, fail_mode: failMode });
    if (failMode === 'open') return undefined;
    throw new GatewayError('RATE_LIMIT_UNAVAILABLE', `limit ${name}: ${this.store.kind} store unavailable (${err instanceof Error ? err.message : String(err)})`, {
      'retry-after': String(UNAVAILABLE_RETRY_AFTER_S),
    });
  }

  /** Counts a refusal; logs it when the sampler lets it through (one event per bucket per period). */
  rejected(ctx: RequestContext, usage: Usage): void {
    this.metrics.rejectedTotal.inc({ limit: this.policy.name });
    const suppressed = this.sampler.take(usage.bucket);
    if (suppressed === undefined) return;
    this.log.security('ratelimit.rejected', {
      requestId: ctx.id,
      limit: this.policy.name,
      bucket: usage.bucket,
      clientIp: ctx.address?.client.address,
      subject: ctx.principal?.subject,
      max: this.policy.max,
      windowMs: this.policy.windowMs,
      hits: usage.hits,
      suppressedSinceLast: suppressed,
    });
  }

  close(): void {
    this.store.close();
  }
}

/**
 * Sets the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers-07: `RateLimit-Policy`
 * lists every policy, `RateLimit` reports the one closest to its limit), then refuses with
 * RATE_LIMITED and `Retry-After` if any bucket is over its limit. Unchecked usages (store down,
 * fail open) add no headers.
 */
export function enforce(ctx: RequestContext, usages: readonly (Usage | undefined)[]): void {
  const checked = usages.filter((u): u is Usage => u !== undefined);
  if (checked.length === 0) return;
  ctx.reply.headers['ratelimit-policy'] = checked.map((u) => `${u.limiter.policy.max};w=${Math.ceil(u.limiter.policy.windowMs / 1000)}`).join(', ');
  const tightest = checked.reduce((a, b) => (b.remaining < a.remaining || (b.remaining === a.remaining && b.resetSeconds > a.resetSeconds) ? b : a));
  ctx.reply.headers.ratelimit = `limit=${tightest.limiter.policy.max}, remaining=${tightest.remaining}, reset=${tightest.resetSeconds}`;
  const over = checked.filter((u) => u.exceeded);
  if (over.length === 0) return;
  for (const u of over) u.limiter.rejected(ctx, u);
  const retryAfter = Math.max(1, ...over.map((u) => u.resetSeconds));
  const detail = over.map((u) => `${u.limiter.policy.name} ${u.bucket}: ${u.hits} > ${u.limiter.policy.max} per ${u.limiter.policy.windowMs} ms`).join('; ');
  throw new GatewayError('RATE_LIMITED', detail, { 'retry-after': String(retryAfter) });
}
