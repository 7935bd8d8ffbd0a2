export type SinkState = 'ok' | 'degraded' | 'probing' | 'closed';

/** Retries spent waiting for a failed file stream to close before its lines are taken back. */
const MAX_CLOSE_WAITS = 5;

export interface Backoff {
  /** First and longest wait between attempts to write again after the disk refused. */
  readonly firstMs: number;
  readonly maxMs: number;
}

/**
 * Whether a sink's lines reach the disk. `ok` until a refusal; then `degraded` (lines held, a
 * retry scheduled, each failed attempt waiting twice as long); `probing` once the file is open
 * again, and `ok` only when a whole line has reached it; `closed` for good.
 */
export class SinkHealth {
  private current: SinkState = 'ok';
  private error: Error | undefined;
  private degradedAt = 0;
  private retryDelay: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private closeWaits = 0;

  constructor(
    private readonly backoff: Backoff,
    private readonly retry: () => void,
  ) {
    this.retryDelay = backoff.firstMs;
  }

  get state(): SinkState {
    return this.current;
  }

  get lastError(): Error | undefined {
    return this.error;
  }

  /**
   * A refusal. `outage` when it ends a healthy spell (said once per outage), `again` when a
   * probe failed, undefined when already degraded or closed (nothing changes but the error).
   */
  fail(err: Error): 'outage' | 'again' | undefined {
    this.error = err;
    if (this.current === 'closed' || this.current === 'degraded') return undefined;
    const wasOk = this.current === 'ok';
    this.current = 'degraded';
    if (wasOk) {
      this.degradedAt = Date.now();
      this.retryDelay = this.backoff.firstMs;
      return 'outage';
    }
    this.backOff();
    return 'again';
  }

  /** The file could not be opened again: still degraded, and the next retry waits longer. */
  reopenFailed(err: Error): void {
    this.error = err;
    this.current = 'degraded';
    this.backOff();
  }

  /** The file is open again; a written line will prove it. */
  probing(): void {
    this.current = 'probing';
  }

  /** A whole line reached the file: ok again. Returns how long it was not, and why. */
  recovered(): { downMs: number; error: string } {
    this.current = 'ok';
    return { downMs: Date.now() - this.degradedAt, error: this.error?.message ?? '' };
  }

  close(): void {
    this.current = 'closed';
  }

  scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(this.retry, this.retryDelay);
    this.retryTimer.unref();
  }

  cancelRetry(): void {
    clearTimeout(this.retryTimer);
  }

  /** Whether a retry may wait once more for a stream still closing (at most MAX_CLOSE_WAITS in a row). */
  mayWaitForClose(): boolean {
    return this.closeWaits++ < MAX_CLOSE_WAITS;
  }

  stopWaitingForClose(): void {
    this.closeWaits = 0;
  }

  private backOff(): void {
    this.retryDelay = Math.min(this.retryDelay * 2, this.backoff.maxMs);
  }
}
