import { basename, dirname, join, relative } from 'node:path';
import { processEnv } from '../../config/env.js';
import { ConfigError } from '../../config/load.js';
import { readCatalog } from '../../backup/catalog.js';
import { isBackupError, errorCode, BackupError } from '../../backup/errors.js';
import { runBackupJob } from '../../backup/job.js';
import { loadBackupKey } from '../../backup/key.js';
import { DATA_SUFFIX, MANIFEST_SUFFIX } from '../../backup/manifest.js';
import { restoreBackup } from '../../backup/restore.js';
import { checkBackupSetup, scheduleBackups } from '../../backup/scheduler.js';
import { loadBackupSettings, type BackupSettings } from '../../backup/settings.js';
import { verifyBackup } from '../../backup/verify.js';
import { pgTarget } from '../../backup/pg-url.js';
import { openCliLog } from '../context.js';
import type { Logger } from '../../log/logger.js';
import { configPathFromEnv } from '../../config/env.js';
import { loadConfigFile } from '../../config/load.js';
import { existsSync } from 'node:fs';
import { flag, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError } from '../errors.js';
import { backupProgress } from './backup-progress.js';

const SUBCOMMANDS = {
  run: {
    synopsis: 'backup run [--schedule]',
    description: `back up the CRM database (BACKUP_DATABASE_URL, else DATABASE_URL), encrypted, into BACKUP_DIR;
verify it, copy it to S3 if configured, delete backups past BACKUP_RETENTION_DAYS; progress on a terminal
(--schedule: keep running and do that on BACKUP_SCHEDULE: the compose backup job)`,
    options: { schedule: { type: 'boolean' } },
  },
  verify: { synopsis: 'backup verify [file...] [--all]', description: 'tag, checksums, full trial decryption, pg_restore --list (default: the newest backup)', options: { all: { type: 'boolean' } } },
  restore: {
    synopsis: 'backup restore <file> --target postgres://user@host/db [--force] [--no-owner]',
    description: `verify, restore in one transaction (refuses a non-empty target without --force),
then compare tables and row counts with the manifest`,
    options: { target: { type: 'string' }, force: { type: 'boolean' }, 'no-owner': { type: 'boolean' } },
  },
  list: { synopsis: 'backup list', description: 'the backups in BACKUP_DIR: time, size, verified', options: {} },
} as const;

function usageError(sub: string, message: string): CliError {
  return new CliError(message, 2, `backup ${sub}`);
}

/** Backup failures carry their stable code in the one error line. */
function failure(err: unknown): unknown {
  if (isBackupError(err)) return new CliError(`${err.code}: ${err.message}`);
  if (err instanceof ConfigError) return new CliError(err.message);
  return err;
}

/** A path as the operator would type it: relative below the working folder, absolute elsewhere. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

function size(bytes: number | undefined): string {
  if (bytes === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** A backup named by its file or its manifest. */
function dataPathOf(arg: string): string {
  return arg.endsWith(MANIFEST_SUFFIX) ? join(dirname(arg), `${basename(arg).slice(0, -MANIFEST_SUFFIX.length)}${DATA_SUFFIX}`) : arg;
}

