import type { PendingLine } from './line-queue.js';

export interface FileHead {
  firstSeq: number;
  lastSeq: number;
  lastHash: string;
}

/**
 * Lines the kernel has taken: how many, and per file where the chain starts and ends in it (the
 * heads recorded outside the files, heads.ts).
 */
export class WrittenLines {
  private lines = 0;
  private readonly heads = new Map<string, FileHead>();
  /** Files whose head moved since the last takeHeads(). */
  private readonly dirty = new Set<string>();

  get count(): number {
    return this.lines;
  }

  add(file: string, line: PendingLine): void {
    this.lines++;
    const h = this.heads.get(file);
    if (h) {
      h.lastSeq = line.seq;
      h.lastHash = line.hash;
    } else this.heads.set(file, { firstSeq: line.seq, lastSeq: line.seq, lastHash: line.hash });
    this.dirty.add(file);
  }

  /** Heads of the files written since the last call (file name → first/last seq, last hash). */
  takeHeads(): Map<string, FileHead> {
    const out = new Map<string, FileHead>();
    for (const f of this.dirty) out.set(f, { ...(this.heads.get(f) as FileHead) });
    this.dirty.clear();
    return out;
  }
}
