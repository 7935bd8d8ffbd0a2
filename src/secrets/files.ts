import { existsSync, mkdirSync, readFileSync, statSync, chmodSync } from 'node:fs';
import { parseDotenv, type DotenvDocument } from './dotenv.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, writeFileAtomic, writeNewPrivateFile } from '../stores/private-file.js';

export { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, writeFileAtomic, writeNewPrivateFile } from '../stores/private-file.js';

/** `2025-01-31T02:00:00.123Z` → `20250131T020000Z`: sortable and safe in a file name. */
export function fileStamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/**
 * Copies `path` to `<path>.backup-<stamp>` (mode 0600, never overwriting an earlier backup)
 * and returns the backup's path. Called before every change to a secret file.
 */
export function backupFile(path: string, now = new Date()): string {
  const data = readFileSync(path);
  const base = `${path}.backup-${fileStamp(now)}`;
  for (let n = 0; n < 1000; n++) {
    const candidate = n === 0 ? base : `${base}-${n}`;
    if (existsSync(candidate)) continue;
    writeNewPrivateFile(candidate, data);
    return candidate;
  }
  throw new Error(`${path}: too many backups at ${base}`);
}

/** Creates a folder for secrets (mode 0700) or tightens an existing one's mode. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, PRIVATE_DIR_MODE);
}

/** Permission bits of a file, e.g. 0o600. */
export function fileMode(path: string): number {
  return statSync(path).mode & 0o777;
}

/** Reads and parses a `.env` file; throws DotenvError (malformed) or the fs error (unreadable). */
export function readDotenvFile(path: string): DotenvDocument {
  return parseDotenv(readFileSync(path, 'utf8'), path);
}

/**
 * Writes a `.env` document: the current file (if any) is first copied to a timestamped backup
 * of mode 0600, then replaced atomically with mode 0600. Returns the backup's path.
 */
export function writeDotenvFile(path: string, doc: DotenvDocument, now = new Date()): string | undefined {
  const backup = existsSync(path) ? backupFile(path, now) : undefined;
  writeFileAtomic(path, doc.toString(), PRIVATE_FILE_MODE);
  return backup;
}
