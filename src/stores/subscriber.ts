import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import { withTimeout } from './redis.js';

/**
 * How often a live subscription proves itself: a PING on the subscriber connection. Redis
 * answers it after every message published before it, on the same connection, so a PONG means
 * nothing was lost up to then; a connection that died without a word (a half-open TCP
 * connection, a network partition) is found within HEARTBEAT_MS + HEARTBEAT_TIMEOUT_MS.
 */
export const HEARTBEAT_MS = 1_000;
export const HEARTBEAT_TIMEOUT_MS = 1_000;
/** Wait before subscribing or catching up again after a failure, while the connection stays up. */
const RETRY_MS = 500;

/** One channel's reader. */
export interface ChannelConsumer {
  /** Every message published on the channel while subscribed. */
  message(text: string): void;
  /**
   * Catches up on what was published while not subscribed (at start, after every reconnection):
   * called once the subscription is confirmed, so nothing published after the catch-up began
   * can be missed. The subscription counts as live only once every consumer has caught up.
   */
  catchUp?(): Promise<void>;
}

/** Whether a subscription is live (see RedisSubscription.live). */
export interface Liveness {
  readonly live: boolean;
}

/**
 * A Redis pub/sub subscription that knows whether it can have missed a message: `live` is true
 * only between (a) the subscription confirmed on a connection and every consumer caught up,
 * and (b) the first sign that the connection is gone (closed, or a heartbeat unanswered). State
 * kept current by its messages is the truth while it is live; otherwise its users ask the store.
 * One subscriber connection per process (a duplicate of the process's client), any number of
 * channels.
 */
export class RedisSubscription implements Liveness {
  private readonly sub: Redis;
  private readonly consumers = new Map<string, ChannelConsumer>();
  private readonly listeners: ((live: boolean) => void)[] = [];
  private readonly heartbeat: NodeJS.Timeout;
  /** Bumped whenever the connection may have lost messages: work begun before is void. */
  private epoch = 0;
  private isLive = false;
  private wasLive = false;
  private pinging = false;
  private started = false;
  private closed = false;

  constructor(
    redis: Redis,
    private readonly log: Logger,
    private readonly heartbeatMs = HEARTBEAT_MS,
    private readonly heartbeatTimeoutMs = HEARTBEAT_TIMEOUT_MS,
  ) {
    // Subscribed by hand after every connection (autoResubscribe would not say when it is done).
    this.sub = redis.duplicate({ autoResubscribe: false, enableOfflineQueue: false, lazyConnect: true });
    // Without a listener ioredis prints every reconnection failure; the loss is logged below.
    this.sub.on('error', () => undefined);
    this.sub.on('message', (channel: string, text: string) => this.consumers.get(channel)?.message(text));
    this.sub.on('ready', () => void this.subscribe(++this.epoch));
    const gone = (): void => this.lost('connection closed');
    this.sub.on('close', gone);
    this.sub.on('end', gone);
    this.heartbeat = setInterval(() => void this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** True while no message published on the channels can have been missed (see the class comment). */
  get live(): boolean {
    return this.isLive;
  }

  /** True once the subscription has been live at least once: the consumers hold a full copy, maybe an old one. */
  get synced(): boolean {
    return this.wasLive;
  }

  /** Adds a channel; before `start`. */
  add(channel: string, consumer: ChannelConsumer): void {
    if (this.started) throw new Error('channels are added before the subscription starts');
    this.consumers.set(channel, consumer);
  }

  /** Called with `true` each time the subscription becomes live, `false` each time it stops being. */
  onChange(listener: (live: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** Connects; resolves once live, or false after `waitMs` (the subscription keeps trying). */
  async start(waitMs: number): Promise<boolean> {
    this.started = true;
    const live = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), waitMs);
      timer.unref();
      this.onChange((up) => {
        if (!up) return;
        clearTimeout(timer);
        resolve(true);
      });
    });
    this.sub.connect().catch(() => undefined);
    return live;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    this.epoch++;
    this.setLive(false);
    this.sub.disconnect();
  }

  private async subscribe(epoch: number): Promise<void> {
    if (this.closed) return;
    try {
      await this.sub.subscribe(...this.consumers.keys());
      if (epoch !== this.epoch) return;
      await Promise.all([...this.consumers.values()].map((c) => c.catchUp?.()));
      if (epoch !== this.epoch || this.sub.status !== 'ready') return;
      this.setLive(true);
    } catch (err) {
      if (epoch !== this.epoch || this.closed) return;
      this.log.app('warn', 'pub/sub subscription could not catch up; trying again', { channels: [...this.consumers.keys()], error: (err as Error).message });
      setTimeout(() => {
        if (epoch === this.epoch && this.sub.status === 'ready') void this.subscribe(epoch);
      }, RETRY_MS).unref();
    }
  }

  /** A PING through the subscriber connection; unanswered in time, the connection is dropped and made again. */
  private async beat(): Promise<void> {
    if (!this.isLive || this.pinging) return;
    const epoch = this.epoch;
    this.pinging = true;
    try {
      await withTimeout(this.sub.ping(), this.heartbeatTimeoutMs);
    } catch (err) {
      if (epoch !== this.epoch) return;
      this.lost(`heartbeat: ${(err as Error).message}`);
      this.sub.disconnect(true);
    } finally {
      this.pinging = false;
    }
  }

  private lost(why: string): void {
    this.epoch++;
    if (!this.isLive) return;
    this.setLive(false);
    if (!this.closed) this.log.app('warn', 'pub/sub subscription lost: state it keeps current is read from the store until it is back', { channels: [...this.consumers.keys()], reason: why });
  }

  private setLive(live: boolean): void {
    if (this.isLive === live) return;
    const first = live && !this.wasLive;
    this.isLive = live;
    if (live) {
      this.wasLive = true;
      if (!first) this.log.app('info', 'pub/sub subscription live again', { channels: [...this.consumers.keys()] });
    }
    for (const l of this.listeners) l(live);
  }
}
