import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from '../../stores/redis.js';

/** The lock outlives a stalled holder by this much at most; a live holder extends it. */
export const ORDER_LOCK_TTL_MS = 60_000;

/** One holder's claim: `fence` grows with every claim, so a holder that lost the lock cannot write over a newer one. */
export interface OrderClaim {
  readonly fence: number;
  /** Still ours: extends the TTL when it is. */
  extend(): Promise<boolean>;
  /**
   * The fencing check, just before the files are written: still the holder, and no later claim
   * has written; records `fence` as the last one written. False: do not write.
   */
  commit(): Promise<boolean>;
  release(): Promise<void>;
}

/** What a lock is for: one certificate (the directory and its names). */
export function orderLockScope(directoryUrl: string, names: readonly string[]): string {
  return createHash('sha256').update(`${directoryUrl} ${names.join(',')}`).digest('hex').slice(0, 16);
}

/** At most one instance orders at a time. */
export interface OrderLock {
  /** A claim, or undefined when another instance holds the lock. */
  acquire(): Promise<OrderClaim | undefined>;
}

/** How long the fence records live: far beyond any order, renewed by each one. */
const FENCE_TTL_S = 400 * 86_400;

/** KEYS: lock. ARGV: value, ttlMs. */
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
/** KEYS: lock. ARGV: value. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
/** KEYS: lock, written. ARGV: value, fence, ttlS. */
const COMMIT = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if last >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1`;

/**
 * A Redis lock (SET NX PX, released and extended only by its holder) with a fencing number
 * from INCR: a holder paused past the TTL (GC, a stopped VM) finds at commit that the lock is
 * another's, or that a later claim already wrote, and leaves the files alone. `scope` names
 * the certificate (directory and hosts): deployments sharing a Redis for other certificates do
 * not wait on each other.
 */
export function redisOrderLock(redis: Redis, scope: string, ttlMs = ORDER_LOCK_TTL_MS): OrderLock {
  const LOCK_KEY = `${REDIS_PREFIX}acme:${scope}:order-lock`;
  const FENCE_KEY = `${REDIS_PREFIX}acme:${scope}:fence`;
  const WRITTEN_KEY = `${REDIS_PREFIX}acme:${scope}:written-fence`;
  return {
    async acquire() {
      const fence = await redis.incr(FENCE_KEY);
      await redis.expire(FENCE_KEY, FENCE_TTL_S);
      const value = `${fence}:${randomBytes(12).toString('hex')}`;
      if ((await redis.set(LOCK_KEY, value, 'PX', ttlMs, 'NX')) !== 'OK') return undefined;
      return {
        fence,
        extend: async () => (await redis.eval(EXTEND, 1, LOCK_KEY, value, ttlMs)) === 1,
        commit: async () => (await redis.eval(COMMIT, 2, LOCK_KEY, WRITTEN_KEY, value, fence, FENCE_TTL_S)) === 1,
        release: async () => {
          await redis.eval(RELEASE, 1, LOCK_KEY, value);
        },
      };
    },
  };
}

/**
 * Without Redis the gateway is one process (more than one worker needs REDIS_URL), so it is
 * the only one that orders; the lock only keeps its own attempts from overlapping.
 */
export function localOrderLock(): OrderLock {
  let held = false;
  let fence = 0;
  return {
    async acquire() {
      if (held) return undefined;
      held = true;
      const mine = ++fence;
      return {
        fence: mine,
        extend: async () => held && fence === mine,
        commit: async () => held && fence === mine,
        release: async () => {
          if (fence === mine) held = false;
        },
      };
    },
  };
}
