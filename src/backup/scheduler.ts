import cluster from 'node:cluster';
import type { Registry } from 'prom-client';
import { Cron } from 'croner';
import { processEnv } from '../config/env.js';
import type { GatewayConfig } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import { isBackupError } from './errors.js';
import { runBackupJob, type JobOptions } from './job.js';
import { loadBackupKey } from './key.js';
import { watchBackupDir } from './metrics.js';
import { toolVersion } from './pg-tools.js';
import { pgTarget } from './pg-url.js';
import { backupSettings, requireDatabaseUrl, type BackupSettings } from './settings.js';

export interface BackupScheduler {
  /** When the next run is due. */
  next(): Date | null;
  /** Stops the schedule; a run in progress is aborted (pg_dump killed, partial file removed) and awaited. */
  stop(): Promise<void>;
}

/**
 * Checks, at startup, what every run will need: a database URL, a usable key, pg_dump. A
 * schedule that would fail every night is a startup error, not a log line found a week later.
 */
export async function checkBackupSetup(s: BackupSettings): Promise<void> {
  try {
    pgTarget(requireDatabaseUrl(s), 'backup database URL');
    loadBackupKey(s.keyFile, s.dir);
    const env = Object.fromEntries(Object.entries(processEnv()).filter((e): e is [string, string] => e[1] !== undefined));
    await toolVersion('pg_dump', env);
    await toolVersion('pg_restore', env);
  } catch (err) {
    if (isBackupError(err)) throw new ConfigError('backup settings (BACKUP_ENABLED=true)', [{ path: 'backup', message: `${err.code}: ${err.message}` }]);
    throw err;
  }
}

/**
 * Runs backup jobs on BACKUP_SCHEDULE (croner; the host's time zone). `protect` skips a tick
 * while the previous run is still going instead of starting a second one. With `opts.registry`
 * (the gateway's) the runs and the stored backups are reported there.
 */
export function scheduleBackups(s: BackupSettings, log: Logger, opts: Omit<JobOptions, 'signal'> = {}): BackupScheduler {
  let running: Promise<unknown> | undefined;
  let abort: AbortController | undefined;
  if (opts.registry) watchBackupDir(s.dir, opts.registry);
  const cron = new Cron(s.schedule, { protect: true }, async () => {
    abort = new AbortController();
    running = runBackupJob(s, log, { ...opts, signal: abort.signal }).then(
      (r) => {
        for (const p of r.problems) log.app('error', `backup: ${p.message}`, { code: p.code });
      },
      (err: unknown) => log.app('error', `backup failed: ${err instanceof Error ? err.message : String(err)}`, { code: isBackupError(err) ? err.code : undefined }),
    );
    await running;
    running = undefined;
  });
  log.app('info', 'backups scheduled', { schedule: s.schedule, next: cron.nextRun()?.toISOString(), dir: s.dir, retentionDays: s.retentionDays });
  return {
    next: () => cron.nextRun(),
    stop: async () => {
      cron.stop();
      abort?.abort();
      await running;
    },
  };
}

/**
 * The gateway's backups (BACKUP_ENABLED=true): in the cluster primary only, which is the one
 * process when GATEWAY_WORKERS=1 and the supervisor otherwise. Not a worker: worker ids are not
 * reused when a worker is restarted, so "worker 1" would stop existing after its first crash.
 */
export async function startBackupScheduler(cfg: GatewayConfig, log: Logger, registry: Registry): Promise<BackupScheduler | undefined> {
  if (!cfg.backup.enabled || !cluster.isPrimary) return undefined;
  const s = backupSettings(cfg);
  await checkBackupSetup(s);
  return scheduleBackups(s, log, { registry });
}
