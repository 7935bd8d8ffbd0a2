import { basename } from 'node:path';
import { Registry } from 'prom-client';
import type { Env } from '../config/env.js';
import type { Logger } from '../log/logger.js';
import { readCatalog } from './catalog.js';
import { createBackup, type CreatedBackup } from './create.js';
import { BackupError, errorCode, isBackupError } from './errors.js';
import { loadBackupKey, type BackupKey } from './key.js';
import type { Manifest } from './manifest.js';
import { createBackupMetrics } from './metrics.js';
import { copyToRemote, remoteTarget } from './remote.js';
import { applyRetention } from './retention.js';
import type { BackupSettings } from './settings.js';
import { verifyBackup, type Verified } from './verify.js';

export interface JobOptions {
  now?: () => Date;
  signal?: AbortSignal;
  env?: Env;
  /** pg_dump --compress level (tests). */
  compression?: number;
  /** Where the run's metrics go (the gateway's registry); without it, a registry read by nobody (`backup run`). */
  registry?: Registry;
}

export interface JobResult {
  created: CreatedBackup;
  verified: Verified;
  remote: Manifest['remote'];
  /** Backups removed by retention (file names). */
  deleted: string[];
  /** What failed after the backup itself was made and verified (remote copy, retention). */
  problems: BackupError[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A scheduled or `backup run` job: back up, verify, copy to S3 if configured, apply retention.
 * Every step's outcome is a security event and a metric. Throws when no verified backup came
 * out of it; later problems (remote copy, retention) are returned so the caller exits non-zero
 * while the local backup stands.
 */
export async function runBackupJob(s: BackupSettings, log: Logger, opts: JobOptions = {}): Promise<JobResult> {
  const now = opts.now ?? (() => new Date());
  const m = createBackupMetrics(opts.registry ?? new Registry());
  const t0 = performance.now();
  const common = { ...(opts.env ? { env: opts.env } : {}) };
  let created: CreatedBackup;
  let key: BackupKey;
  try {
    key = loadBackupKey(s.keyFile, s.dir);
    for (const w of key.warnings) {
      log.security('backup.key_permissions', { keyFile: s.keyFile, warning: w });
      log.app('warn', w);
    }
    created = await createBackup(s, key, { now, ...common, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.compression !== undefined ? { compression: opts.compression } : {}) });
  } catch (err) {
    m.runs.inc({ result: 'failure' });
    log.security('backup.failed', { code: errorCode(err), error: message(err), dir: s.dir });
    throw err;
  }
  const file = basename(created.dataPath);
  log.security('backup.completed', {
    file,
    database: created.manifest.database,
    bytes: created.manifest.ciphertext.bytes,
    plaintextBytes: created.manifest.plaintext.bytes,
    tables: created.manifest.tables.length,
    durationMs: created.manifest.durationMs,
  });
  for (const w of created.warnings) log.app('warn', `pg_dump: ${w}`, { file });

  let verified: Verified;
  try {
    verified = await verifyBackup(created.dataPath, key, { now, ...common });
  } catch (err) {
    m.runs.inc({ result: 'failure' });
    m.verifications.inc({ result: 'failed' });
    log.security('backup.verify_failed', { file, code: errorCode(err), error: message(err) });
    throw err;
  }
  m.verifications.inc({ result: 'verified' });
  log.security('backup.verified', { file, tocEntries: verified.tocEntries, durationMs: verified.durationMs });

  const problems: BackupError[] = [];
  let remote: Manifest['remote'] = null;
  const target = remoteTarget(s.s3);
  if (target) {
    try {
      remote = (await copyToRemote(s.s3, created.dataPath, created.manifestPath, verified.manifest, key, now())).remote;
      m.remote.inc({ result: 'success' });
      log.security('backup.remote_copied', { file, bucket: remote?.bucket, key: remote?.key, endpoint: target.endpoint });
    } catch (err) {
      m.remote.inc({ result: 'failure' });
      log.security('backup.remote_failed', { file, code: errorCode(err), error: message(err) });
      problems.push(isBackupError(err) ? err : new BackupError('BACKUP_REMOTE_FAILED', message(err)));
    }
  }

  const deleted: string[] = [];
  try {
    const plan = applyRetention(readCatalog(s.dir, key), now(), s.retentionDays);
    for (const e of plan.delete) {
      deleted.push(e.name);
      log.security('backup.deleted', { name: e.name, createdAt: e.time.toISOString(), verified: e.verified, reason: `older than ${s.retentionDays} days` });
    }
    for (const p of plan.stalePartials) log.security('backup.partial_removed', { file: basename(p) });
  } catch (err) {
    log.security('backup.retention_failed', { error: message(err) });
    problems.push(new BackupError('BACKUP_RETENTION_FAILED', `retention in ${s.dir} failed: ${message(err)}`));
  }

  m.runs.inc({ result: 'success' });
  m.lastSuccess.set(Date.now() / 1000);
  m.lastBytes.set(created.manifest.ciphertext.bytes);
  m.lastDuration.set((performance.now() - t0) / 1000);
  return { created, verified, remote, deleted, problems };
}
