/** Attempts per alert (the first plus retries), the first retry delay (doubled each time), per-attempt timeout. */
export const WEBHOOK_ATTEMPTS = 4;
export const WEBHOOK_RETRY_MS = 1_000;
export const WEBHOOK_TIMEOUT_MS = 5_000;
/** Alerts waiting for delivery; the oldest is dropped beyond this (it is in the logs anyway). */
export const WEBHOOK_MAX_QUEUE = 100;

export interface WebhookOptions {
  readonly url: string;
  readonly attempts?: number;
  readonly retryMs?: number;
  readonly timeoutMs?: number;
  /** Reports a delivery that failed every attempt (never the URL: it may hold a secret). */
  readonly onGiveUp?: (info: { alert: string; attempts: number; error: string }) => void;
}

/**
 * Posts alerts as JSON to ALERT_WEBHOOK_URL, one at a time, with retries and backoff. `send`
 * only queues: an alert never waits on the webhook, and a request never waits on an alert.
 */
export class AlertWebhook {
  private readonly queue: Record<string, unknown>[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private sleepTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** Deliveries completed, for status and tests. */
  delivered = 0;
  failed = 0;

  constructor(private readonly opts: WebhookOptions) {}

  /** Where alerts go, without path or query (a webhook URL often carries its secret there). */
  get target(): string {
    try {
      return new URL(this.opts.url).origin;
    } catch {
      return '(invalid url)';
    }
  }

  send(payload: Record<string, unknown>): void {
    if (this.closed) return;
    this.queue.push(payload);
    if (this.queue.length > WEBHOOK_MAX_QUEUE) this.queue.shift();
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  /** Waits up to `timeoutMs` for queued alerts, then stops retrying. */
  async close(timeoutMs: number): Promise<void> {
    const running = this.running;
    if (running) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
    this.closed = true;
    clearTimeout(this.sleepTimer);
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const payload = this.queue.shift() as Record<string, unknown>;
      await this.deliver(payload);
    }
  }

  private async deliver(payload: Record<string, unknown>): Promise<void> {
    const attempts = this.opts.attempts ?? WEBHOOK_ATTEMPTS;
    let delay = this.opts.retryMs ?? WEBHOOK_RETRY_MS;
    let error = '';
    const body = JSON.stringify(payload);
    for (let i = 1; i <= attempts && !this.closed; i++) {
      try {
        const res = await fetch(this.opts.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'crm-gateway-alerts' },
          body,
          redirect: 'error',
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.delivered++;
          return;
        }
        error = `HTTP ${res.status}`;
        // A 4xx other than 408/429 will not change on retry.
        if (res.status < 500 && res.status !== 408 && res.status !== 429) break;
      } catch (err) {
        error = (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message;
      }
      if (i < attempts) {
        await this.sleep(delay);
        delay *= 2;
      }
    }
    this.failed++;
    this.opts.onGiveUp?.({ alert: String(payload.alert), attempts, error });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
      this.sleepTimer.unref();
    });
  }
}
