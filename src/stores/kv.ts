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
   * all in one step: whoever comes second finds the mark, never neither. See ConsumeOptions.
   */
  consume(key: string, markKey: string, markPrefix: string, ttlMs: number, opts?: ConsumeOptions): Promise<string | undefined>;
  /** Increments and (re)arms the TTL on first increment; returns the new count. */
  incr(key: string, ttlMs: number): Promise<number>;
  pttl(key: string): Promise<number>;
  del(key: string): Promise<void>;
}

/** Extras of `consume`, taken in the same atomic step. */
export interface ConsumeOptions {
  /** Consume only while this key exists too (else nothing changes); it is deleted with `key`. */
  requires?: string;
  /** A second key written with the mark (same TTL). */
  also?: readonly [key: string, value: string];
}

/**
 * GETDEL, then SET of the mark when a value was there, in one script (atomic in Redis).
 * KEYS: key, mark, requires, also; ARGV: prefix, ttl, has-requires, has-also, also-value.
 */
const CONSUME_SCRIPT = `
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return false end
local v = redis.call('GETDEL', KEYS[1])
if v then
  redis.call('SET', KEYS[2], ARGV[1] .. v, 'PX', ARGV[2])
  if ARGV[3] == '1' then redis.call('DEL', KEYS[3]) end
  if ARGV[4] == '1' then redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[2]) end
end
return v`;
// A new name with the new script: a process never mixes the two argument shapes.
const CONSUME_COMMAND = 'crmgwKvConsume2';
type ConsumingRedis = Redis & {
  [CONSUME_COMMAND]?: (key: string, mark: string, requires: string, also: string, prefix: string, ttl: number, hasRequires: string, hasAlso: string, alsoValue: string) => Promise<string | null>;
};

export function createRedisKv(redis: Redis): Kv {
  const k = (key: string): string => `${REDIS_PREFIX}${key}`;
  const r = redis as ConsumingRedis;
  if (!r[CONSUME_COMMAND]) redis.defineCommand(CONSUME_COMMAND, { numberOfKeys: 4, lua: CONSUME_SCRIPT });
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
    async consume(key, markKey, markPrefix, ttlMs, opts = {}) {
      const command = r[CONSUME_COMMAND];
      if (!command) throw new Error('ioredis did not define the consume command');
      const { requires, also } = opts;
      const ttl = Math.max(1, Math.ceil(ttlMs));
      // Unused key slots repeat `key`: the script never touches them, but every key stays one it may name.
      const result = await command.call(redis, k(key), k(markKey), k(requires ?? key), k(also?.[0] ?? key), markPrefix, ttl, requires ? '1' : '', also ? '1' : '', also?.[1] ?? '');
      return result ?? undefined;
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
    async consume(key, markKey, markPrefix, ttlMs, opts = {}) {
      if (opts.requires !== undefined && !live(opts.requires)) return undefined;
      const e = live(key);
      data.delete(key);
      if (e) {
        data.set(markKey, { value: `${markPrefix}${e.value}`, until: now() + ttlMs });
        if (opts.requires !== undefined) data.delete(opts.requires);
        if (opts.also) data.set(opts.also[0], { value: opts.also[1], until: now() + ttlMs });
      }
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
