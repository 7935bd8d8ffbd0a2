import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, readlinkSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * One writer per chain family in a log folder. Every line of a chain names the hash of the line
 * before; two processes that resume the same chain from the same head write two different
 * "seq 6", and `audit verify` rightly reports the fork as tampering. So a process that writes
 * chains takes `<LOG_DIR>/.<name>.lock` first and keeps it until its last line is on disk.
 *
 * Node has no flock(2). The lock is a file created with O_EXCL (mode 0600) naming its holder;
 * a lock left by a process that died (SIGKILL, OOM, power loss) is recognised and taken over:
 * - same host and pid namespace: the pid is gone, or it now belongs to another process (its
 *   start time differs: a container that restarts gives the gateway the same pid again), or
 *   the machine has rebooted since (the boot id differs);
 * - otherwise (another host or container sharing the folder) the pid cannot be checked, so the
 *   holder refreshes the file's mtime every LOCK_HEARTBEAT_MS, and a lock not refreshed for
 *   FOREIGN_STALE_MS is taken to be dead.
 * Why not proper-lockfile: it decides staleness by mtime alone, so after a SIGKILL a supervisor's
 * immediate restart is refused for its whole `stale` period, and a holder whose event loop
 * stalls past it (long GC, a hung disk) is robbed of a live lock: the fork this prevents.
 */

/** How often the holder refreshes the lock file's mtime (its heartbeat for other hosts). */
export const LOCK_HEARTBEAT_MS = 10_000;
/** A lock whose holder cannot be checked from here is dead once its heartbeat is this old. */
export const FOREIGN_STALE_MS = 60_000;
/**
 * A lock file without a readable holder (its writer died between create and write) or a
 * takeover marker is abandoned once this old; younger, its writer may still be finishing.
 */
const HALF_WRITTEN_STALE_MS = 10_000;
const WAIT_STEP_MS = 100;
/** How long a starter waits, in small steps, for another one's takeover or write to finish. */
const BUSY_WAIT_MS = 250;
const BUSY_STEP_MS = 10;
const LOCK_MODE = 0o600;
/** The log folder's mode, as the sinks create it. */
const DIR_MODE = 0o750;

/** What a lock file says about the process holding it. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly node: string;
  readonly startedAt: string;
  /** Linux: start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  readonly procStart?: string | undefined;
  /** Linux: the boot id; after a reboot no earlier holder can be alive. */
  readonly boot?: string | undefined;
  /** Linux: the pid namespace; from another one (a container) the pid means nothing here. */
  readonly pidns?: string | undefined;
  /** Tells this holder's file apart from a later one of the same pid. */
  readonly token: string;
}

/** The folder's chains are being written by another live process. */
export class LogDirLocked extends Error {
  constructor(
    readonly dir: string,
    readonly lockFile: string,
    readonly holder: LockHolder | undefined,
  ) {
    const who = holder ? `pid ${holder.pid} on host ${holder.host} (node ${holder.node}, since ${holder.startedAt})` : 'a process that is still writing the lock file';
    super(
      `the audit logs in ${dir} are being written by another process: ${who} holds ${lockFile}. ` +
        `A second writer would fork the hash chain. Wait until that process has exited (a gateway drains for up to server.shutdownTimeout after SIGTERM) or stop it; ` +
        `if it no longer runs, delete ${lockFile}.`,
    );
    this.name = 'LogDirLocked';
  }
}

export interface WriterLock {
  readonly file: string;
  /** The dead holder whose lock was taken over, for a log line; undefined when the folder was free. */
  readonly tookOverFrom: LockHolder | undefined;
  /** Removes the lock file (only while it is still this process's); safe to call twice. */
  release(): void;
}

export interface LockOptions {
  /** The gateway node, recorded for the message another process prints. */
  readonly node: string;
  /** How long to wait for a live holder to let go before refusing (0: refuse at once). */
  readonly waitMs?: number;
}

/** The lock file of chain family `name` (`gateway`, `cli`) in `dir`. */
export function lockFilePath(dir: string, name: string): string {
  return join(dir, `.${name}.lock`);
}

/** Takes the lock on `dir` for `name`, waiting up to `waitMs` for a live holder; throws LogDirLocked. */
export async function lockLogDir(dir: string, name: string, opts: LockOptions): Promise<WriterLock> {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const file = lockFilePath(dir, name);
  const me: LockHolder = { pid: process.pid, host: hostname(), node: opts.node, startedAt: new Date().toISOString(), ...identity(process.pid), token: randomBytes(12).toString('hex') };
  const deadline = Date.now() + (opts.waitMs ?? 0);
  const busyUntil = Date.now() + BUSY_WAIT_MS;
  for (;;) {
    const attempt = tryAcquire(file, me);
    if (attempt.acquired) return hold(file, me, attempt.replaced);
    // Another starter is mid-takeover or mid-write: its outcome, not the dead holder, is the answer.
    if (attempt.busy && Date.now() < busyUntil) {
      await new Promise((r) => setTimeout(r, BUSY_STEP_MS));
      continue;
    }
    if (Date.now() >= deadline) throw new LogDirLocked(dir, file, attempt.holder);
    await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
  }
}

type Attempt = { acquired: true; replaced: LockHolder | undefined } | { acquired: false; holder: LockHolder | undefined; busy?: boolean };

