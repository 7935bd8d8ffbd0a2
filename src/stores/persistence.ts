import type { Redis, RedisOptions } from 'ioredis';
import { probeOptions } from './redis.js';

/** What a Redis server says of how it keeps writes across a crash. */
export interface RedisPersistence {
  /** `redis_version` of INFO server; undefined when INFO is not allowed. */
  readonly version: string | undefined;
  readonly appendonly?: string | undefined;
  readonly appendfsync?: string | undefined;
  /** RDB snapshot schedule; '' when snapshots are off. */
  readonly save?: string | undefined;
  /** Why the settings could not be read (CONFIG renamed, disabled or not permitted). */
  readonly unreadable?: string | undefined;
}

export type PersistenceStatus = 'PASS' | 'WARN' | 'FAIL' | 'UNKNOWN';

export interface PersistenceVerdict {
  readonly status: PersistenceStatus;
  readonly message: string;
  readonly fix?: string | undefined;
}

/** WAITAOF (wait for the local AOF fsync of this client's writes) exists from Redis 7.2. */
export const WAITAOF_MIN_VERSION = [7, 2] as const;

const FIX_AOF = 'run Redis with --appendonly yes --appendfsync everysec (docker-compose.yml does), or CONFIG SET appendonly yes then CONFIG REWRITE';

/** Reads INFO server and CONFIG GET appendonly/appendfsync/save; never throws for a refused command. */
export async function readRedisPersistence(redis: Redis): Promise<RedisPersistence> {
  let version: string | undefined;
  try {
    version = /^redis_version:(\S+)/m.exec(await redis.info('server'))?.[1];
  } catch {
    version = undefined;
  }
  try {
    // Two calls: CONFIG GET takes several patterns only from Redis 7.
    const pairs = [...((await redis.call('CONFIG', 'GET', 'append*')) as string[]), ...((await redis.call('CONFIG', 'GET', 'save')) as string[])];
    const config = new Map<string, string>();
    for (let i = 0; i + 1 < pairs.length; i += 2) config.set(String(pairs[i]), String(pairs[i + 1]));
    if (!config.has('appendonly')) return { version, unreadable: 'CONFIG GET appendonly returned nothing' };
    return { version, appendonly: config.get('appendonly'), appendfsync: config.get('appendfsync'), save: config.get('save') ?? '' };
  } catch (err) {
    return { version, unreadable: (err as Error).message };
  }
}

/** True when `version` (x.y.z) is at least 7.2, where WAITAOF exists. */
export function supportsWaitAof(version: string | undefined): boolean {
  const [major = 0, minor = 0] = (version ?? '').split('.').map(Number);
  return major > WAITAOF_MIN_VERSION[0] || (major === WAITAOF_MIN_VERSION[0] && minor >= WAITAOF_MIN_VERSION[1]);
}

/**
 * Whether a write Redis has acknowledged survives a crash. `serious` is how bad no
 * append-only file is here (FAIL where acknowledged webhooks depend on it in production).
 */
export function judgePersistence(p: RedisPersistence, serious: 'FAIL' | 'WARN'): PersistenceVerdict {
  if (p.unreadable !== undefined) {
    return {
      status: 'UNKNOWN',
      message: `cannot read Redis's persistence settings (${p.unreadable}): CONFIG is renamed, disabled or not permitted to this user`,
      fix: 'check on the Redis host that appendonly is yes (redis-cli CONFIG GET appendonly), or allow CONFIG GET to the gateway user',
    };
  }
  const snapshots = p.save ? `RDB snapshots only (save "${p.save}"): a crash loses every write since the last snapshot` : 'no persistence at all (no AOF, no snapshots): a restart loses everything';
  if (p.appendonly !== 'yes') return { status: serious, message: `appendonly ${p.appendonly ?? '?'}: ${snapshots}, acknowledged webhook payloads included`, fix: FIX_AOF };
  switch (p.appendfsync) {
    case 'always':
      return { status: 'PASS', message: 'appendonly yes, appendfsync always: every acknowledged write is on disk' };
    case 'everysec':
      return { status: 'PASS', message: 'appendonly yes, appendfsync everysec: a crash of the Redis host may lose up to about 1 s of acknowledged writes (docs/webhook.md, "Webhook durability")' };
    default:
      return { status: 'WARN', message: `appendonly yes, appendfsync ${p.appendfsync ?? '?'}: the OS decides when to flush (often 30 s), so a host crash may lose that much`, fix: 'CONFIG SET appendfsync everysec (or --appendfsync everysec)' };
  }
}

/**
 * One bounded connection to `url` (no retries, no reconnects) that reads the persistence
 * settings, or says why it could not connect. `extra`: Sentinel options (src/stores/sentinel.ts).
 */
export async function probeRedisPersistence(url: string, password: string | undefined, timeoutMs: number, extra: RedisOptions = {}): Promise<RedisPersistence | { unreachable: string }> {
  const { Redis: Client } = await import('ioredis');
  const client = new Client(url, { ...probeOptions(timeoutMs, password), ...extra });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    return { unreachable: lastError?.message ?? (err as Error).message };
  }
  try {
    return await readRedisPersistence(client);
  } finally {
    client.disconnect();
  }
}
