import { Redis, type RedisOptions } from 'ioredis';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

/** Key prefix of everything the gateway writes to Redis. Every key also gets a TTL. */
export const REDIS_PREFIX = 'crmgw:';

/**
 * The one Redis client of a process (commands; subscribers duplicate it). Commands fail fast
 * while Redis is down (no offline queue), so every caller applies its own fail mode instead
 * of hanging; the client reconnects by itself.
 */
export function createRedis(cfg: GatewayConfig, log: Logger, extra: RedisOptions = {}): Redis | undefined {
  const url = cfg.stores.redisUrl;
  if (!url) return undefined;
  const options: RedisOptions = {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...(cfg.stores.redisPassword ? { password: cfg.stores.redisPassword } : {}),
    ...extra,
  };
  const redis = new Redis(url, options);
  let up = false;
  redis.on('ready', () => {
    if (!up) log.security('store.redis_connected', { url: redactUrl(url) });
    up = true;
  });
  redis.on('error', (err: Error) => {
    if (up) log.security('store.redis_lost', { url: redactUrl(url), error: err.message });
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