function tryAcquire(file: string, me: LockHolder): Attempt {
  // A few rounds: the holder may remove its file between our create and our read.
  for (let round = 0; round < 3; round++) {
    if (create(file, me)) return { acquired: true, replaced: undefined };
    const seen = read(file);
    if (!seen) continue;
    if (!isStale(seen)) return { acquired: false, holder: seen.holder, busy: seen.holder === undefined };
    return takeOver(file, me, seen);
  }
  return { acquired: false, holder: read(file)?.holder };
}

/**
 * Replaces a dead holder's file. Deciding "stale" and removing the file are two steps; two
 * starters that both judged it stale must not both remove it (the second would remove the
 * first one's fresh lock), so only the holder of a takeover marker (O_EXCL too) may, and only
 * if the file still holds what it judged.
 */
function takeOver(file: string, me: LockHolder, seen: Seen): Attempt {
  const marker = `${file}.takeover`;
  if (!createMarker(marker)) return { acquired: false, holder: seen.holder, busy: true };
  try {
    if (read(file)?.raw === seen.raw) removeIfPresent(file);
    if (create(file, me)) return { acquired: true, replaced: seen.holder };
    return { acquired: false, holder: read(file)?.holder };
  } finally {
    removeIfPresent(marker);
  }
}

function createMarker(marker: string): boolean {
  if (create(marker, undefined)) return true;
  // A starter that died holding the marker would otherwise block every takeover for good.
  try {
    if (Date.now() - statSync(marker).mtimeMs <= HALF_WRITTEN_STALE_MS) return false;
  } catch {
    return create(marker, undefined);
  }
  removeIfPresent(marker);
  return create(marker, undefined);
}

/**
 * Creates `file` with the holder's record, whole or not at all; false when it exists. The record
 * goes to a private temporary file first, then is hard-linked into place: link() fails with
 * EEXIST like O_EXCL, but a racing reader never sees the file empty or half written (with
 * O_EXCL + write it did, and could not name the winner).
 */
function create(file: string, holder: LockHolder | undefined): boolean {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, holder ? `${JSON.stringify(holder)}\n` : `${process.pid}\n`, { flag: 'wx', mode: LOCK_MODE });
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    removeIfPresent(tmp);
  }
}

interface Seen {
  readonly raw: string;
  readonly holder: LockHolder | undefined;
  readonly ageMs: number;
}

/** The lock file as it is now; undefined when it does not exist. */
function read(file: string): Seen | undefined {
  try {
    const raw = readFileSync(file, 'utf8');
    const ageMs = Date.now() - statSync(file).mtimeMs;
    return { raw, holder: parseHolder(raw), ageMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseHolder(raw: string): LockHolder | undefined {
  try {
    const h = JSON.parse(raw) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string' || typeof h.token !== 'string') return undefined;
    return { node: '?', startedAt: '?', ...h } as LockHolder;
  } catch {
    return undefined;
  }
}

function isStale(seen: Seen): boolean {
  const h = seen.holder;
  if (!h) return seen.ageMs > HALF_WRITTEN_STALE_MS;
  const here = identity(process.pid);
  const checkable = h.host === hostname() && (h.pidns === undefined || here.pidns === undefined || h.pidns === here.pidns);
  if (!checkable) return seen.ageMs > FOREIGN_STALE_MS;
  if (h.boot && here.boot && h.boot !== here.boot) return true;
  return !alive(h);
}

/** Whether the holder's process still runs: its pid exists and, where Linux tells, started when it did. */
function alive(h: LockHolder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    // EPERM: a process of another user has that pid; it may be the holder.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (!h.procStart) return true;
  const now = identity(h.pid).procStart;
  return now === undefined || now === h.procStart;
}

/** Linux process identity beyond the pid; empty where /proc is not there. */
function identity(pid: number): Pick<LockHolder, 'procStart' | 'boot' | 'pidns'> {
  const out: { procStart?: string; boot?: string; pidns?: string } = {};
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses); field 22 is the 20th of them.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    if (start) out.procStart = start;
  } catch {
    // not Linux, or the process is gone
  }
  try {
    out.boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // not Linux
  }
  try {
    out.pidns = readlinkSync('/proc/self/ns/pid');
  } catch {
    // not Linux
  }
  return out;
}

function removeIfPresent(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** The held lock: a heartbeat for other hosts, and a release at exit however the process ends. */
function hold(file: string, me: LockHolder, replaced: LockHolder | undefined): WriterLock {
  const heartbeat = setInterval(() => {
    try {
      const t = new Date();
      utimesSync(file, t, t);
    } catch {
      // The folder refuses writes now; the sinks alert about that. A missed beat only matters
      // to another host, after FOREIGN_STALE_MS.
    }
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    clearInterval(heartbeat);
    process.off('exit', release);
    try {
      // Never another holder's file (one that took over after this process stalled).
      if (read(file)?.holder?.token === me.token) unlinkSync(file);
    } catch {
      // Left behind, it is recognised as stale: this pid is gone.
    }
  };
  // An uncaught exception or a process.exit() elsewhere still runs 'exit' listeners (not SIGKILL).
  process.on('exit', release);
  return { file, tookOverFrom: replaced, release };
}
