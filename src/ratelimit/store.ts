import { MemoryStore, type Options as ExpressRateLimitOptions } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from '../stores/redis.js';

/** Every rate-limit key in Redis: `crmgw:rl:<limit name>:<bucket>`, each with the window as TTL. */
export const RATE_LIMIT_KEY_PREFIX = `${REDIS_PREFIX}rl:`;

/**
 * How long one counter update may take before the store counts as unavailable. Redis answers
 * in well under a millisecond on a healthy network; a hung server must not hold requests.
 */
export const STORE_TIMEOUT_MS = 1_000;

/** A take-back that never creates a key (a plain DECR on an expired key would leave one without a TTL). */
const REFUND_SCRIPT = "if redis.call('PTTL', KEYS[1]) > 0 then return redis.call('DECR', KEYS[1]) end return 0";

export interface Hits {
  totalHits: number;
  /** When the window of this bucket ends. */
  resetTime: Date | undefined;
}

/**
 * A fixed-window hit counter, one per limit (the window is fixed at creation). `hit` rejects
 * when the store cannot answer; the caller applies the limit's fail mode.
 */
export interface LimitStore {
  /** `redis`: shared by every gateway process; `memory`: this process only. */
  readonly kind: 'redis' | 'memory';
  hit(key: string): Promise<Hits>;
  /** Takes back one hit (a provisional charge that turned out not to be owed). Best effort. */
  refund(key: string): Promise<void>;
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
  return {
    kind: 'memory',
    hit: async (key) => {
      const { totalHits, resetTime } = await store.increment(key);
      return { totalHits, resetTime };
    },
    refund: (key) => store.decrement(key),
    close: () => store.shutdown(),
  };
}

/**
 * rate-limit-redis's RedisStore (an atomic Lua increment; the first hit sets the window as the
 * key's TTL) on the gateway's one ioredis client (auto-pipelined, no offline queue).
 *
 * RedisStore loads its script once, in `init`; if Redis is down at that moment the store stays
 * broken for good. So the script is (re)loaded lazily: before the first hit and after any
 * failure, which is what lets limits come back by themselves when Redis does. A Redis restart
 * that forgets the script is handled by RedisStore itself (NOSCRIPT → reload).
 */
/** The refund script as an ioredis command: EVALSHA, with EVAL only when Redis lacks the script. */
const REFUND_COMMAND = 'crmgwRateLimitRefund';
type RefundingRedis = Redis & { [REFUND_COMMAND]?: (key: string) => Promise<unknown> };

function refundCommand(redis: Redis): (key: string) => Promise<unknown> {
  const r = redis as RefundingRedis;
  if (!r[REFUND_COMMAND]) redis.defineCommand(REFUND_COMMAND, { numberOfKeys: 1, lua: REFUND_SCRIPT });
  const command = r[REFUND_COMMAND];
  if (!command) throw new Error('ioredis did not define the refund command');
  return (key) => command.call(redis, key);
}

function redisLimitStore(windowMs: number, redis: Redis, timeoutMs: number): LimitStore {
  const store = new RedisStore({
    prefix: RATE_LIMIT_KEY_PREFIX,
    sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
  });
  store.windowMs = windowMs;
  const refund = refundCommand(redis);
  let scriptLoaded = false;

  const ensureUp = (): void => {
    // Without an offline queue a command would fail anyway; this skips building it.
    if (redis.status !== 'ready') throw new Error(`redis is ${redis.status}`);
  };

  return {
    kind: 'redis',
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
    refund: async (key) => {
      ensureUp();
      await withTimeout(refund(store.prefixKey(key)), timeoutMs);
    },
    close: () => undefined, // the client belongs to the process, not to a limit
  };
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
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
