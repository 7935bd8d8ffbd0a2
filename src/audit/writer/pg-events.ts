import type pg from 'pg';
import { EVENTS_TABLE } from './migrations.js';

/** Rows per INSERT, and the longest a row waits for its batch. */
export const EVENTS_BATCH_ROWS = 500;
export const EVENTS_FLUSH_MS = 1_000;
/** Rows held while PostgreSQL is unreachable; new ones are dropped beyond it (the files keep them). */
export const EVENTS_MAX_QUEUE = 20_000;
const RETRY_MAX_MS = 30_000;

interface Row {
  time: string;
  event: string;
  reason: string | null;
  clientIp: string | null;
  subject: string | null;
  route: string | null;
  requestId: string | null;
  detail: string | null;
  fields: string;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

export interface EventsWriterHooks {
  /** A batch failed; rows stay queued (bounded). Called once per outage. */
  unavailable(err: Error): void;
  recovered(info: { dropped: number }): void;
}

/**
 * Copies security events to PostgreSQL for charts and queries, in batches, off the request
 * path: `push` only queues. The log files stay the record of truth; this is a bounded,
 * best-effort copy that survives short database outages.
 */
export class SecurityEventsWriter {
  private queue: Row[] = [];
  private pool: pg.Pool | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failing = false;
  private retryMs = EVENTS_FLUSH_MS;
  private dropped = 0;
  private closed = false;

  constructor(
    private readonly node: string,
    private readonly hooks: EventsWriterHooks,
  ) {}

  get backlog(): number {
    return this.queue.length;
  }

  attach(pool: pg.Pool): void {
    this.pool = pool;
    this.schedule(0);
  }

  /** Queues one redacted security record (`time`, `event`, fields). */
  push(record: Record<string, unknown>): void {
    if (this.closed) return;
    if (this.queue.length >= EVENTS_MAX_QUEUE) {
      this.dropped++;
      return;
    }
    const { time, event, code, reason, clientIp, user, subject, route, requestId, detail, ...rest } = record;
    this.queue.push({
      time: str(time) ?? new Date().toISOString(),
      event: str(event) ?? 'unknown',
      reason: str(reason) ?? str(code),
      clientIp: str(clientIp),
      subject: str(subject) ?? str(user),
      route: str(route),
      requestId: str(requestId),
      detail: str(detail),
      fields: JSON.stringify(rest),
    });
    if (this.pool && !this.timer && !this.flushing) this.schedule(this.queue.length >= EVENTS_BATCH_ROWS ? 0 : EVENTS_FLUSH_MS);
  }

  /** Writes what is queued (one attempt per batch); resolves when done or failed. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.flushing) await this.flushing;
    if (!this.pool || this.queue.length === 0) return;
    this.flushing = this.writeAll().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().then(() => {
        if (this.queue.length > 0) this.schedule(this.failing ? this.retryMs : 0);
      });
    }, ms);
    this.timer.unref();
  }

  private async writeAll(): Promise<void> {
    const pool = this.pool as pg.Pool;
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, EVENTS_BATCH_ROWS);
      try {
        await pool.query(
          `INSERT INTO ${EVENTS_TABLE} (time, node, event, reason, client_ip, subject, route, request_id, detail, fields)
           SELECT t, $1, e, r, ip, s, rt, rid, d, f::jsonb
           FROM unnest($2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
             AS x(t, e, r, ip, s, rt, rid, d, f)`,
          [
            this.node,
            batch.map((r) => r.time),
            batch.map((r) => r.event),
            batch.map((r) => r.reason),
            batch.map((r) => r.clientIp),
            batch.map((r) => r.subject),
            batch.map((r) => r.route),
            batch.map((r) => r.requestId),
            batch.map((r) => r.detail),
            batch.map((r) => r.fields),
          ],
        );
      } catch (err) {
        if (!this.failing) this.hooks.unavailable(err as Error);
        this.failing = true;
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        return;
      }
      // Rows pushed meanwhile went behind; the batch is still the queue's head.
      this.queue.splice(0, batch.length);
      if (this.failing) {
        this.failing = false;
        this.retryMs = EVENTS_FLUSH_MS;
        this.hooks.recovered({ dropped: this.dropped });
        this.dropped = 0;
      }
    }
  }
}
