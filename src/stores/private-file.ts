import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fsyncSync, openSync, renameSync, rmSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/*
 * Private files written whole: secrets (.env), the embedded user store, revocations and blocks,
 * backup manifests. Here rather than in src/secrets/ so the gateway writes them without
 * loading the secrets commands (test/integration/startup-footprint.test.ts).
 */

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

/**
 * Calls `changed` when `file` is written, renamed into place or removed: its folder is watched,
 * since writeFileAtomic replaces the file (a watch on the file itself would follow the old
 * inode). Undefined where the platform cannot watch; callers that must not miss a change
 * re-read on a timer too. Does not keep the process alive.
 */
export function watchPrivateFile(file: string, changed: () => void): FSWatcher | undefined {
  const name = basename(file);
  try {
    return watch(dirname(file), { persistent: false }, (_e, entry) => {
      if (entry === null || String(entry) === name) changed();
    });
  } catch {
    return undefined;
  }
}
