import type { Redis, RedisOptions } from 'ioredis';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

/** Key prefix of everything the gateway writes to Redis. Every key also gets a TTL. */
export const REDIS_PREFIX = 'crmgw:';

/**
 * The one Redis client of a process (commands; subscribers duplicate it). Commands fail fast
 * while Redis is down (no offline queue), so every caller applies its own fail mode instead
 * of hanging; the client reconnects by itself. ioredis is loaded here, on first use: a gateway
 * without REDIS_URL never loads it (about 6 MB of RSS; issue 13, item 5).
 */
export async function createRedis(cfg: GatewayConfig, log: Logger, extra: RedisOptions = {}): Promise<Redis | undefined> {
  const url = cfg.stores.redisUrl;
  if (!url) return undefined;
  const { Redis: Client } = await import('ioredis');
  const options: RedisOptions = {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...(cfg.stores.redisPassword ? { password: cfg.stores.redisPassword } : {}),
    ...extra,
  };
  const redis = new Client(url, options);
  // undefined until the first connection or failure: a Redis down since startup is an outage
  // too (the gateway refuses tokens until it has read the revocations), reported once as such.
  let up: boolean | undefined;
  redis.on('ready', () => {
    if (up !== true) log.security('store.redis_connected', { url: redactUrl(url) });
    up = true;
  });
  redis.on('error', (err: Error) => {
    if (up !== false) log.security('store.redis_lost', { url: redactUrl(url), error: err.message, ...(up === undefined ? { sinceStartup: true } : {}) });
    up = false;
  });
  redis.on('end', () => {
    up = false;
  });
  return redis;
}

/** A URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

/** `work`, or a rejection after `ms`: a Redis that does not answer in time counts as down. */
export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Options of a one-shot probe connection (doctor, the persistence check): one bounded attempt,
 * no retries, no reconnects, every command bounded by `timeoutMs`.
 */
export function probeOptions(timeoutMs: number, password: string | undefined): RedisOptions {
  return {
    lazyConnect: true,
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: () => false,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    ...(password ? { password } : {}),
  };
}
