import type { Redis } from 'ioredis';
import type { RequestContext } from '../context.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { createLimitStore, type LimitStore } from './store.js';
import { OutageLog } from './outage.js';
import { RejectionSampler } from './sample.js';
import { rejectedTotal, storeFailuresTotal } from './metrics.js';

export type FailMode = 'open' | 'closed';

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

/** A fixed-window limit on a store (Redis, or this process's memory), with its fail mode applied. */
export class Limiter {
  readonly store: LimitStore;
  private readonly outage: OutageLog;
  private readonly sampler: RejectionSampler;

  constructor(
    readonly policy: LimitPolicy,
    redis: Redis | undefined,
    private readonly log: Logger,
  ) {
    this.store = createLimitStore(policy.windowMs, redis);
    this.outage = new OutageLog(policy.name, policy.failMode, this.store.kind, log);
    this.sampler = new RejectionSampler(policy.windowMs);
  }

  /**
   * Counts one request in `bucket`. Undefined when the store failed and the limit fails open
   * (the request passes unchecked); throws RATE_LIMIT_UNAVAILABLE when it fails closed.
   */
  async take(bucket: string): Promise<Usage | undefined> {
    const { name, max, windowMs, failMode } = this.policy;
    let hits;
    try {
      hits = await this.store.hit(`${this.policy.keyPrefix}:${bucket}`);
    } catch (err) {
      this.outage.failed(err);
      storeFailuresTotal.inc({ limit: name, fail_mode: failMode });
      if (failMode === 'open') return undefined;
      throw new GatewayError('RATE_LIMIT_UNAVAILABLE', `limit ${name}: ${this.store.kind} store unavailable (${err instanceof Error ? err.message : String(err)})`, {
        'retry-after': String(UNAVAILABLE_RETRY_AFTER_S),
      });
    }
    this.outage.succeeded();
    const untilReset = hits.resetTime ? Math.ceil((hits.resetTime.getTime() - Date.now()) / 1000) : Math.ceil(windowMs / 1000);
    return {
      limiter: this,
      bucket,
      hits: hits.totalHits,
      remaining: Math.max(0, max - hits.totalHits),
      resetSeconds: Math.min(Math.max(0, untilReset), Math.ceil(windowMs / 1000)),
      exceeded: hits.totalHits > max,
    };
  }

  /** Takes back a provisional hit. Best effort: a failure leaves the bucket one too high, never too low. */
  refund(bucket: string): void {
    this.store.refund(`${this.policy.keyPrefix}:${bucket}`).catch(() => undefined);
  }

  /** Counts a refusal; logs it when the sampler lets it through (one event per bucket per period). */
  rejected(ctx: RequestContext, usage: Usage): void {
    rejectedTotal.inc({ limit: this.policy.name });
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
  ctx.responseHeaders['ratelimit-policy'] = checked.map((u) => `${u.limiter.policy.max};w=${Math.ceil(u.limiter.policy.windowMs / 1000)}`).join(', ');
  const tightest = checked.reduce((a, b) => (b.remaining < a.remaining || (b.remaining === a.remaining && b.resetSeconds > a.resetSeconds) ? b : a));
  ctx.responseHeaders.ratelimit = `limit=${tightest.limiter.policy.max}, remaining=${tightest.remaining}, reset=${tightest.resetSeconds}`;
  const over = checked.filter((u) => u.exceeded);
  if (over.length === 0) return;
  for (const u of over) u.limiter.rejected(ctx, u);
  const retryAfter = Math.max(1, ...over.map((u) => u.resetSeconds));
  const detail = over.map((u) => `${u.limiter.policy.name} ${u.bucket}: ${u.hits} > ${u.limiter.policy.max} per ${u.limiter.policy.windowMs} ms`).join('; ');
  throw new GatewayError('RATE_LIMITED', detail, { 'retry-after': String(retryAfter) });
}
