import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Cron } from 'croner';
import { pass, prodFail, type Check, type CheckResult } from '../types.js';

/**
 * Contract with the backup feature (#7), deliberately small: backups write `*.manifest.json`
 * files in BACKUP_DIR (or one folder below it); a backup counts once its manifest says
 * `"verified": true`. Its age is when it was taken: `createdAt` (the dump's point in time),
 * else `finishedAt` (ISO-8601), else the file's modification time. Never `verifiedAt`: a
 * re-verification (`backup verify --all`) does not make old data any newer.
 */
const MANIFEST_SUFFIX = '.manifest.json';
const SEARCH_DEPTH = 2;
/** A verified backup may be this many schedule intervals old (one missed run is tolerated) plus slack. */
const MAX_MISSED_RUNS = 2;
const SLACK_MS = 3_600_000;
/** Shorter than a week leaves no time to notice a silent corruption before every copy has it. */
const MIN_RETENTION_DAYS = 7;

interface Manifest {
  file: string;
  time: Date;
}

function findManifests(dir: string, depth: number, bad: string[]): Manifest[] {
  if (depth === 0 || !existsSync(dir)) return [];
  const out: Manifest[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findManifests(path, depth - 1, bad));
    else if (entry.isFile() && entry.name.endsWith(MANIFEST_SUFFIX)) {
      try {
        const m = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
        if (m.verified !== true) continue;
        const stamp = [m.createdAt, m.finishedAt].find((v): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v)));
        out.push({ file: path, time: stamp ? new Date(stamp) : statSync(path).mtime });
      } catch {
        bad.push(path);
      }
    }
  }
  return out;
}

function hours(ms: number): string {
  return ms >= 172_800_000 ? `${Math.round(ms / 86_400_000)} days` : `${Math.round(ms / 3_600_000)} h`;
}

/** Enabled, on a valid schedule, with retention, and the newest verified backup recent enough. */
export const backupsCheck: Check = (ctx) => {
  const cfg = ctx.config?.backup;
  if (!cfg) return [];
  const out: CheckResult[] = [];
  if (!cfg.enabled) return [{ id: 'backups', status: prodFail(ctx), message: 'backups are disabled (BACKUP_ENABLED=false)', fix: 'set BACKUP_ENABLED=true (schedule BACKUP_SCHEDULE, default daily at 02:00)' }];
  // The schema already refused an invalid schedule; here it gives the interval.
  const runs = new Cron(cfg.schedule, { paused: true }).nextRuns(2, ctx.now);
  const interval = runs.length === 2 && runs[0] && runs[1] ? runs[1].getTime() - runs[0].getTime() : 86_400_000;
  if (cfg.retentionDays < MIN_RETENTION_DAYS) out.push({ id: 'backups', status: 'WARN', message: `backups are kept ${cfg.retentionDays} days (under ${MIN_RETENTION_DAYS})`, fix: 'BACKUP_RETENTION_DAYS=7 or more' });

  const dir = ctx.at(cfg.dir);
  const bad: string[] = [];
  const manifests = findManifests(dir, SEARCH_DEPTH, bad).sort((a, b) => b.time.getTime() - a.time.getTime());
  if (bad.length > 0) out.push({ id: 'backups', status: 'WARN', message: `unreadable backup manifests: ${bad.map((b) => relative(ctx.cwd, b)).join(', ')}`, fix: 'npx crm-gateway backup verify' });
  const newest = manifests[0];
  const maxAge = MAX_MISSED_RUNS * interval + SLACK_MS;
  if (!newest) out.push({ id: 'backups', status: prodFail(ctx), message: `no verified backup in ${relative(ctx.cwd, dir) || dir}`, fix: 'npx crm-gateway backup run, then npx crm-gateway backup verify' });
  else if (ctx.now.getTime() - newest.time.getTime() > maxAge) {
    out.push({ id: 'backups', status: prodFail(ctx), message: `the newest verified backup is ${hours(ctx.now.getTime() - newest.time.getTime())} old (schedule "${cfg.schedule}" runs every ${hours(interval)})`, fix: 'check the backup job’s logs (docker compose logs backup), then npx crm-gateway backup run' });
  }
  return out.length > 0 ? out : [pass('backups', `enabled, "${cfg.schedule}", kept ${cfg.retentionDays} days; newest verified backup ${hours(ctx.now.getTime() - (newest?.time.getTime() ?? 0))} old`)];
};
