import { finished, pipeline } from 'node:stream/promises';
import { processEnv, type Env } from '../config/env.js';
import { openBackupFile } from './cipher.js';
import { BackupError, isBackupError } from './errors.js';
import type { Fingerprint } from './fingerprint.js';
import type { BackupKey } from './key.js';
import type { Manifest } from './manifest.js';
import { lastLines, startTool } from './pg-tools.js';
import { pgTarget, pgToolEnv, type PgTarget } from './pg-url.js';
import { connect } from './snapshot.js';
import { HoldBack } from './streams.js';
import { checkConsistency, existingObjects, type Consistency } from './target.js';
import { verifyBackup } from './verify.js';

/**
 * Plaintext held back from pg_restore until the GCM tag has been checked. Any amount works
 * (pg_restore cannot finish an archive whose end it has not read); this is a few blocks.
 */
export const HOLD_BACK_BYTES = 64 * 1024;

export interface RestoreOptions {
  /** Restore over a database that already holds tables (`--clean --if-exists`, in the same transaction). */
  force?: boolean;
  /** `--no-owner --no-privileges`: for a target server without the original roles. */
  noOwner?: boolean;
  env?: Env;
}

export interface Restored {
  manifest: Manifest;
  target: string;
  consistency: Consistency;
  durationMs: number;
}

/**
 * A full decryption with the tag checked, plaintext discarded: the fingerprint of what was
 * authenticated. Nothing of the file is used before this has succeeded.
 */
async function authenticate(dataPath: string, key: BackupKey): Promise<Fingerprint> {
  const opened = await openBackupFile(dataPath, key);
  // The plaintext is discarded: only the tag and the block digests matter here.
  opened.plaintext.resume();
  await finished(opened.plaintext);
  const fingerprint = opened.fingerprint();
  if (!fingerprint) throw new BackupError('BACKUP_TAMPERED', `${dataPath}: the authentication tag was not checked`);
  return fingerprint;
}

/**
 * The second pass: decrypt again into `pg_restore --single-transaction --exit-on-error`. The
 * file is read anew, and every block is compared with the fingerprint of the pass that
 * authenticated it (`authenticated`, from verification; without it this authenticates the file
 * first) before it is decrypted: a tag checked only at the end would come too late, since
 * pg_restore runs the archive's SQL as it reads it. The end of the archive is also held back
 * until the tag has been checked again. On any failure pg_restore is killed: the target is as it was.
 */
export async function streamIntoDatabase(dataPath: string, key: BackupKey, target: PgTarget, opts: RestoreOptions = {}, authenticated?: Fingerprint): Promise<void> {
  const expected = authenticated ?? (await authenticate(dataPath, key));
  const env = pgToolEnv(target, opts.env ?? processEnv());
  const args = ['--single-transaction', '--exit-on-error', '--no-password'];
  if (opts.force) args.push('--clean', '--if-exists');
  if (opts.noOwner) args.push('--no-owner', '--no-privileges');
  args.push(`--dbname=${target.libpqUrl}`);
  const opened = await openBackupFile(dataPath, key, expected);
  const restore = startTool('pg_restore', args, env, { stdin: 'pipe', stdout: 'ignore' });
  // Before pipeline's own handlers: kill first, so nothing after a failed tag reaches pg_restore.
  opened.plaintext.once('error', restore.kill);
  const stdin = restore.child.stdin;
  if (!stdin) throw new Error('pg_restore started without a stdin pipe');
  let streamError: unknown;
  try {
    await pipeline(opened.plaintext, new HoldBack(HOLD_BACK_BYTES), stdin);
  } catch (err) {
    streamError = err;
    restore.kill();
  }
  const exit = await restore.exited;
  if (streamError !== undefined) {
    // pg_restore exiting early (a failed statement) breaks the pipe: its own message is the reason.
    if (!isBackupError(streamError) && exit.code !== 0 && exit.signal === null) {
      throw new BackupError('BACKUP_RESTORE_FAILED', `pg_restore into ${target.display} failed (exit ${exit.code}), nothing was committed: ${lastLines(exit.stderr)}`);
    }
    throw isBackupError(streamError) ? streamError : new BackupError('BACKUP_RESTORE_FAILED', `restoring into ${target.display} stopped: ${(streamError as Error).message}; nothing was committed`, { cause: streamError });
  }
  if (exit.code !== 0) throw new BackupError('BACKUP_RESTORE_FAILED', `pg_restore into ${target.display} failed (${exit.code !== null ? `exit ${exit.code}` : `signal ${exit.signal}`}), nothing was committed: ${lastLines(exit.stderr)}`);
}

async function checkTargetEmpty(target: PgTarget, force: boolean): Promise<void> {
  const client = await connect(target, 'restore target');
  try {
    const existing = await existingObjects(client);
    if (existing.length > 0 && !force) {
      throw new BackupError('BACKUP_TARGET_NOT_EMPTY', `the restore target ${target.display} is not empty (${existing.slice(0, 5).join(', ')}${existing.length > 5 ? ', …' : ''}): restore into a new database, or add --force to replace the objects the backup holds`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Recovery: refuse an unreachable or (unless forced) non-empty target, verify the backup fully
 * (tag, checksums, pg_restore's own reading), restore in one transaction, then compare every
 * table's row count with the manifest.
 */
export async function restoreBackup(dataPath: string, targetUrl: string, key: BackupKey, opts: RestoreOptions = {}): Promise<Restored> {
  const t0 = performance.now();
  const target = pgTarget(targetUrl, '--target URL');
  // The target first: an unreachable or occupied database is known in a second, not after a long verification.
  await checkTargetEmpty(target, opts.force === true);
  // The manifest on a restore host may be read-only, and a restore is not the place to change it.
  const verified = await verifyBackup(dataPath, key, { record: false, ...(opts.env ? { env: opts.env } : {}) });
  if (!opts.force) await checkTargetEmpty(target, false);

  await streamIntoDatabase(dataPath, key, target, opts, verified.fingerprint);

  const after = await connect(target, 'restore target');
  try {
    const consistency = await checkConsistency(after, verified.manifest.tables);
    if (consistency.differences.length > 0) {
      const shown = consistency.differences.slice(0, 10).map((d) => `${d.table}: ${d.actual === undefined ? 'missing' : d.actual} (backup: ${d.expected})`);
      throw new BackupError('BACKUP_INCONSISTENT', `the restored ${target.display} differs from the backup's manifest in ${consistency.differences.length} table(s): ${shown.join('; ')}`);
    }
    return { manifest: verified.manifest, target: target.display, consistency, durationMs: Math.round(performance.now() - t0) };
  } finally {
    await after.end().catch(() => undefined);
  }
}
