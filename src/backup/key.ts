import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { BackupError } from './errors.js';
import { KEY_ID_BYTES } from './format.js';

/** AES-256: exactly 32 bytes, written by `setup` as 64 hex characters. */
export const KEY_BYTES = 32;

export interface BackupKey {
  readonly key: Buffer;
  /** First 8 bytes of sha256(key): names the key in headers and manifests without revealing it. */
  readonly id: Buffer;
  readonly idHex: string;
  /** Problems that do not stop a backup but should reach the operator (loose permissions). */
  readonly warnings: readonly string[];
}

export function keyIdOf(key: Buffer): Buffer {
  return createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES);
}

function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Reads the backup key file. Fails closed on anything but exactly 32 bytes of hex (a longer or
 * odd value is someone else's key, not a stronger one), and on a key inside the backup folder:
 * whoever copies that folder would carry the key along with what it protects.
 */
export function loadBackupKey(path: string, backupDir: string): BackupKey {
  const real = realOrResolved(path);
  const dir = realOrResolved(backupDir);
  if (real === dir || real.startsWith(dir + sep)) {
    throw new BackupError('BACKUP_KEY_INVALID', `the backup key ${path} is inside the backup folder ${backupDir}: keep it apart (BACKUP_KEY_FILE)`);
  }
  let text: string;
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new BackupError('BACKUP_KEY_INVALID', `the backup key ${path} is not a regular file`);
    mode = st.mode & 0o777;
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if (err instanceof BackupError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new BackupError('BACKUP_KEY_INVALID', code === 'ENOENT' ? `no backup key at ${path}: run \`npx crm-gateway setup\` (or set BACKUP_KEY_FILE)` : `cannot read the backup key ${path} (${code ?? String(err)})`);
  }
  if (!/^[0-9a-fA-F]+$/.test(text) || text.length !== KEY_BYTES * 2) {
    throw new BackupError('BACKUP_KEY_INVALID', `the backup key ${path} is not ${KEY_BYTES} bytes of hex (${KEY_BYTES * 2} characters): restore it from your offline copy`);
  }
  const key = Buffer.from(text, 'hex');
  const id = keyIdOf(key);
  const warnings = (mode & 0o077) !== 0 ? [`the backup key ${path} is mode ${mode.toString(8)}: chmod 600 it`] : [];
  return { key, id, idHex: id.toString('hex'), warnings };
}