async function run(s: BackupSettings, schedule: boolean, log: Logger): Promise<number> {
  if (schedule) {
    if (!s.enabled) throw new BackupError('BACKUP_CONFIG', 'backup run --schedule with BACKUP_ENABLED=false: set BACKUP_ENABLED=true (or stop this job)');
    await checkBackupSetup(s);
    const scheduler = scheduleBackups(s, log);
    process.stderr.write(`crm-gateway backup: scheduled "${s.schedule}", next run ${scheduler.next()?.toISOString() ?? 'never'}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await scheduler.stop();
    return 0;
  }
  const progress = backupProgress(s.dir, process.stderr);
  let r: Awaited<ReturnType<typeof runBackupJob>>;
  try {
    r = await runBackupJob(s, log);
  } finally {
    progress.stop();
  }
  const m = r.verified.manifest;
  const rows = m.tables.reduce((a, t) => a + t.rows, 0);
  const lines = [
    `backup ${shown(r.created.dataPath)}: ${size(m.ciphertext.bytes)} (dump ${size(m.plaintext.bytes)}), ${m.tables.length} tables, ${rows} rows, database ${m.database}, in ${m.durationMs} ms`,
    `verified: tag, checksums, pg_restore reads all ${r.verified.tocEntries} entries (${r.verified.durationMs} ms)`,
  ];
  if (r.remote) lines.push(`copied to s3://${r.remote.bucket}/${r.remote.key}`);
  if (r.deleted.length > 0) lines.push(`deleted ${r.deleted.length} backup(s) older than ${s.retentionDays} days: ${r.deleted.join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  for (const p of r.problems) process.stderr.write(`crm-gateway: error: ${p.code}: ${p.message}\n`);
  return r.problems.length > 0 ? 1 : 0;
}

async function verify(s: BackupSettings, files: string[], all: boolean, log: Logger): Promise<number> {
  const key = loadBackupKey(s.keyFile, s.dir);
  let targets = files.map(dataPathOf);
  if (targets.length === 0) {
    const entries = readCatalog(s.dir).entries;
    const chosen = all ? entries : entries.slice(-1);
    if (chosen.length === 0) throw new BackupError('BACKUP_NOT_FOUND', `no backups in ${s.dir}`);
    targets = chosen.map((e) => e.dataPath ?? join(s.dir, `${e.name}${DATA_SUFFIX}`));
  }
  let failed = 0;
  for (const path of targets) {
    try {
      const v = await verifyBackup(path, key);
      log.security('backup.verified', { file: basename(path), tocEntries: v.tocEntries, durationMs: v.durationMs });
      process.stdout.write(`OK      ${path}: ${v.manifest.tables.length} tables, ${size(v.manifest.ciphertext.bytes)}, taken ${v.manifest.createdAt}\n`);
    } catch (err) {
      if (!isBackupError(err)) throw err;
      failed++;
      log.security('backup.verify_failed', { file: basename(path), code: errorCode(err), error: err.message });
      process.stdout.write(`FAILED  ${path}: ${err.code}: ${err.message}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}

async function restore(s: BackupSettings, file: string, targetUrl: string, force: boolean, noOwner: boolean, log: Logger): Promise<number> {
  const target = pgTarget(targetUrl, '--target URL');
  if (target.password !== undefined) process.stderr.write('WARNING: the --target URL holds a password, visible to ps and kept in shell history; prefer PGPASSWORD or ~/.pgpass\n');
  const key = loadBackupKey(s.keyFile, s.dir);
  const path = dataPathOf(file);
  try {
    const r = await restoreBackup(path, targetUrl, key, { force, noOwner });
    log.security('backup.restored', { file: basename(path), target: r.target, tables: r.consistency.tables, rows: r.consistency.rows, force, durationMs: r.durationMs });
    process.stdout.write(`restored ${path} into ${r.target} in ${r.durationMs} ms\nconsistent: ${r.consistency.tables} tables, ${r.consistency.rows} rows, as in the manifest (taken ${r.manifest.createdAt})\n`);
    if (r.consistency.extra.length > 0) process.stdout.write(`note: the target also holds ${r.consistency.extra.length} table(s) the backup does not: ${r.consistency.extra.slice(0, 10).join(', ')}\n`);
    return 0;
  } catch (err) {
    log.security('backup.restore_failed', { file: basename(path), target: target.display, code: errorCode(err), error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

function list(s: BackupSettings): number {
  const { entries, partials } = readCatalog(s.dir);
  if (entries.length === 0) process.stdout.write(`no backups in ${s.dir}\n`);
  for (const e of entries) {
    const state = e.verified ? 'verified' : e.manifest?.verifyError ? 'FAILED' : e.problem ? 'PROBLEM' : 'unverified';
    process.stdout.write(`${e.time.toISOString()}  ${size(e.bytes).padStart(10)}  ${state.padEnd(10)}  ${e.name}${e.problem ? `  (${e.problem})` : e.manifest?.verifyError ? `  (${e.manifest.verifyError})` : ''}\n`);
  }
  for (const p of partials) process.stdout.write(`in progress or abandoned: ${p.path} (last written ${p.mtime.toISOString()})\n`);
  return 0;
}

export const backupCommand: Command = {
  name: 'backup',
  usage: 'backup run|verify|restore|list   encrypted, verified backups of the CRM database (backup --help)',
  subcommands: SUBCOMMANDS,
  async run(inv) {
    const sub = inv.sub ?? '';
    const rest = inv.positionals;
    if (sub === 'run' && rest.length > 0) throw usageError(sub, 'backup run takes no file');
    if (sub === 'list' && rest.length > 0) throw usageError(sub, 'backup list takes no file');
    if (sub === 'verify' && flag(inv, 'all') && rest.length > 0) throw usageError(sub, 'give files or --all, not both');
    const target = stringOption(inv, 'target');
    if (sub === 'restore' && (rest.length !== 1 || !rest[0])) throw usageError(sub, 'backup restore needs exactly one backup file');
    if (sub === 'restore' && !target) throw usageError(sub, 'backup restore needs --target postgres://user@host:5432/database');
    let cliLog: Awaited<ReturnType<typeof openCliLog>> | undefined;
    try {
      const env = processEnv();
      const s = loadBackupSettings(env);
      // Backup events reach the audit files when the gateway's config is here (the compose
      // backup job mounts none: its events go to stderr, i.e. the container log).
      const file = configPathFromEnv(env);
      cliLog = await openCliLog(existsSync(file) ? loadConfigFile(file, env) : undefined, inv.verbose);
      const log = cliLog.log;
      switch (sub) {
        case 'run':
          return await run(s, flag(inv, 'schedule'), log);
        case 'verify':
          return await verify(s, [...rest], flag(inv, 'all'), log);
        case 'restore':
          return await restore(s, rest[0] as string, target as string, flag(inv, 'force'), flag(inv, 'no-owner'), log);
        default:
          return list(s);
      }
    } catch (err) {
      throw failure(err);
    } finally {
      await cliLog?.close();
    }
  },
};
