import type { AuditLogger } from '../audit-logger.js';
import { EMPTY_CHAIN, type ChainState } from '../chain.js';
import { chainName, STREAMS } from '../files.js';
import type { HeadRecord } from '../heads.js';
import { resumeChain } from '../resume.js';
import { StreamSink } from '../sink.js';
import type { LoggerParts } from './parts.js';
import { sinkEvents } from './sink-events.js';

/** What startup found: streams that cannot be written (`chain: reason`), and repairs or gaps per chain. */
export interface Startup {
  readonly failures: string[];
  readonly notes: [chain: string, note: string][];
}

/** The note of a chain whose files end before its recorded head. */
const GAP = 'GAP';

/**
 * Creates the three streams' sinks, each continuing its chain where the files (or the recorded
 * heads, when further) end, then opens them.
 */
export async function openSinks(p: LoggerParts, logger: AuditLogger): Promise<Startup> {
  const heads = await p.heads.load().catch((err: Error) => {
    logger.app('warn', 'chain heads file unreadable; continuing from the log files alone', { error: err.message });
    return [] as HeadRecord[];
  });
  const today = new Date(p.now()).toISOString().slice(0, 10);
  const found: Startup = { failures: [], notes: [] };
  for (const stream of STREAMS) {
    const chain = chainName(stream, p.opts.instance);
    const state = await resume(p.opts.dir, chain, heads, today, found);
    p.sinks.set(
      stream,
      new StreamSink({
        dir: p.opts.dir,
        stream,
        instance: p.opts.instance,
        retentionDays: p.opts.retentionDays,
        maxBacklogBytes: p.opts.maxBacklogBytes,
        chain: state,
        events: sinkEvents(chain, p, logger),
        ...(p.opts.retryFirstMs !== undefined ? { retryFirstMs: p.opts.retryFirstMs } : {}),
        ...(p.opts.retryMaxMs !== undefined ? { retryMaxMs: p.opts.retryMaxMs } : {}),
        ...(p.opts.fs ? { fs: p.opts.fs } : {}),
      }),
    );
  }
  // All three exist before any opens: a failure to open one is an alert written to the others.
  for (const sink of p.sinks.values()) {
    if (!(await sink.start())) found.failures.push(`${sink.chain}: ${sink.status().lastError ?? 'cannot open'}`);
  }
  return found;
}

/** Where `chain` continues; what resuming repaired or found missing goes to `found`. */
async function resume(dir: string, chain: string, heads: readonly HeadRecord[], today: string, found: Startup): Promise<ChainState> {
  try {
    const resumed = await resumeChain(dir, chain, heads, today);
    for (const n of resumed.notes) found.notes.push([chain, n]);
    if (resumed.gap) found.notes.push([chain, GAP]);
    return resumed.state;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') found.failures.push(`${chain}: ${(err as Error).message}`);
    return EMPTY_CHAIN;
  }
}

/** Says what startup found: the lock's trouble or takeover, repairs, and gaps in a chain (a security event). */
export function reportStartup(p: LoggerParts, logger: AuditLogger, lockProblem: string | undefined, found: Startup): void {
  const { opts, lock } = p;
  // The folder refused even the lock file (so it refuses lines too, for now): this process writes unguarded.
  if (lockProblem) found.failures.push(`lock: ${lockProblem}`);
  if (lockProblem && !opts.failClosed) logger.app('warn', 'cannot lock the log folder; writing it without the one-writer guard', { dir: opts.dir, error: lockProblem });
  if (lock?.tookOverFrom) logger.app('warn', 'took over the log folder lock of a process that is gone', { lockFile: lock.file, previous: { ...lock.tookOverFrom } });
  for (const [chain, n] of found.notes) {
    if (n === GAP) logger.security('audit.chain_gap', { stream: chain, message: 'the log files end before the recorded chain head: lines were lost or removed while the gateway was stopped' });
    else logger.app('warn', n, { stream: chain });
  }
}
