import { boundedCache } from '../stores/bounded-cache.js';

/** Distinct buckets remembered for sampling; past this the least recent is forgotten (and may log again). */
const MAX_TRACKED_KEYS = 10_000;
/** At most one rejection event per bucket in this period (or per window, when shorter). */
export const REJECTION_LOG_PERIOD_MS = 60_000;

/**
 * Sampling of rejection events per bucket: the first rejection of a period is logged, the rest
 * are counted and reported with the next logged one, so a flood from one client costs one
 * line a period, while every distinct client still shows up.
 */
export class RejectionSampler {
  private readonly seen = boundedCache<string, { until: number; suppressed: number }>(MAX_TRACKED_KEYS);
  private readonly periodMs: number;

  constructor(
    windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.periodMs = Math.min(windowMs, REJECTION_LOG_PERIOD_MS);
  }

  /** Undefined: stay quiet. A number: log now, reporting that many rejections left out before. */
  take(key: string): number | undefined {
    const t = this.now();
    const entry = this.seen.get(key);
    if (entry && t < entry.until) {
      entry.suppressed++;
      return undefined;
    }
    this.seen.set(key, { until: t + this.periodMs, suppressed: 0 });
    return entry?.suppressed ?? 0;
  }
}
