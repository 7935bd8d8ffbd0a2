import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * A lock around a read-modify-write of one small file shared by processes of one host (the
 * CLI and the gateway's automatic blocks on DATA_DIR/blocks.json): without it, two writers
 * that read the same version each write back their own change and one is lost.
 *
 * Node has no flock(2): the lock is a file created with O_EXCL (`wx`, mode 0600) naming its
 * holder. It is held for milliseconds, so one left behind by a process that died is taken over
 * when its pid is gone (same host) or when it is older than LOCK_STALE_MS (any host: a network
 * mount shared with a host whose pids mean nothing here). The writer-lock of the log folder
 * (src/audit/writer/writer-lock.ts) does more (heartbeats, pid reuse) because it is held for hours.
 */

/** A lock this old is abandoned, whoever holds it: the work under it takes milliseconds. */
export const LOCK_STALE_MS = 10_000;
/** A lock file without a holder (its writer died between create and write) is abandoned once this old. */
const HALF_WRITTEN_STALE_MS = 1_000;
/** How long a writer waits for the lock before it gives up with an error. */
const LOCK_WAIT_MS = 5_000;
const LOCK_STEP_MS = 10;

export class FileLockBusy extends Error {
  override readonly name = 'FileLockBusy';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `work` while holding `lockFile`; waits for another holder, takes over a dead one. */
export async function withFileLock<T>(lockFile: string, work: () => T, waitMs = LOCK_WAIT_MS): Promise<T> {
  const ino = await acquire(lockFile, waitMs);
  try {
    return work();
  } finally {
    release(lockFile, ino);
  }
}

async function acquire(lockFile: string, waitMs: number): Promise<number> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(lockFile, 'wx', 0o600);
      try {
        writeSync(fd, `${JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() })}\n`);
        return statSync(lockFile).ino;
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const stale = staleLock(lockFile);
    if (stale !== undefined) {
      // Only the file judged stale is removed: if another waiter took it over in between, the
      // inode differs and its fresh lock stays.
      removeIfSame(lockFile, stale);
      continue;
    }
    if (Date.now() > deadline) throw new FileLockBusy(`${lockFile} is held by another process (${holderText(lockFile)}); try again`);
    await sleep(LOCK_STEP_MS);
  }
}

/** The inode of the lock file when its holder is gone, else undefined. */
function staleLock(lockFile: string): number | undefined {
  let ino: number;
  let age: number;
  let text: string;
  try {
    const st = statSync(lockFile);
    ino = st.ino;
    age = Date.now() - st.mtimeMs;
    text = readFileSync(lockFile, 'utf8');
  } catch {
    return undefined; // gone already: the next attempt takes it
  }
  if (age > LOCK_STALE_MS) return ino;
  let holder: { pid?: unknown; host?: unknown };
  try {
    holder = JSON.parse(text) as { pid?: unknown; host?: unknown };
  } catch {
    return age > HALF_WRITTEN_STALE_MS ? ino : undefined;
  }
  if (holder.host !== hostname() || typeof holder.pid !== 'number') return undefined;
  try {
    process.kill(holder.pid, 0);
    return undefined;
  } catch (err) {
    // EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? ino : undefined;
  }
}

function holderText(lockFile: string): string {
  try {
    return readFileSync(lockFile, 'utf8').trim();
  } catch {
    return 'unknown holder';
  }
}

function removeIfSame(lockFile: string, ino: number): void {
  try {
    if (statSync(lockFile).ino === ino) unlinkSync(lockFile);
  } catch {
    // gone already
  }
}

function release(lockFile: string, ino: number): void {
  removeIfSame(lockFile, ino);
}
