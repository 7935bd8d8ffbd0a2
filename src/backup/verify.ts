import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { processEnv, type Env } from '../config/env.js';
import { openBackupFile } from './cipher.js';
import { BackupError, isBackupError } from './errors.js';
import { FanOut } from './fan-out.js';
import type { Fingerprint } from './fingerprint.js';
import type { BackupKey } from './key.js';
import { manifestBody, manifestPathFor, readManifest, writeManifest, type Manifest, type ManifestBody } from './manifest.js';
import { lastLines, startTool } from './pg-tools.js';
import { HashTap } from './streams.js';

export interface VerifyOptions {
  now?: () => Date;
  /** Record the result in the manifest (`verified`, `verifiedAt`, `verifyError`); default true. */
  record?: boolean;
  env?: Env;
}

export interface Verified {
  dataPath: string;
  manifestPath: string;
  manifest: Manifest;
  /** Entries in pg_restore's table of contents. */
  tocEntries: number;
  durationMs: number;
  /** Exactly the bytes this verification authenticated: a restore releases nothing else. */
  fingerprint: Fingerprint;
}

/** `3353; 0 17212 TABLE DATA public t postgres` → does the TOC hold data for every table of the manifest? */
function missingTableData(toc: string, manifest: ManifestBody): string[] {
  const lines = toc.split('\n').filter((l) => /^\d+; /.test(l));
  return manifest.tables.filter((t) => !lines.some((l) => l.includes(` TABLE DATA ${t.schema} ${t.name} `))).map((t) => `${t.schema}.${t.name}`);
}

/**
 * The checks behind "verified": size against the manifest, header and key id, a full trial
 * decryption with the GCM tag checked at the end, sha256 of ciphertext and plaintext against
 * the manifest, and the decrypted archive fed both to `pg_restore --list` (its table of
 * contents must hold data for every table of the manifest) and to a full `pg_restore` into
 * nowhere (every data block read and decompressed). Plaintext only passes through pipes.
 */
async function checkFile(dataPath: string, manifest: ManifestBody, key: BackupKey, env: Record<string, string>): Promise<{ tocEntries: number; fingerprint: Fingerprint }> {
  let size: number;
  try {
    size = (await stat(dataPath)).size;
  } catch (err) {
    throw new BackupError('BACKUP_NOT_FOUND', `the backup file ${dataPath} is missing (${(err as NodeJS.ErrnoException).code ?? String(err)}); its manifest remains`);
  }
  if (size < manifest.ciphertext.bytes) throw new BackupError('BACKUP_TRUNCATED', `${dataPath} is truncated: ${size} bytes, its manifest says ${manifest.ciphertext.bytes}`);
  if (size > manifest.ciphertext.bytes) throw new BackupError('BACKUP_CHECKSUM_MISMATCH', `${dataPath} is ${size} bytes, its manifest says ${manifest.ciphertext.bytes}: bytes were added`);
  const opened = await openBackupFile(dataPath, key);

  const list = startTool('pg_restore', ['--list'], env, { stdin: 'pipe', stdout: 'pipe' });
  const trial = startTool('pg_restore', ['--file=-'], env, { stdin: 'pipe', stdout: 'ignore' });
  let toc = '';
  list.child.stdout?.setEncoding('utf8').on('data', (s: string) => (toc += s));
  const plain = new HashTap();
  try {
    await pipeline(opened.plaintext, plain, new FanOut([list.child.stdin, trial.child.stdin].filter((s) => s !== null)));
  } catch (err) {
    list.kill();
    trial.kill();
    await Promise.allSettled([list.exited, trial.exited]);
    throw isBackupError(err) ? err : new BackupError('BACKUP_CHECKSUM_MISMATCH', `reading ${dataPath} failed: ${(err as Error).message}`, { cause: err });
  }
  const [le, te] = await Promise.all([list.exited, trial.exited]);

  if (opened.ciphertextSha256() !== manifest.ciphertext.sha256) throw new BackupError('BACKUP_CHECKSUM_MISMATCH', `${dataPath}: sha256 of the file differs from its manifest (a different backup under this name?)`);
  if (plain.bytes !== manifest.plaintext.bytes || plain.sha256() !== manifest.plaintext.sha256) throw new BackupError('BACKUP_CHECKSUM_MISMATCH', `${dataPath}: the decrypted dump differs from its manifest (sha256 or size)`);
  if (le.code !== 0) throw new BackupError('BACKUP_ARCHIVE_INVALID', `pg_restore --list cannot read the archive in ${dataPath}: ${lastLines(le.stderr)}`);
  if (te.code !== 0) throw new BackupError('BACKUP_ARCHIVE_INVALID', `pg_restore cannot read every part of the archive in ${dataPath}: ${lastLines(te.stderr)}`);
  const missing = missingTableData(toc, manifest);
  if (missing.length > 0) throw new BackupError('BACKUP_ARCHIVE_INVALID', `the archive in ${dataPath} has no data for ${missing.length} table(s) of its manifest: ${missing.slice(0, 10).join(', ')}`);
  const fingerprint = opened.fingerprint();
  if (!fingerprint) throw new BackupError('BACKUP_TAMPERED', `${dataPath}: the authentication tag was not checked`);
  return { tocEntries: toc.split('\n').filter((l) => /^\d+; /.test(l)).length, fingerprint };
}

/**
 * Verifies one backup and records the verdict in its manifest. A manifest that is missing,
 * malformed, edited or made with another key cannot be trusted to record anything, so those
 * errors are thrown without touching it.
 */
export async function verifyBackup(dataPath: string, key: BackupKey, opts: VerifyOptions = {}): Promise<Verified> {
  const now = opts.now ?? (() => new Date());
  const record = opts.record ?? true;
  const env = Object.fromEntries(Object.entries(opts.env ?? processEnv()).filter((e): e is [string, string] => e[1] !== undefined));
  const manifestPath = manifestPathFor(dataPath);
  const t0 = performance.now();
  const read = readManifest(manifestPath, key);
  const body = manifestBody(read);
  try {
    const { tocEntries, fingerprint } = await checkFile(dataPath, body, key, env);
    const manifest = record ? writeManifest(manifestPath, { ...body, verified: true, verifiedAt: now().toISOString(), verifyError: null }, key) : read;
    return { dataPath, manifestPath, manifest, tocEntries, durationMs: Math.round(performance.now() - t0), fingerprint };
  } catch (err) {
    if (record) {
      try {
        writeManifest(manifestPath, { ...body, verified: false, verifiedAt: now().toISOString(), verifyError: isBackupError(err) ? `${err.code}: ${err.message}` : String(err) }, key);
      } catch {
        // A read-only backup folder (a restore host): the verdict still reaches the caller.
      }
    }
    throw err;
  }
}
