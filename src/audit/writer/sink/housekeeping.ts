import { readdir, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { gzipClosedFile } from '../compress.js';
import { parseFileName } from '../files.js';

const DAY_MS = 86_400_000;

export interface HousekeepingOptions {
  readonly dir: string;
  /** The chain whose files this keeps (`access`, `access.w1`). */
  readonly chain: string;
  readonly retentionDays: number;
  readonly events: {
    compressed(file: string): void;
    removed(name: string): void;
    warning(message: string, err: unknown): void;
  };
}

/**
 * Gzip of closed days and retention for one chain, one job at a time in one queue, so retention
 * never removes a file being gzipped.
 */
export class Housekeeping {
  private jobs: Promise<void> = Promise.resolve();

  constructor(private readonly opts: HousekeepingOptions) {}

  queueRetention(): void {
    this.jobs = this.jobs.then(() => this.sweepRetention());
  }

  /** Gzips a closed file whose every line is on disk. */
  queueGzip(path: string): void {
    const { events } = this.opts;
    this.jobs = this.jobs.then(() =>
      gzipClosedFile(path).then(
        (gz) => events.compressed(basename(gz)),
        (err) => events.warning(`cannot gzip ${basename(path)}; retried at the next start`, err),
      ),
    );
  }

  /** Resolves when the jobs queued so far are done. */
  done(): Promise<void> {
    return this.jobs;
  }

  /**
   * Removes this chain's files (plain or gzipped) of days older than the retention. Done here,
   * by the day in the file name, rather than by the library's `maxFiles`: that one removes only
   * files it created in this run's audit list, misses at startup, and knows nothing of our .gz.
   */
  async sweepRetention(now: Date = new Date()): Promise<void> {
    const { dir, chain, events } = this.opts;
    const cutoff = new Date(now.getTime() - this.opts.retentionDays * DAY_MS).toISOString().slice(0, 10);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      events.warning('cannot list the log folder for retention', err);
      return;
    }
    for (const name of names) {
      const f = parseFileName(dir, name);
      if (!f || f.chain !== chain || f.day >= cutoff) continue;
      try {
        await unlink(f.path);
        events.removed(name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') events.warning(`cannot remove ${name} (retention)`, err);
      }
    }
  }
}
