import { MemoryStore, type Options as ExpressRateLimitOptions } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { Redis } from 'ioredis';
import { REDIS_PREFIX, withTimeout } from '../stores/redis.js';

/** Every rate-limit key in Redis: `crmgw:rl:<limit name>:<bucket>`, each with the window as TTL. */
export const RATE_LIMIT_KEY_PREFIX = `${REDIS_PREFIX}rl:`;

/**
 * How long one counter update may take before the store counts as unavailable. Redis answers
 * in well under a millisecond on a healthy network; a hung server must not hold requests.
 */
export const STORE_TIMEOUT_MS = 1_000;

export interface Hits {
  totalHits: number;
  /** When the window of this bucket ends. */
  resetTime: Date | undefined;
}

/** What `hitUnlessFull` did: `charged` is absent when the guard bucket was full (nothing was counted). */
export interface GuardedHits {
  readonly charged: Hits | undefined;
  /** The guard bucket as read (never charged); zero hits when it does not exist. */
  readonly guard: Hits;
}

/**
 * A fixed-window hit counter, one per limit (the window is fixed at creation). Both operations
 * reject when the store cannot answer; the caller applies the limit's fail mode. Each is one
 * round trip to Redis.
 */
export interface LimitStore {
  /** `redis`: shared by every gateway process; `memory`: this process only. */
  readonly kind: 'redis' | 'memory';
  /** False while the store is known to be unreachable (Redis not connected); memory always answers. */
  readonly ready: boolean;
  hit(key: string): Promise<Hits>;
  /**
   * Counts one hit in `key` unless `guard` already holds `max` hits in its window, in one atomic
   * step: `guard` is read, never charged (the address bucket of a `by: user` route, checked for
   * a request that authenticated and is charged to its user).
   */
  hitUnlessFull(key: string, guard: string, max: number): Promise<GuardedHits>;
  close(): void;
}

/** Redis when the gateway has a client (REDIS_URL), else the embedded store of this process. */
export function createLimitStore(windowMs: number, redis: Redis | undefined, timeoutMs = STORE_TIMEOUT_MS): LimitStore {
  return redis ? redisLimitStore(windowMs, redis, timeoutMs) : memoryLimitStore(windowMs);
}

/** express-rate-limit's MemoryStore: a fixed window per key, swept every window. */
function memoryLimitStore(windowMs: number): LimitStore {
  const store = new MemoryStore();
  // MemoryStore reads only `windowMs` from the middleware options.
  store.init({ windowMs } as ExpressRateLimitOptions);
  const hit = async (key: string): Promise<Hits> => {
    const { totalHits, resetTime } = await store.increment(key);
    return { totalHits, resetTime };
  };
  return {
    kind: 'memory',
    ready: true,
    hit,
    hitUnlessFull: async (key, guard, max) => {
      const g = await store.get(guard);
      const read: Hits = { totalHits: g?.totalHits ?? 0, resetTime: g?.resetTime };
      return { charged: read.totalHits >= max ? undefined : await hit(key), guard: read };
    },
    close: () => store.shutdown(),
  };
}

/**
 * KEYS: the bucket to charge, the guard bucket; ARGV: window ms, max. Returns the charged
 * bucket's hits and milliseconds left ({-1, 0} when the guard was full), then the guard's. The
 * charge is rate-limit-redis's own increment (first hit sets the window as the key's TTL), so
 * a key means the same whichever script wrote it.
 */
const HIT_UNLESS_FULL_SCRIPT = `
local guard = tonumber(redis.call('GET', KEYS[2]) or '0')
local guardTtl = redis.call('PTTL', KEYS[2])
if guardTtl > 0 and guard >= tonumber(ARGV[2]) then return { -1, 0, guard, guardTtl } end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
  redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
  return { 1, tonumber(ARGV[1]), guard, guardTtl }
end
return { redis.call('INCR', KEYS[1]), ttl, guard, guardTtl }`;
/** The script as an ioredis command: EVALSHA, with EVAL only when Redis lacks the script. */
const HIT_UNLESS_FULL_COMMAND = 'crmgwRateLimitHitUnlessFull';
type GuardingRedis = Redis & { [HIT_UNLESS_FULL_COMMAND]?: (key: string, guard: string, windowMs: number, max: number) => Promise<[number, number, number, number]> };

function hitUnlessFullCommand(redis: Redis): (key: string, guard: string, windowMs: number, max: number) => Promise<[number, number, number, number]> {
  const r = redis as GuardingRedis;
  if (!r[HIT_UNLESS_FULL_COMMAND]) redis.defineCommand(HIT_UNLESS_FULL_COMMAND, { numberOfKeys: 2, lua: HIT_UNLESS_FULL_SCRIPT });
  const command = r[HIT_UNLESS_FULL_COMMAND];
  if (!command) throw new Error('ioredis did not define the rate-limit command');
  return (key, guard, windowMs, max) => command.call(redis, key, guard, windowMs, max);
}

/**
 * rate-limit-redis's RedisStore (an atomic Lua increment; the first hit sets the window as the
 * key's TTL) on the gateway's one ioredis client (auto-pipelined, no offline queue), plus the
 * guarded hit of `by: user` routes, a script of ours with the same increment.
 *
 * RedisStore loads its script once, in `init`; if Redis is down at that moment the store stays
 * broken for good. So the script is (re)loaded lazily: before the first hit and after any
 * failure, which is what lets limits come back by themselves when Redis does. A Redis restart
 * that forgets the script is handled by RedisStore itself (NOSCRIPT → reload).
 */
function redisLimitStore(windowMs: number, redis: Redis, timeoutMs: number): LimitStore {
  const store = new RedisStore({
    prefix: RATE_LIMIT_KEY_PREFIX,
    sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
  });
  store.windowMs = windowMs;
  const guarded = hitUnlessFullCommand(redis);
  let scriptLoaded = false;

  const ensureUp = (): void => {
    // Without an offline queue a command would fail anyway; this skips building it.
    if (redis.status !== 'ready') throw new Error(`redis is ${redis.status}`);
  };
  const at = (ms: number): Date => new Date(Date.now() + ms);

  return {
    kind: 'redis',
    get ready() {
      return redis.status === 'ready';
    },
    hit: async (key) => {
      ensureUp();
      if (!scriptLoaded) {
        store.incrementScriptSha = store.loadIncrementScript();
        scriptLoaded = true;
      }
      try {
        const { totalHits, resetTime } = await withTimeout(store.increment(key), timeoutMs);
        return { totalHits, resetTime };
      } catch (err) {
        scriptLoaded = false;
        throw err;
      }
    },
    hitUnlessFull: async (key, guard, max) => {
      ensureUp();
      const [hits, ttl, guardHits, guardTtl] = await withTimeout(guarded(store.prefixKey(key), store.prefixKey(guard), windowMs, max), timeoutMs);
      const guardRead: Hits = { totalHits: guardTtl > 0 ? guardHits : 0, resetTime: guardTtl > 0 ? at(guardTtl) : undefined };
      return { charged: hits < 0 ? undefined : { totalHits: hits, resetTime: at(ttl) }, guard: guardRead };
    },
    close: () => undefined, // the client belongs to the process, not to a limit
  };
}
