import type { RedisOptions } from 'ioredis';
import type { GatewayConfig } from '../config/schema.js';

/** Redis Sentinel's own default master name. */
export const DEFAULT_SENTINEL_MASTER = 'mymaster';

/**
 * Extra ioredis options for Redis Sentinel (`REDIS_SENTINELS=host:port,...`): the client asks
 * the sentinels where the master named `REDIS_SENTINEL_NAME` is and follows failovers. REDIS_URL
 * still gives the password, database and (with `rediss://`) TLS to the master. Empty without
 * sentinels: the URL alone is used.
 */
export function sentinelOptions(cfg: GatewayConfig): RedisOptions {
  const sentinels = cfg.stores.redisSentinels;
  if (!sentinels || sentinels.length === 0) return {};
  return {
    sentinels: sentinels.map((s) => {
      const at = s.lastIndexOf(':');
      return { host: s.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(s.slice(at + 1)) };
    }),
    name: cfg.stores.redisSentinelName ?? DEFAULT_SENTINEL_MASTER,
    ...(cfg.stores.redisUrl?.startsWith('rediss://') ? { enableTLSForSentinelMode: true } : {}),
  };
}
