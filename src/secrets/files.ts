import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, chmodSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { parseDotenv, type DotenvDocument } from './dotenv.js';

/** Secret files: owner read/write only. */
export const PRIVATE_FILE_MODE = 0o600;
/** Folders that hold secret files: owner only. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates a file that never exists with wider permissions than `mode`: O_EXCL refuses a file
 * (or symlink) already at the path, the mode is given at creation, and fchmod makes it exact
 * whatever the umask. Returns the descriptor.
 */
function createExclusive(path: string, mode: number): number {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), mode);
  fchmodSync(fd, mode);
  return fd;
}

function writeAllAndSync(fd: number, data: string | Buffer): void {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
  fsyncSync(fd);
}

/** fsync of a folder, so a rename in it survives a crash. Some filesystems refuse; that is fine. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY);
    fsyncSync(fd);
  } catch {
    // best effort: the data itself is already synced
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Replaces `path` with `data` atomically: a temp file beside it (mode `mode` from creation,
 * O_EXCL), fsync, rename over the target, fsync of the folder. Readers see the old or the new
 * file, never a partial one, and never a moment with looser permissions.
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = PRIVATE_FILE_MODE): void {
  // `<name>.tmp-…`: for `.env` that is `.env.tmp-…`, which .gitignore's `.env.*` covers if a crash leaves it.
  const tmp = join(dirname(path), `${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  const fd = createExclusive(tmp, mode);
  try {
    writeAllAndSync(fd, data);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(dirname(path));
}

/** Writes a new file that must not exist yet (mode from creation, O_EXCL). */
export function writeNewPrivateFile(path: string, data: string | Buffer, mode = PRIVATE_FILE_MODE): void {
  const fd = createExclusive(path, mode);
  try {
    writeAllAndSync(fd, data);
  } finally {
    closeSync(fd);
  }
  syncDir(dirname(path));
}

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
