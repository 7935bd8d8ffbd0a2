import { closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { processEnv, type Env } from '../config/env.js';
import { fileStamp } from '../secrets/files.js';
import { predictability } from '../secrets/strength.js';
import { EncryptStream } from './cipher.js';
import { BackupError, isBackupError } from './errors.js';
import { trackInFlight } from './in-flight.js';
import type { BackupKey } from './key.js';
import { DATA_SUFFIX, MANIFEST_SUFFIX, PARTIAL_SUFFIX, writeManifest, type Manifest, type TableCount } from './manifest.js';
import { lastLines, startTool, toolVersion } from './pg-tools.js';
import { pgTarget, pgToolEnv } from './pg-url.js';
import { LOCK_WAIT_TIMEOUT, openSnapshot } from './snapshot.js';
import { requireDatabaseUrl, type BackupSettings } from './settings.js';
import { HashTap } from './streams.js';

/** Folder mode of a backup folder this code creates (setup makes it 0700 too). */
const BACKUP_DIR_MODE = 0o700;
/** Backups started within the same second get `-1`, `-2`, … up to this. */
const MAX_NAME_ATTEMPTS = 100;

export interface CreateOptions {
  now?: () => Date;
  /** Aborting kills pg_dump and removes the partial file (gateway shutdown). */
  signal?: AbortSignal;
  /** `pg_dump --compress` level; unset: pg_dump's default. Tests use 0 to make plaintext recognisable. */
  compression?: number;
  /** Environment of the tools (PATH, PGSSL*, HOME for ~/.pgpass); default this process's. */
  env?: Env;
}

export interface CreatedBackup {
  dataPath: string;
  manifestPath: string;
  manifest: Manifest;
  /** pg_dump's warnings on a run that succeeded. */
  warnings: string[];
}

interface Reserved {
  dataPath: string;
  manifestPath: string;
  partialPath: string;
  fh: FileHandle;
}

function safeName(database: string): string {
  return database.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'db';
}

/** Claims `<db>-<time>[-n].dump.enc.partial` with O_EXCL (mode 0600 from creation): two runs never share a name. */
async function reserve(dir: string, database: string, startedAt: Date): Promise<Reserved> {
  const stem = `${safeName(database)}-${fileStamp(startedAt)}`;
  for (let n = 0; n < MAX_NAME_ATTEMPTS; n++) {
    const base = n === 0 ? stem : `${stem}-${n}`;
    const dataPath = join(dir, `${base}${DATA_SUFFIX}`);
    const manifestPath = join(dir, `${base}${MANIFEST_SUFFIX}`);
    const partialPath = `${dataPath}${PARTIAL_SUFFIX}`;
    if (existsSync(dataPath) || existsSync(manifestPath)) continue;
    try {
      // O_EXCL | O_NOFOLLOW: neither an existing file nor a symlink planted at the name is followed.
      const fh = await open(partialPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
      return { dataPath, manifestPath, partialPath, fh };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new BackupError('BACKUP_DUMP_FAILED', `no free file name for ${stem} in ${dir}`);
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort: some filesystems refuse to fsync a folder
  }
}

/**
 * A key of the right length but no randomness (all zeros, a pattern) would encrypt in name only.
 * Only new backups are refused: verify and restore still read the old ones made with it.
 */
function refuseWeakKey(key: BackupKey, keyFile: string): void {
  const weak = predictability(key.key.toString('hex'));
  if (weak) throw new BackupError('BACKUP_KEY_INVALID', `the backup key ${keyFile} is predictable (${weak}): move it away (backups made with it need it) and run \`npx crm-gateway setup\` for a new one`);
}

/**
 * One backup: a snapshot is exported, pg_dump (custom format) streams it through AES-256-GCM
 * into `<name>.dump.enc.partial` while the same snapshot's row counts are taken, then the
 * manifest is written and the file renamed into place. Plaintext exists only in pipes and
 * memory. Any failure removes the partial file; nothing is left that looks like a backup.
 */
export async function createBackup(s: BackupSettings, key: BackupKey, opts: CreateOptions = {}): Promise<CreatedBackup> {
  refuseWeakKey(key, s.keyFile);
  const now = opts.now ?? (() => new Date());
  const target = pgTarget(requireDatabaseUrl(s), 'backup database URL (BACKUP_DATABASE_URL / DATABASE_URL)');
  const env = pgToolEnv(target, opts.env ?? processEnv());
  // Before connecting: a missing pg_dump is the clearer message.
  const pgDumpVersion = await toolVersion('pg_dump', env);
  if (opts.signal?.aborted) throw new BackupError('BACKUP_ABORTED', 'backup stopped before it started');
  const startedAt = now();
  const t0 = performance.now();
  const snapshot = await openSnapshot(target);
  let reserved: Reserved | undefined;
  let untrack: (() => void) | undefined;
  let manifestWritten = false;
  try {
    mkdirSync(s.dir, { recursive: true, mode: BACKUP_DIR_MODE });
    reserved = await reserve(s.dir, snapshot.database, startedAt);
    const args = ['--format=custom', `--snapshot=${snapshot.id}`, `--lock-wait-timeout=${LOCK_WAIT_TIMEOUT}`, '--no-password'];
    if (opts.compression !== undefined) args.push(`--compress=${opts.compression}`);
    args.push(`--dbname=${target.libpqUrl}`);
    const dump = startTool('pg_dump', args, env, { stdin: 'ignore', stdout: 'pipe' });
    untrack = trackInFlight(reserved.partialPath, dump.kill);
    const dumpOut = dump.child.stdout;
    if (!dumpOut) throw new Error('pg_dump started without a stdout pipe');

    const abort = new AbortController();
    const onAbort = (): void => abort.abort(new BackupError('BACKUP_ABORTED', 'backup stopped (shutdown) before it finished'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // Aborted while connecting: the listener above would never fire.
    if (opts.signal?.aborted) onAbort();
    const plain = new HashTap();
    const cipherTap = new HashTap();
    let firstError: unknown;
    const fail = (err: unknown): never => {
      firstError ??= err;
      abort.abort(err);
      dump.kill();
      throw err;
    };
    const [, , tables] = await Promise.allSettled([
      pipeline(dumpOut, plain, new EncryptStream(key), cipherTap, reserved.fh.createWriteStream(), { signal: abort.signal }).catch((err: unknown) =>
        fail(isBackupError(err) ? err : abort.signal.aborted && isBackupError(abort.signal.reason) ? abort.signal.reason : new BackupError('BACKUP_DUMP_FAILED', `cannot write ${reserved?.partialPath}: ${(err as Error).message}`, { cause: err })),
      ),
      dump.exited.then(
        (exit) => {
          if (exit.code !== 0) fail(new BackupError('BACKUP_DUMP_FAILED', `pg_dump of ${target.display} failed (${exit.code !== null ? `exit ${exit.code}` : `signal ${exit.signal}`}): ${lastLines(exit.stderr)}`));
          return exit;
        },
        (err: unknown) => fail(err),
      ),
      snapshot.counts().catch((err: unknown) => fail(isBackupError(err) ? err : new BackupError('BACKUP_DUMP_FAILED', `counting rows in ${target.display} failed: ${(err as Error).message}`, { cause: err }))),
    ]).finally(() => opts.signal?.removeEventListener('abort', onAbort));
    // The first failure is the reason; what it set off (a killed pg_dump, a broken pipe) is not.
    if (firstError !== undefined) throw opts.signal?.aborted ? new BackupError('BACKUP_ABORTED', 'backup stopped (shutdown) before it finished') : firstError;
    const dumpExit = await dump.exited;

    const synced = await open(reserved.partialPath, 'r+');
    await synced.sync().finally(() => synced.close());
    await snapshot.close();

    const manifest = writeManifest(
      reserved.manifestPath,
      {
        format: 'crm-gateway-backup',
        formatVersion: 1,
        file: basename(reserved.dataPath),
        database: snapshot.database,
        serverVersion: snapshot.serverVersion,
        pgDumpVersion,
        createdAt: startedAt.toISOString(),
        finishedAt: now().toISOString(),
        durationMs: Math.round(performance.now() - t0),
        keyId: key.idHex,
        cipher: 'aes-256-gcm',
        plaintext: { bytes: plain.bytes, sha256: plain.sha256() },
        ciphertext: { bytes: cipherTap.bytes, sha256: cipherTap.sha256() },
        tables: (tables as PromiseFulfilledResult<TableCount[]>).value,
        verified: false,
        verifiedAt: null,
        verifyError: null,
        remote: null,
      },
      key,
    );
    manifestWritten = true;
    await rename(reserved.partialPath, reserved.dataPath);
    syncDir(s.dir);
    untrack();
    untrack = undefined;
    return { dataPath: reserved.dataPath, manifestPath: reserved.manifestPath, manifest, warnings: dumpExit.stderr ? dumpExit.stderr.split('\n').filter((l) => l.trim() !== '') : [] };
  } catch (err) {
    if (reserved) {
      await reserved.fh.close().catch(() => undefined);
      await rm(reserved.partialPath, { force: true });
      if (manifestWritten) await rm(reserved.manifestPath, { force: true });
    }
    throw err;
  } finally {
    untrack?.();
    await snapshot.close();
  }
}
