import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from './redis.js';

/**
 * The few key-value operations that auth state needs, with a TTL on every write. Redis when
 * configured (shared by every instance), else this process's memory (one instance only).
 */
export interface Kv {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Reads and deletes in one step: the single-use primitive. */
  getdel(key: string): Promise<string | undefined>;
  /**
   * Reads and deletes `key` and, when it was there, writes `markPrefix + value` at `markKey`,
   * all in one step: whoever comes second finds the mark, never neither.
   */
  consume(key: string, markKey: string, markPrefix: string, ttlMs: number): Promise<string | undefined>;
  /** Increments and (re)arms the TTL on first increment; returns the new count. */
  incr(key: string, ttlMs: number): Promise<number>;
  pttl(key: string): Promise<number>;
  del(key: string): Promise<void>;
}

/** GETDEL, then SET of the mark when a value was there, in one script (atomic in Redis). */
const CONSUME_SCRIPT = "local v = redis.call('GETDEL', KEYS[1]) if v then redis.call('SET', KEYS[2], ARGV[1] .. v, 'PX', ARGV[2]) end return v";
const CONSUME_COMMAND = 'crmgwKvConsume';
type ConsumingRedis = Redis & { [CONSUME_COMMAND]?: (key: string, mark: string, prefix: string, ttl: number) => Promise<string | null> };

export function createRedisKv(redis: Redis): Kv {
  const k = (key: string): string => `${REDIS_PREFIX}${key}`;
  const r = redis as ConsumingRedis;
  if (!r[CONSUME_COMMAND]) redis.defineCommand(CONSUME_COMMAND, { numberOfKeys: 2, lua: CONSUME_SCRIPT });
  return {
    async get(key) {
      return (await redis.get(k(key))) ?? undefined;
    },
    async set(key, value, ttlMs) {
      await redis.set(k(key), value, 'PX', Math.max(1, Math.ceil(ttlMs)));
    },
    async getdel(key) {
      return (await redis.getdel(k(key))) ?? undefined;
    },
    async consume(key, markKey, markPrefix, ttlMs) {
      const command = r[CONSUME_COMMAND];
      if (!command) throw new Error('ioredis did not define the consume command');
      return (await command.call(redis, k(key), k(markKey), markPrefix, Math.max(1, Math.ceil(ttlMs)))) ?? undefined;
    },
    async incr(key, ttlMs) {
      const [[, count]] = (await redis.multi().incr(k(key)).pexpire(k(key), Math.max(1, Math.ceil(ttlMs)), 'NX').exec()) as [[unknown, number]];
      return count;
    },
    async pttl(key) {
      return redis.pttl(k(key));
    },
    async del(key) {
      await redis.del(k(key));
    },
  };
}

export function createMemoryKv(now: () => number = Date.now): Kv {
  const data = new Map<string, { value: string; until: number }>();
  const live = (key: string): { value: string; until: number } | undefined => {
    const e = data.get(key);
    if (e && e.until <= now()) {
      data.delete(key);
      return undefined;
    }
    return e;
  };
  return {
    async get(key) {
      return live(key)?.value;
    },
    async set(key, value, ttlMs) {
      data.set(key, { value, until: now() + ttlMs });
    },
    async getdel(key) {
      const e = live(key);
      data.delete(key);
      return e?.value;
    },
    async consume(key, markKey, markPrefix, ttlMs) {
      const e = live(key);
      data.delete(key);
      if (e) data.set(markKey, { value: `${markPrefix}${e.value}`, until: now() + ttlMs });
      return e?.value;
    },
    async incr(key, ttlMs) {
      const e = live(key);
      const count = (e ? Number(e.value) : 0) + 1;
      data.set(key, { value: String(count), until: e?.until ?? now() + ttlMs });
      return count;
    },
    async pttl(key) {
      const e = live(key);
      return e ? e.until - now() : -2;
    },
    async del(key) {
      data.delete(key);
    },
  };
}
