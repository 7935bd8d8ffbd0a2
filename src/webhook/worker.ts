import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Logger } from '../log/logger.js';
import { decodeDelivery, type Delivery } from './envelope.js';
import { deliver, type DeliveryResult } from './deliver.js';
import type { Sealer } from '../stores/sealed.js';
import type { QueueEntry, WebhookStore } from './store.js';
import type { WebhookMetrics } from './metrics.js';

/** How often an idle worker looks for entries that another process queued and nobody delivers. */
const IDLE_POLL_MS = 1_000;
/** The lease outlives one delivery attempt by this much, and is renewed every third of it. */
const LEASE_MARGIN_MS = 10_000;
/** A payload the CRM API refuses (4xx) is tried this many times, then moved to the dead letters. */
const PERMANENT_ATTEMPTS = 3;

export interface WorkerOptions {
  readonly routeName: string;
  readonly target: URL;
  readonly agent: http.Agent;
  /** Upstream inactivity bound of one attempt: the route's timeout. */
  readonly timeoutMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** Additional authenticated data of sealed entries. */
  readonly aad: string;
  /** The gateway's webhook metrics (late deliveries and dead letters are counted there). */
  readonly metrics: WebhookMetrics;
}

/**
 * Delivers a route's queue to the CRM API, oldest first, one at a time. Across processes a
 * lease in Redis makes one worker the deliverer: strict order needs a single deliverer, so
 * the stream is read from its head under the lease rather than fanned out to a consumer
 * group (whose members would deliver side by side, out of order). An entry leaves the
 * stream only once the CRM API took it (2xx); a worker that dies mid-delivery leaves it for
 * the next lease holder, so delivery is at least once. Every attempt of one payload carries
 * the same X-Request-Id, which the CRM API can use to drop such a repeat.
 */
export class DeliveryWorker {
  readonly token = randomUUID();
  private readonly leaseMs: number;
  private holding = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  /** Plain payloads whose request still waits for the outcome, by entry id. */
  private readonly waiting = new Map<string, { delivery: Delivery; done: (delivered: boolean) => void }>();
  /** Entries the CRM API took while Redis could not be told; removed before anything else. */
  private readonly delivered = new Set<string>();
  private readonly refusals = new Map<string, number>();
  private failures = 0;

  constructor(
    private readonly store: WebhookStore,
    private readonly sealer: Sealer,
    private readonly log: Logger,
    private readonly o: WorkerOptions,
  ) {
    this.leaseMs = o.timeoutMs + LEASE_MARGIN_MS;
  }

  /** True while the CRM API is failing: new payloads are acknowledged as queued without waiting. */
  get backingOff(): boolean {
    return this.failures > 0;
  }

