import { mkdirSync, readFileSync } from 'node:fs';
import { watchPrivateFile, writeFileAtomic } from '../stores/private-file.js';
import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import { storeUnavailable } from './store/guarded.js';
import { REDIS_PREFIX, withTimeout } from '../stores/redis.js';
import type { RedisSubscription } from '../stores/subscriber.js';
import type { Logger } from '../log/logger.js';

/**
 * Revoked token ids, held in memory so the hot path does not wait on the network. With Redis:
 * each revocation is a key (TTL = the token's remaining life) written in one transaction with
 * its announcement on a channel; every instance's subscription (src/stores/subscriber.ts) adds
 * announcements to its memory and, on every (re)subscription, reads all the keys again before
 * it counts as live. Without Redis: a local file, watched for changes (one instance).
 *
 * How stale an answer may be, with Redis:
 * - subscription live: the time an announcement takes to reach this process (well under a
 *   millisecond on a LAN), plus, if the connection dies without a word, until the heartbeat
 *   notices (at most HEARTBEAT_MS + HEARTBEAT_TIMEOUT_MS, 2 s);
 * - subscription not live (reconnecting, catching up): none; a token not known revoked here is
 *   looked up in Redis, one round trip per request until the subscription is live again;
 * - Redis unreachable as well: the memory as it was when the subscription was lost. Nobody can
 *   revoke through an unreachable Redis, but an instance cut off from a Redis that others still
 *   reach misses what they revoke meanwhile (logged once, `auth.revocations_unverified`). A
 *   process that has never caught up (Redis down since it started) knows nothing, and refuses.
 */
export interface RevocationList {
  /** True, false, or (with Redis, while the subscription is not live) the store's answer. */
  isRevoked(jti: string): boolean | Promise<boolean>;
  /** Revokes until `expSeconds` (the token's own expiry). Resolves once stored. */
  revoke(jti: string, expSeconds: number): Promise<void>;
  /** Called for every revocation learnt, local or remote. */
  onRevoked(listener: (jti: string) => void): void;
  /** Whether memory alone answers `isRevoked` now (always, without Redis). */
  readonly live: boolean;
  close(): Promise<void>;
}

export const REVOCATIONS_CHANNEL = `${REDIS_PREFIX}revocations`;
const KEY = (jti: string): string => `${REDIS_PREFIX}revoked:${jti}`;
const RESYNC_SCAN_COUNT = 500;
/** A revocation lookup in Redis that takes longer counts as unanswered. */
const LOOKUP_TIMEOUT_MS = 1_000;
/** Expired entries are dropped after this many additions (a logout adds one). */
const SWEEP_EVERY = 1_000;

class LocalSet {
  private readonly entries = new Map<string, number>();
  private readonly listeners: ((jti: string) => void)[] = [];
  private added = 0;
  has(jti: string, now = Date.now()): boolean {
    const until = this.entries.get(jti);
    if (until === undefined) return false;
    if (until <= now) {
      this.entries.delete(jti);
      return false;
    }
    return true;
  }
  add(jti: string, untilMs: number): void {
    const isNew = !this.has(jti);
    this.entries.set(jti, untilMs);
    // Ids never looked up again would otherwise stay for the life of the process.
    if (++this.added >= SWEEP_EVERY) this.sweep();
    if (isNew) for (const l of this.listeners) l(jti);
  }
  listen(l: (jti: string) => void): void {
    this.listeners.push(l);
  }
  snapshot(): Record<string, number> {
    const now = Date.now();
    return Object.fromEntries([...this.entries].filter(([, until]) => until > now));
  }
  private sweep(): void {
    this.added = 0;
    const now = Date.now();
    for (const [jti, until] of this.entries) if (until <= now) this.entries.delete(jti);
  }
}

/**
 * The Redis revocation list on `subscription` (which it adds its channel to; the caller starts
 * and closes the subscription).
 */
