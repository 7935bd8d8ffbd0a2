import type { LoggerParts } from './parts.js';

/** How long a shutdown waits for log lines to reach the disk. */
export const CLOSE_TIMEOUT_MS = 10_000;
/** The most a shutdown waits for the alert webhook's last deliveries. */
const WEBHOOK_CLOSE_MS = 5_000;

/**
 * Writes out everything (on SIGTERM), records the chain heads, stops timers, and only then lets
 * go of the log folder.
 */
export async function closeLogger(p: LoggerParts, recordHeads: () => Promise<void>): Promise<void> {
  if (p.closed) return;
  clearInterval(p.timers.heads);
  p.timers.monitor?.stop();
  await p.overview.stopFollowing();
  const unwritten = await Promise.all([...p.sinks.values()].map(async (s) => [s.chain, await s.close(p.closeTimeout)] as const));
  for (const [chain, lines] of unwritten) {
    // Last resort, so nothing is lost silently: the console channel gets what the disk refused.
    for (const line of lines) p.toConsole('error', { stream: 'unwritten', chain, line });
  }
  await recordHeads();
  // Only now may another process continue these chains: every line of ours is on disk.
  p.lock?.release();
  p.closed = true;
  await p.eventsDb.close();
  await p.webhook?.close(Math.min(p.closeTimeout, WEBHOOK_CLOSE_MS));
  p.unregisterStatus();
}