  get lease(): number {
    return this.leaseMs;
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      this.log.app('error', 'webhook delivery worker crashed', { route: this.o.routeName, error: err instanceof Error ? err.stack : String(err) });
    });
  }

  /** Something was queued: look now instead of at the next poll. */
  nudge(): void {
    this.wake?.();
  }

  /**
   * Waits up to `ms` for this process to deliver entry `id` (its lease is ours): true once the
   * CRM API took it, false after `ms` or as soon as an attempt fails. Keeps the plain payload
   * meanwhile, so the fast path never decrypts what it just sealed.
   */
  awaitDelivery(id: string, delivery: Delivery, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(false);
      }, ms);
      this.waiting.set(id, {
        delivery,
        done: (delivered) => {
          clearTimeout(timer);
          resolve(delivered);
        },
      });
      this.nudge();
    });
  }

  /** The CRM API failed: nobody waits out the bound for a queue that is stuck now. */
  private giveUpWaiting(): void {
    for (const [id, w] of this.waiting) {
      this.waiting.delete(id);
      w.done(false);
    }
  }

  /** Stops after the attempt under way (bounded by the route timeout) and gives the lease back. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.nudge();
    await this.loop;
    this.stopRenewing();
    if (this.holding) await this.store.release(this.token, true).catch(() => undefined);
    this.holding = false;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.turn();
      } catch (err) {
        await this.survive(err);
      }
    }
  }

  private async turn(): Promise<void> {
    await this.flushRemovals();
    if (!this.holding) {
      await this.sleep(IDLE_POLL_MS, true);
      if (this.stopped) return;
      await this.tryAcquire();
      return;
    }
    await this.step();
  }

  /**
   * An error nothing else caught. The loop goes on, but first the lease is given back: the
   * renewal timer would otherwise keep it alive for a deliverer that no longer delivers, and
   * every process sharing the queue would wait on it forever.
   */
  private async survive(err: unknown): Promise<void> {
    this.log.app('error', 'webhook delivery failed unexpectedly; lease released', { route: this.o.routeName, error: err instanceof Error ? err.stack : String(err) });
    this.stopRenewing();
    if (this.holding) await this.store.release(this.token, true).catch(() => undefined);
    this.holding = false;
    await this.backoff('unexpected error');
  }

  private async tryAcquire(): Promise<void> {
    try {
      // Someone waits in this process (its accept took the lease), or entries may be orphaned.
      if (this.waiting.size === 0 && this.delivered.size === 0 && (await this.store.depth()) === 0) return;
      if (!(await this.store.acquire(this.token, this.leaseMs))) return;
      this.holding = true;
      this.renewTimer = setInterval(() => void this.renew(), Math.floor(this.leaseMs / 3));
      this.renewTimer.unref();
    } catch {
      // Redis unreachable: the next poll tries again; nothing is lost, the queue is in Redis.
    }
  }

  private async renew(): Promise<void> {
    try {
      if (!(await this.store.renew(this.token, this.leaseMs))) this.lostLease();
    } catch {
      // Redis down: the lease may lapse; the holder after us redelivers at worst (at least once).
    }
  }

  private lostLease(): void {
    if (!this.holding) return;
    this.log.app('warn', 'webhook delivery lease lost', { route: this.o.routeName });
    this.holding = false;
    this.stopRenewing();
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  /** Entries delivered while Redis was unreachable leave the queue before anything else happens. */
  private async flushRemovals(): Promise<void> {
    for (const id of this.delivered) {
      try {
        await this.store.remove(id);
        this.delivered.delete(id);
      } catch {
        return;
      }
    }
  }

  /** One turn while holding the lease: take the head, confirm the lease is still ours, deliver. */
  private async step(): Promise<void> {
    let entry: QueueEntry | undefined;
    try {
      if (this.delivered.size > 0) throw new Error('delivered entries not yet removed');
      entry = await this.store.head();
      if (!entry) {
        const r = await this.store.release(this.token);
        if (r !== 0) {
          this.holding = false;
          this.stopRenewing();
        }
        return;
      }
      // Checked (and extended) right before each attempt: a holder whose lease lapsed while
      // Redis was away must not deliver alongside the next one.
      if (!(await this.store.renew(this.token, this.leaseMs))) {
        this.lostLease();
        return;
      }
    } catch (err) {
      await this.backoff(`store: ${(err as Error).message}`);
      return;
    }
    const delivery = this.waiting.get(entry.id)?.delivery ?? this.open(entry);
    if (!delivery) {
      await this.bury(entry, 'cannot be opened with WHATSAPP_QUEUE_KEY');
      return;
    }
    const result = await deliver(this.o.target, delivery, this.o.agent, this.o.timeoutMs);
    if (result.ok) await this.onDelivered(entry, delivery, result);
    else await this.onFailed(entry, delivery, result);
  }

  private open(entry: QueueEntry): Delivery | undefined {
    if (!entry.sealed) return undefined;
    try {
      return decodeDelivery(this.sealer.open(entry.sealed, this.o.aad));
    } catch {
      return undefined;
    }
  }

  private async onDelivered(entry: QueueEntry, d: Delivery, result: DeliveryResult & { ok: true }): Promise<void> {
    if (this.failures > 0) this.log.app('info', 'webhook delivery resumed', { route: this.o.routeName });
    this.failures = 0;
    this.refusals.delete(entry.id);
    this.delivered.add(entry.id);
    try {
      await this.store.remove(entry.id);
      this.delivered.delete(entry.id);
    } catch {
      // Kept in `delivered`: removed first thing once Redis answers again.
    }
    const waiter = this.waiting.get(entry.id);
    if (waiter) {
      this.waiting.delete(entry.id);
      waiter.done(true); // the request answers "forwarded" and logs it
      return;
    }
    this.o.metrics.countOutcome(this.o.routeName, 'delivered_late');
    this.log.security('webhook.whatsapp', { outcome: 'delivered_late', route: this.o.routeName, requestId: d.requestId, entry: entry.id, status: result.status, queuedMs: Date.now() - d.receivedAt });
  }

  private async onFailed(entry: QueueEntry, d: Delivery, result: DeliveryResult & { ok: false }): Promise<void> {
    if (result.permanent) {
      const n = (this.refusals.get(entry.id) ?? 0) + 1;
      this.refusals.set(entry.id, n);
      if (n >= PERMANENT_ATTEMPTS) {
        this.refusals.delete(entry.id);
        await this.bury(entry, `CRM API refused it ${n} times (${result.reason})`, d.requestId);
        return;
      }
    }
    this.log.app('warn', 'webhook delivery failed; will retry', { route: this.o.routeName, requestId: d.requestId, entry: entry.id, reason: result.reason });
    await this.backoff(result.reason);
  }

  /** Out of the queue, into the dead letters (still sealed): the queue behind it moves on. */
  private async bury(entry: QueueEntry, reason: string, requestId?: string): Promise<void> {
    try {
      await this.store.deadLetter(entry, reason);
    } catch (err) {
      await this.backoff(`store: ${(err as Error).message}`);
      return;
    }
    this.waiting.get(entry.id)?.done(false);
    this.waiting.delete(entry.id);
    this.o.metrics.countOutcome(this.o.routeName, 'dead_lettered');
    this.log.security('webhook.whatsapp', { outcome: 'dead_lettered', route: this.o.routeName, requestId, entry: entry.id, reason });
  }

  private async backoff(reason: string): Promise<void> {
    this.giveUpWaiting();
    this.failures++;
    const ms = Math.min(this.o.retryMaxMs, this.o.retryMinMs * 2 ** Math.min(this.failures - 1, 20));
    if (this.failures === 1) this.log.app('warn', 'webhook delivery paused', { route: this.o.routeName, reason, retryInMs: ms });
    await this.sleep(ms, false);
  }

  /** Sleeps `ms`; a nudge ends an idle sleep early, and stop() ends any sleep. */
  private sleep(ms: number, wakeOnNudge: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === wakeUp) this.wake = undefined;
        resolve();
      };
      const wakeUp = (): void => {
        if (wakeOnNudge || this.stopped) done();
      };
      const timer = setTimeout(done, ms);
      this.wake = wakeUp;
    });
  }
}
