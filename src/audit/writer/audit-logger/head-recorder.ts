import type { StreamSink } from '../sink.js';
import { FileHeadStore, type HeadRecord, type HeadStore } from '../heads.js';

/**
 * Records the chain heads outside the files (heads.ts says why): always in the local heads
 * file, and in PostgreSQL once attached. What a store could not take is kept for its next
 * attempt, merged with newer heads of the same files.
 */
export class HeadRecorder {
  private readonly fileHeads: FileHeadStore;
  private dbHeads: HeadStore | undefined;
  private readonly unsaved = new Map<HeadStore, Map<string, HeadRecord>>();

  /** `databaseFailed`: the database refused heads (a failing local file is already alerted through its sink). */
  constructor(
    dir: string,
    private readonly databaseFailed: (where: string, err: Error) => void,
  ) {
    this.fileHeads = new FileHeadStore(dir);
  }

  /** The heads in the local file (this run's and earlier runs'). */
  load(): Promise<HeadRecord[]> {
    return this.fileHeads.load();
  }

  /** From now on heads go to `store` too, starting with `recorded` (so the database knows each file). */
  attachDatabase(store: HeadStore, recorded: readonly HeadRecord[]): void {
    const pending = new Map<string, HeadRecord>();
    for (const r of recorded) pending.set(`${r.chain}/${r.file}`, r);
    this.unsaved.set(store, pending);
    this.dbHeads = store;
  }

  /** Saves the heads the sinks moved since the last call (and any a store did not take before), stamped `at`. */
  async record(sinks: Iterable<StreamSink>, at: string): Promise<void> {
    const fresh: HeadRecord[] = [];
    for (const s of sinks) for (const [file, h] of s.takeHeads()) fresh.push({ chain: s.chain, file, ...h, updatedAt: at });
    await Promise.all(
      [this.fileHeads, this.dbHeads].map(async (store) => {
        if (!store) return;
        const pending = this.unsaved.get(store) ?? new Map<string, HeadRecord>();
        for (const r of fresh) pending.set(`${r.chain}/${r.file}`, r);
        if (pending.size === 0) return;
        try {
          await store.save([...pending.values()]);
          this.unsaved.delete(store);
        } catch (err) {
          // Kept for the next attempt; a failing local file is already alerted through its sink.
          this.unsaved.set(store, pending);
          if (store === this.dbHeads) this.databaseFailed(store.where, err as Error);
        }
      }),
    );
  }

  /** Retention removed `file` (plain name): its absence is expected from now on. */
  markRemoved(chain: string, file: string, at: string): void {
    for (const store of [this.fileHeads, this.dbHeads]) store?.markRemoved(chain, file, at).catch(() => undefined);
  }
}