export function createRedisRevocationList(redis: Redis, subscription: RedisSubscription, log: Logger): RevocationList {
  const local = new LocalSet();
  let unverifiedSince: number | undefined;
  subscription.onChange((live) => {
    if (live) unverifiedSince = undefined;
  });

  subscription.add(REVOCATIONS_CHANNEL, {
    message(text) {
      const [jti, exp] = text.split(' ');
      if (jti && exp) local.add(jti, Number(exp) * 1000);
    },
    async catchUp() {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', KEY('*'), 'COUNT', RESYNC_SCAN_COUNT);
        cursor = next;
        if (keys.length > 0) {
          const ttls = await Promise.all(keys.map((k) => redis.pttl(k)));
          const now = Date.now();
          keys.forEach((k, i) => {
            const ttl = ttls[i] ?? -2;
            if (ttl > 0) local.add(k.slice(KEY('').length), now + ttl);
          });
        }
      } while (cursor !== '0');
    },
  });

  /** Not live: Redis itself answers (and what it says is kept). */
  const lookUp = async (jti: string): Promise<boolean> => {
    let ttl: number;
    try {
      if (redis.status !== 'ready') throw new Error(`redis is ${redis.status}`);
      ttl = await withTimeout(redis.pttl(KEY(jti)), LOOKUP_TIMEOUT_MS);
    } catch (err) {
      const error = (err as Error).message;
      // Never caught up: nothing in memory to go by. Refused as when the account store is down:
      // 503, the token may well be good (issue 18, item 5).
      if (!subscription.synced) throw storeUnavailable(`revocations unknown: the store is unreachable and was never read (${error})`);
      if (unverifiedSince === undefined) {
        unverifiedSince = Date.now();
        log.security('auth.revocations_unverified', {
          error,
          effect: 'tokens are checked against the revocations known when the subscription was lost, until Redis answers again',
        });
      }
      return false;
    }
    if (ttl === -2) return false;
    local.add(jti, ttl > 0 ? Date.now() + ttl : Number.MAX_SAFE_INTEGER);
    return true;
  };

  return {
    isRevoked(jti) {
      if (local.has(jti)) return true;
      return subscription.live ? false : lookUp(jti);
    },
    async revoke(jti, expSeconds) {
      const ttlMs = expSeconds * 1000 - Date.now();
      local.add(jti, expSeconds * 1000);
      if (ttlMs <= 0) return;
      // One transaction: a revocation stored is always announced, or a live instance (which no
      // longer reads the store) would never learn of it.
      const replies = await redis.multi().set(KEY(jti), '1', 'PX', ttlMs).publish(REVOCATIONS_CHANNEL, `${jti} ${expSeconds}`).exec();
      if (!replies) throw new Error('revocation transaction aborted');
      for (const [err] of replies) if (err) throw err;
    },
    onRevoked: (l) => local.listen(l),
    get live() {
      return subscription.live;
    },
    async close() {
      // The subscription belongs to the auth service, which closes it.
    },
  };
}

/** Embedded mode: a JSON file of mode 0600 that the CLI writes and the gateway watches. */
export function createFileRevocationList(dataDir: string, log: Logger): RevocationList {
  const file = join(dataDir, 'revocations.json');
  const local = new LocalSet();
  const load = (): void => {
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
      for (const [jti, until] of Object.entries(data)) if (typeof until === 'number') local.add(jti, until);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.app('warn', 'cannot read revocations file', { file, error: (err as Error).message });
    }
  };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  load();
  const watcher = watchPrivateFile(file, load);
  return {
    isRevoked: (jti) => local.has(jti),
    async revoke(jti, expSeconds) {
      load();
      local.add(jti, expSeconds * 1000);
      writeFileAtomic(file, JSON.stringify(local.snapshot()));
    },
    onRevoked: (l) => local.listen(l),
    live: true,
    async close() {
      watcher?.close();
    },
  };
}
