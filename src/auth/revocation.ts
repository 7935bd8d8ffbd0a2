import { mkdirSync, readFileSync, watch, writeFileSync, renameSync, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from '../stores/redis.js';
import type { Logger } from '../log/logger.js';

/**
 * Revoked token ids. `isRevoked` is a local map lookup (the hot path never waits on the
 * network); the shared store feeds that map: Redis keys with a TTL equal to the token's
 * remaining life plus pub/sub so every instance learns of a revocation at once, or a local
 * file watched for changes in the embedded single-instance mode.
 */
export interface RevocationList {
  isRevoked(jti: string): boolean;
  /** Revokes until `expSeconds` (the token's own expiry). Resolves once stored. */
  revoke(jti: string, expSeconds: number): Promise<void>;
  /** Called for every revocation learnt, local or remote. */
  onRevoked(listener: (jti: string) => void): void;
  close(): Promise<void>;
}

const CHANNEL = `${REDIS_PREFIX}revocations`;
const KEY = (jti: string): string => `${REDIS_PREFIX}revoked:${jti}`;
const RESYNC_SCAN_COUNT = 500;

class LocalSet {
  private readonly entries = new Map<string, number>();
  private readonly listeners: ((jti: string) => void)[] = [];
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
    if (isNew) for (const l of this.listeners) l(jti);
  }
  listen(l: (jti: string) => void): void {
    this.listeners.push(l);
  }
  snapshot(): Record<string, number> {
    const now = Date.now();
    return Object.fromEntries([...this.entries].filter(([, until]) => until > now));
  }
}

export async function createRedisRevocationList(redis: Redis, log: Logger): Promise<RevocationList> {
  const local = new LocalSet();
  const sub = redis.duplicate({ enableOfflineQueue: true });
  // Without a listener ioredis prints a stack trace to stderr on every reconnect attempt while
  // Redis is down; the outage is already logged once by the main client (store.redis_lost).
  sub.on('error', () => undefined);

  const resync = async (): Promise<void> => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', KEY('*'), 'COUNT', RESYNC_SCAN_COUNT);
      cursor = next;
      if (keys.length > 0) {
        const ttls = await Promise.all(keys.map((k) => redis.pttl(k)));
        keys.forEach((k, i) => {
          const ttl = ttls[i] ?? -2;
          if (ttl > 0) local.add(k.slice(KEY('').length), Date.now() + ttl);
        });
      }
    } while (cursor !== '0');
  };

  sub.on('message', (_channel: string, message: string) => {
    const [jti, exp] = message.split(' ');
    if (jti && exp) local.add(jti, Number(exp) * 1000);
  });
  // After every (re)connection, catch up on revocations published while disconnected.
  const onReady = (): void => {
    resync().catch((err: Error) => log.app('warn', 'revocation resync failed', { error: err.message }));
  };
  sub.on('ready', onReady);
  redis.on('ready', onReady);
  await sub.subscribe(CHANNEL).catch((err: Error) => log.app('warn', 'revocation subscribe failed; will retry', { error: err.message }));
  await resync().catch(() => undefined);

  return {
    isRevoked: (jti) => local.has(jti),
    async revoke(jti, expSeconds) {
      const ttlMs = expSeconds * 1000 - Date.now();
      local.add(jti, expSeconds * 1000);
      if (ttlMs <= 0) return;
      await redis.set(KEY(jti), '1', 'PX', ttlMs);
      await redis.publish(CHANNEL, `${jti} ${expSeconds}`);
    },
    onRevoked: (l) => local.listen(l),
    async close() {
      redis.off('ready', onReady);
      sub.disconnect();
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
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), { persistent: false }, (_e, name) => {
      if (name === null || String(name) === 'revocations.json') load();
    });
  } catch {
    watcher = undefined;
  }
  return {
    isRevoked: (jti) => local.has(jti),
    async revoke(jti, expSeconds) {
      load();
      local.add(jti, expSeconds * 1000);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(local.snapshot()), { mode: 0o600 });
      renameSync(tmp, file);
    },
    onRevoked: (l) => local.listen(l),
    async close() {
      watcher?.close();
    },
  };
}
