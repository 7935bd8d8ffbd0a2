/** What the stream records about lines it had to drop: how many, and the times of the first and last. */
export interface DropReport {
  readonly count: number;
  readonly first: string;
  readonly last: string;
}

/**
 * Lines dropped because the backlog was full. They are counted until there is room again; then
 * the stream itself records the drop (sink.ts), so the chain shows where lines are missing.
 */
export class DroppedLines {
  private count = 0;
  private first = '';
  private last = '';
  private allTime = 0;
  private dropping = false;

  /** Every line dropped since the sink started. */
  get total(): number {
    return this.allTime;
  }

  /** Lines are being dropped (from the first drop until the drop is recorded). */
  get overflowing(): boolean {
    return this.dropping;
  }

  /** Lines were dropped that the stream has not recorded yet. */
  get unreported(): boolean {
    return this.count > 0;
  }

  /** Counts one dropped record stamped `time`; true when it is the first of an overflow. */
  add(time: string): boolean {
    if (this.count === 0) this.first = time;
    this.count++;
    this.allTime++;
    this.last = time;
    if (this.dropping) return false;
    this.dropping = true;
    return true;
  }

  /** The drops to record now; counting starts again. */
  take(): DropReport {
    const report = { count: this.count, first: this.first, last: this.last };
    this.count = 0;
    this.dropping = false;
    return report;
  }
}
