import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { BACKUP_KEY_BYTES } from './specs.js';
import { ensurePrivateDir, PRIVATE_FILE_MODE, writeNewPrivateFile } from './files.js';
import { predictability } from './strength.js';

/**
 * The backup encryption key lives in its own file, apart from `.env` and from the backups:
 * whoever gets a backup (or the `.env`) alone cannot read it.
 */
export interface BackupKeyState {
  path: string;
  created: boolean;
  /** Permissions that were looser than 0600 and have been tightened. */
  tightened: boolean;
}

/** The problem with a backup key file's content, or undefined when it holds a 32-byte hex key. */
export function backupKeyProblem(content: string): string | undefined {
  const key = content.trim();
  if (!/^[0-9a-fA-F]+$/.test(key)) return 'is not a hex key';
  // The backup commands accept exactly this and nothing else (src/backup/key.ts), so doctor does too.
  if (key.length !== BACKUP_KEY_BYTES * 2) return `is ${key.length / 2} bytes, not ${BACKUP_KEY_BYTES} (${BACKUP_KEY_BYTES * 2} hex characters)`;
  // Right length, no randomness (all zeros, a pattern): backups under it are as good as plain.
  const weak = predictability(key.toLowerCase());
  if (weak) return `is predictable (${weak}), not 32 random bytes`;
  return undefined;
}

/**
 * Creates the key (folder 0700, file 0600, 32 random bytes as hex) when missing. An existing
 * key is never replaced: the backups made with it need it. Throws when it exists but is unusable.
 */
export function ensureBackupKey(path: string): BackupKeyState {
  ensurePrivateDir(dirname(path));
  if (!existsSync(path)) {
    writeNewPrivateFile(path, `${randomBytes(BACKUP_KEY_BYTES).toString('hex')}\n`);
    return { path, created: true, tightened: false };
  }
  const problem = backupKeyProblem(readFileSync(path, 'utf8'));
  if (problem) throw new Error(`backup key ${path} ${problem}; it is left as is (backups made with it would need it): move it away and run setup again`);
  const loose = (statSync(path).mode & 0o077) !== 0;
  if (loose) chmodSync(path, PRIVATE_FILE_MODE);
  return { path, created: false, tightened: loose };
}
