/** Callers of flush() waiting until every queued line is on disk. */
export class FlushWaiters {
  private waiting: ((done: boolean) => void)[] = [];

  /** True once settled with `done`; false after `timeoutMs`. */
  async wait(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => this.waiting.push(resolve)),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return done;
  }

  /** Answers everyone waiting: true when the lines are on disk, false when they will not be. */
  settle(done: boolean): void {
    if (this.waiting.length === 0) return;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w(done);
  }
}
