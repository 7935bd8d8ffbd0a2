/** Longest key kept: longer values (paths, names) are cut, so one key costs a bounded number of bytes. */
export const MAX_KEY_LENGTH = 256;

export interface CountEntry {
  readonly value: string;
  readonly count: number;
  readonly denied: number;
}

interface Cell {
  count: number;
  denied: number;
}

/**
 * Requests (and the denied among them) per value (an address, a user, a path), in at most
 * `capacity` entries. When a new value finds it full, the half with the lowest counts is
 * forgotten: a value that keeps coming (a flooding address) stays and ranks on top, a flood of
 * one-off values (a botnet, random paths) cannot push it out, and the cost of the pruning is
 * spread over the `capacity / 2` new values that filled the freed half. A forgotten value that
 * comes back starts again from zero, so its count is a lower bound.
 */
export class TopCounts {
  private readonly cells = new Map<string, Cell>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.cells.size;
  }

  add(value: string, denied: boolean, times = 1): void {
    this.addCounts(value.length > MAX_KEY_LENGTH ? ownCopy(value.slice(0, MAX_KEY_LENGTH)) : value, times, denied ? times : 0);
  }

  addAll(other: TopCounts): void {
    for (const [value, c] of other.cells) this.addCounts(value, c.count, c.denied);
  }

  /** The `n` values with the most requests (ties by value), or with the most denials when `by` is `denied`. */
  top(n: number, by: 'count' | 'denied' = 'count'): CountEntry[] {
    const entries = [...this.cells].filter(([, c]) => c[by] > 0);
    entries.sort((a, b) => b[1][by] - a[1][by] || b[1].count - a[1].count || a[0].localeCompare(b[0]));
    return entries.slice(0, n).map(([value, c]) => ({ value, count: c.count, denied: c.denied }));
  }

  private addCounts(value: string, count: number, denied: number): void {
    const cell = this.cells.get(value);
    if (cell) {
      cell.count += count;
      cell.denied += denied;
      return;
    }
    if (this.cells.size >= this.capacity) this.prune();
    this.cells.set(value, { count, denied });
  }

  private prune(): void {
    const keep = Math.floor(this.capacity / 2);
    const sorted = [...this.cells].sort((a, b) => b[1].count - a[1].count);
    for (let i = keep; i < sorted.length; i++) this.cells.delete((sorted[i] as [string, Cell])[0]);
  }
}

/** A cut key as a string of its own: V8 keeps a slice as a view of the whole (long) original. */
function ownCopy(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
