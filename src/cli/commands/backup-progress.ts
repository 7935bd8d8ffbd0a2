import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PARTIAL_SUFFIX } from '../../backup/manifest.js';

/** How often the progress line is redrawn. */
const PROGRESS_INTERVAL_MS = 500;

export interface Progress {
  /** Stops redrawing and clears the line; idempotent. */
  stop(): void;
}

function partials(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith(PARTIAL_SUFFIX));
  } catch {
    return [];
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

/**
 * `backup run`'s progress on a terminal: bytes written and the rate, read from the size of the
 * partial file the job writes (the job itself stays unaware of terminals). Nothing at all when
 * `out` is not a terminal: a log or a pipe gets only the final lines.
 */
export function backupProgress(dir: string, out: NodeJS.WriteStream | (NodeJS.WritableStream & { isTTY?: boolean }), now: () => number = Date.now): Progress {
  if (!out.isTTY) return { stop: () => undefined };
  const before = new Set(partials(dir));
  const start = now();
  let file: string | undefined;
  let last = 0;
  let drawn = false;
  const draw = (): void => {
    file ??= partials(dir).find((f) => !before.has(f));
    if (!file) return;
    let bytes: number;
    try {
      bytes = statSync(join(dir, file)).size;
    } catch {
      // Renamed into place: the dump is written, verification follows.
      out.write(`\r\u001b[2Kbackup: ${mib(last)} written; verifying`);
      drawn = true;
      return;
    }
    last = bytes;
    const seconds = Math.max((now() - start) / 1000, 0.001);
    out.write(`\r\u001b[2Kbackup: ${mib(bytes)} written, ${mib(bytes / seconds)}/s`);
    drawn = true;
  };
  const timer = setInterval(draw, PROGRESS_INTERVAL_MS);
  timer.unref();
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (drawn) out.write('\r\u001b[2K');
    },
  };
}
