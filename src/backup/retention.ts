import { rmSync } from 'node:fs';
import type { Catalog, CatalogEntry } from './catalog.js';
import { inFlightPartials } from './in-flight.js';

export const DAY_MS = 86_400_000;
/**
 * A `.partial` untouched this long has no writer (a live run writes continuously); one that
 * belongs to this process is never touched whatever its age.
 */
export const STALE_PARTIAL_MS = 6 * 3_600_000;

export interface RetentionPlan {
  delete: CatalogEntry[];
  keep: CatalogEntry[];
  stalePartials: string[];
}

/**
 * Which backups go: those older than the retention period for which a newer verified backup
 * exists. So the newest verified backup always stays, and when verification keeps failing
 * (a changed key, a broken dump) nothing old is deleted in favour of backups that may be useless.
 */
export function planRetention(catalog: Catalog, now: Date, retentionDays: number, ownPartials: ReadonlySet<string> = new Set()): RetentionPlan {
  const cutoff = now.getTime() - retentionDays * DAY_MS;
  const verifiedTimes = catalog.entries.filter((e) => e.verified).map((e) => e.time.getTime());
  const newestVerified = verifiedTimes.length > 0 ? Math.max(...verifiedTimes) : undefined;
  const plan: RetentionPlan = { delete: [], keep: [], stalePartials: [] };
  for (const e of catalog.entries) {
    const expired = e.time.getTime() < cutoff;
    const superseded = newestVerified !== undefined && newestVerified > e.time.getTime();
    (expired && superseded ? plan.delete : plan.keep).push(e);
  }
  plan.stalePartials = catalog.partials.filter((p) => !ownPartials.has(p.path) && now.getTime() - p.mtime.getTime() > STALE_PARTIAL_MS).map((p) => p.path);
  return plan;
}

/** Deletes what the plan says (file first, then manifest: a crash leaves a manifest, never an unlisted file). */
export function applyRetention(catalog: Catalog, now: Date, retentionDays: number): RetentionPlan {
  const plan = planRetention(catalog, now, retentionDays, inFlightPartials());
  for (const e of plan.delete) {
    if (e.dataPath) rmSync(e.dataPath, { force: true });
    if (e.manifestPath) rmSync(e.manifestPath, { force: true });
  }
  for (const p of plan.stalePartials) rmSync(p, { force: true });
  return plan;
}
