import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from '../stores/redis.js';

/**
 * Dedup claims, then the payload joins the stream, then the deliverer lease is taken when
 * free: one atomic step, so a payload is either refused as a duplicate, or claimed and
 * stored, never claimed without being stored (which would lose it on Meta's retry).
 * KEYS: queue, lease, seen… ARGV: seenTtlMs, maxQueued, sealed, token, leaseMs
 */
const ACCEPT = `
local fresh = false
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then fresh = true break end
end
if not fresh then return {'duplicate'} end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return {'full'} end
for i = 3, #KEYS do redis.call('SET', KEYS[i], '1', 'PX', ARGV[1]) end
local id = redis.call('XADD', KEYS[1], '*', 'p', ARGV[3])
redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[5])
local mine = redis.call('GET', KEYS[2]) == ARGV[4] and 1 or 0
return {'queued', id, mine}
`;

/** Takes the lease when free, or extends it when already ours. KEYS: lease. ARGV: token, leaseMs. */
const ACQUIRE = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** KEYS: lease. ARGV: token, leaseMs. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/**
 * Gives the lease back only when the queue is empty, in the same step as the check: an
 * entry added meanwhile either saw the lease held (and is left to us: we go on) or finds
 * it free (and its own process takes over). -1: not ours any more, 0: not empty, 1: released.
 * KEYS: queue, lease. ARGV: token, force (1 = release even when not empty, on shutdown).
 */
const RELEASE = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
if ARGV[2] ~= '1' and redis.call('XLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[2])
return 1
`;

/** Moves an entry to the dead-letter stream (bounded, expiring). KEYS: queue, dead. ARGV: id, sealed, reason, maxDead, deadTtlMs. */
const DEAD_LETTER = `
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'p', ARGV[2], 'reason', ARGV[3], 'from', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return redis.call('XDEL', KEYS[1], ARGV[1])
`;

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

export type AcceptResult = { kind: 'duplicate' } | { kind: 'full' } | { kind: 'queued'; id: string; leaseIsOurs: boolean };

export interface QueueEntry {
  readonly id: string;
  /** The sealed payload; undefined when the entry lacks it (written by something else). */
  readonly sealed: Buffer | undefined;
}

/** Dead letters are kept for inspection this long and at most this many (approximately). */
export const DEAD_LETTER_TTL_MS = 7 * 24 * 3_600_000;
export const DEAD_LETTER_MAX = 1_000;

/**
 * The Redis side of one webhook route: dedup claims, the delivery queue (a stream of sealed
 * payloads), the deliverer lease, dead letters. Every key shares one hash tag, so the
 * scripts also run on Redis Cluster. Every key expires or is bounded: claims and the lease
 * by TTL, the queue by `maxQueued` (refused, never trimmed: trimming would lose messages),
 * dead letters by MAXLEN and TTL.
 */
export class WebhookStore {
  readonly queueKey: string;
  private readonly leaseKey: string;
  private readonly deadKey: string;
  private readonly seenPrefix: string;

  /**
   * `durable`: a connection of its own that takes every accept and then waits for WAITAOF on it.
   * WAITAOF waits for the writes of the client that sends it, and blocks that client meanwhile:
   * on the shared connection it would hold up every other command behind it.
   */
  constructor(
    private readonly redis: Redis,
    routeName: string,
    private readonly durable?: Redis | undefined,
  ) {
    const base = `${REDIS_PREFIX}{wa:${routeName}}:`;
    this.queueKey = `${base}queue`;
    this.leaseKey = `${base}lease`;
    this.deadKey = `${base}dead`;
    this.seenPrefix = `${base}seen:`;
  }

  /** Dedup keys are hashed: fixed length, whatever a payload's ids look like. */
  seenKey(eventKey: string): string {
    return this.seenPrefix + createHash('sha256').update(eventKey).digest('base64url');
  }

  async accept(eventKeys: readonly string[], sealed: Buffer, o: { seenTtlMs: number; maxQueued: number; token: string; leaseMs: number }): Promise<AcceptResult> {
    const keys = [this.queueKey, this.leaseKey, ...eventKeys.map((k) => this.seenKey(k))];
    const r = (await this.script(ACCEPT, keys, [o.seenTtlMs, o.maxQueued, sealed, o.token, o.leaseMs], this.durable)) as [string, string?, number?];
    if (r[0] === 'duplicate') return { kind: 'duplicate' };
    if (r[0] === 'full') return { kind: 'full' };
    return { kind: 'queued', id: String(r[1]), leaseIsOurs: r[2] === 1 };
  }

  async acquire(token: string, leaseMs: number): Promise<boolean> {
    return (await this.script(ACQUIRE, [this.leaseKey], [token, leaseMs])) === 1;
  }

  async renew(token: string, leaseMs: number): Promise<boolean> {
    return (await this.script(RENEW, [this.leaseKey], [token, leaseMs])) === 1;
  }

  async release(token: string, force = false): Promise<-1 | 0 | 1> {
    return (await this.script(RELEASE, [this.queueKey, this.leaseKey], [token, force ? '1' : '0'])) as -1 | 0 | 1;
  }

  /** The oldest entry: delivery is strictly in stream order. */
  async head(): Promise<QueueEntry | undefined> {
    const rows = await this.redis.xrangeBuffer(this.queueKey, '-', '+', 'COUNT', 1);
    const row = rows[0];
    if (!row) return undefined;
    const [id, fields] = row;
    let sealed: Buffer | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]?.toString() === 'p') sealed = fields[i + 1];
    return { id: id.toString(), sealed };
  }

  async remove(id: string): Promise<void> {
    await this.redis.xdel(this.queueKey, id);
  }

  async deadLetter(entry: QueueEntry, reason: string): Promise<void> {
    await this.script(DEAD_LETTER, [this.queueKey, this.deadKey], [entry.id, entry.sealed ?? Buffer.alloc(0), reason, DEAD_LETTER_MAX, DEAD_LETTER_TTL_MS]);
  }

  async depth(): Promise<number> {
    return this.redis.xlen(this.queueKey);
  }

  /** Age of the oldest queued entry in ms (stream ids start with their ms timestamp), 0 when empty. */
  async oldestAgeMs(now = Date.now()): Promise<number> {
    const rows = await this.redis.xrange(this.queueKey, '-', '+', 'COUNT', 1);
    const id = rows[0]?.[0];
    return id ? Math.max(0, now - Number(id.split('-')[0])) : 0;
  }

  /**
   * Resolves once Redis has fsynced the accepts made so far to its own append-only file
   * (WAITAOF 1 0, Redis 7.2+); throws when it has not within `timeoutMs` (AOF off, a failing
   * disk). Only with the `durable` connection: WAITAOF answers for its own client's writes.
   */
  async confirmDurable(timeoutMs: number): Promise<void> {
    if (!this.durable) throw new Error('no durable connection: whatsapp.waitAof is off');
    const [local] = (await this.durable.call('WAITAOF', 1, 0, timeoutMs)) as [number, number];
    if (Number(local) < 1) throw new Error(`WAITAOF: not fsynced to the local append-only file within ${timeoutMs} ms`);
  }

  /** EVALSHA, loading the script on the first NOSCRIPT (after a Redis restart too). */
  private async script(source: string, keys: string[], args: (string | number | Buffer)[], client: Redis = this.redis): Promise<unknown> {
    try {
      return await client.evalsha(sha1(source), keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(source, keys.length, ...keys, ...args);
    }
  }
}
