import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from '../../stores/redis.js';
import { writeFileAtomic } from '../../stores/private-file.js';
import { isFactor, type SignedIn, type StaffSession } from './types.js';

/** Longest User-Agent kept: enough for any browser's, not a place to store a payload. */
const MAX_USER_AGENT = 256;
/** Most sessions a listing returns (newest first): a page and a CLI table, not a dump. */
export const MAX_LISTED = 1_000;

/** What a new session starts from. */
export interface NewSession extends SignedIn {
  ip: string;
  userAgent: string;
  /** When the first factor was given (ms); now by default. */
  authTime?: number;
}

/**
 * The server-side registry of staff sessions (issue 14, item 4): what "your sessions", the
 * security overview and `crm-gateway sessions` list, and what a revocation removes. It is not on
 * the request path: requests check a session's end in memory (the revocation list, `sid:<id>`,
 * see ./end.ts); the registry is read at sign-in, at each renewal (every auth.sessionTtl) and by
 * the pages. Each host's refresh family of a session is recorded, so ending it revokes them all.
 */
export interface SessionRegistry {
  create(input: NewSession): Promise<StaffSession>;
  get(id: string): Promise<StaffSession | undefined>;
  /** Records a use (last seen); the caller throttles (./seen.ts). A session gone stays gone. */
  touch(id: string, at: number): Promise<void>;
  /** Newest first; one user's when `subject` is given. */
  list(filter?: { subject?: string | undefined }): Promise<StaffSession[]>;
  /** A host's refresh family joined the session (a sign-in or an SSO hand-off). */
  addFamily(id: string, family: string): Promise<void>;
  families(id: string): Promise<string[]>;
  /** Removes the session and returns it (undefined when it was not there). */
  remove(id: string): Promise<StaffSession | undefined>;
}

/**
 * 128 random bits in hex: never starts with `-`, so `sessions revoke <id>` cannot read one as
 * an option (base64url ids did, one in 64), and it is copied whole by a double click.
 */
export const SESSION_ID = /^[0-9a-f]{32}$/;
const newId = (): string => randomBytes(16).toString('hex');

function build(input: NewSession, now: number): StaffSession {
  return {
    id: newId(),
    subject: input.subject,
    roles: [...input.roles],
    factors: input.factors.filter(isFactor),
    method: input.method,
    createdAt: now,
    lastSeenAt: now,
    ip: input.ip,
    userAgent: input.userAgent.slice(0, MAX_USER_AGENT),
    authTime: input.authTime ?? now,
  };
}

function parse(raw: string | null | undefined): StaffSession | undefined {
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as StaffSession;
    return typeof s.id === 'string' && typeof s.subject === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

const K = {
  session: (id: string): string => `${REDIS_PREFIX}sess:${id}`,
  seen: (id: string): string => `${REDIS_PREFIX}sessseen:${id}`,
  families: (id: string): string => `${REDIS_PREFIX}sessfam:${id}`,
  all: `${REDIS_PREFIX}sessidx`,
  user: (sub: string): string => `${REDIS_PREFIX}sessusr:${sub}`,
};

/**
 * Only while the session exists, for what it has left to live: a touch or a family racing a
 * removal never brings a session (or a key without expiry) back.
 * KEYS: session, target; ARGV: kind ('set' | 'sadd'), value.
 */
const ALONGSIDE_SCRIPT = `
local t = redis.call('PTTL', KEYS[1])
if t <= 0 then return 0 end
if ARGV[1] == 'set' then redis.call('SET', KEYS[2], ARGV[2], 'PX', t)
else redis.call('SADD', KEYS[2], ARGV[2]); redis.call('PEXPIRE', KEYS[2], t) end
return 1`;
const ALONGSIDE_COMMAND = 'crmgwSessionAlongside';
type AlongsideRedis = Redis & { [ALONGSIDE_COMMAND]?: (session: string, target: string, kind: string, value: string) => Promise<number> };

/**
 * Redis: `sess:<id>` the session (JSON, expiring with the session), `sessseen:<id>` its last
 * use, `sessfam:<id>` its hosts' refresh families, and two sorted sets by start time (all, per
 * user) pruned of ids whose session has expired whenever they are listed.
 */
export function createRedisSessionRegistry(redis: Redis, ttlMs: number, now: () => number = Date.now): SessionRegistry {
  const r = redis as AlongsideRedis;
  if (!r[ALONGSIDE_COMMAND]) redis.defineCommand(ALONGSIDE_COMMAND, { numberOfKeys: 2, lua: ALONGSIDE_SCRIPT });
  const alongside = (id: string, target: string, kind: 'set' | 'sadd', value: string): Promise<number> => {
    const command = r[ALONGSIDE_COMMAND];
    if (!command) throw new Error('ioredis did not define the session command');
    return command.call(redis, K.session(id), target, kind, value);
  };
  const withSeen = async (sessions: StaffSession[]): Promise<StaffSession[]> => {
    if (sessions.length === 0) return sessions;
    const seen = await redis.mget(sessions.map((s) => K.seen(s.id)));
    return sessions.map((s, i) => ({ ...s, lastSeenAt: Math.max(s.lastSeenAt, Number(seen[i] ?? 0) || 0) }));
  };
  return {
    async create(input) {
      const s = build(input, now());
      const ttl = Math.max(1, Math.ceil(ttlMs));
      const replies = await redis
        .multi()
        .set(K.session(s.id), JSON.stringify(s), 'PX', ttl)
        .zadd(K.all, s.createdAt, s.id)
        // Pruned here too, so an index nobody lists stays the size of the live sessions.
        .zremrangebyscore(K.all, '-inf', s.createdAt - ttlMs)
        .zadd(K.user(s.subject), s.createdAt, s.id)
        .pexpire(K.user(s.subject), ttl)
        .exec();
      for (const [err] of replies ?? []) if (err) throw err;
      return s;
    },
    async get(id) {
      if (!SESSION_ID.test(id)) return undefined;
      const s = parse(await redis.get(K.session(id)));
      return s ? (await withSeen([s]))[0] : undefined;
    },
    async touch(id, at) {
      if (SESSION_ID.test(id)) await alongside(id, K.seen(id), 'set', String(at));
    },
    async list(filter = {}) {
      const index = filter.subject !== undefined ? K.user(filter.subject) : K.all;
      // Older than any live session: expired, drop from the index.
      await redis.zremrangebyscore(index, '-inf', now() - ttlMs);
      const ids = await redis.zrevrange(index, 0, MAX_LISTED - 1);
      if (ids.length === 0) return [];
      const raws = await redis.mget(ids.map(K.session));
      const gone = ids.filter((_, i) => !raws[i]);
      if (gone.length > 0) await redis.zrem(index, ...gone);
      return withSeen(raws.map(parse).filter((s): s is StaffSession => s !== undefined));
    },
    async addFamily(id, family) {
      if (SESSION_ID.test(id)) await alongside(id, K.families(id), 'sadd', family);
    },
    async families(id) {
      return SESSION_ID.test(id) ? redis.smembers(K.families(id)) : [];
    },
    async remove(id) {
      if (!SESSION_ID.test(id)) return undefined;
      const s = parse(await redis.get(K.session(id)));
      await redis
        .multi()
        .del(K.session(id), K.seen(id), K.families(id))
        .zrem(K.all, id)
        .zrem(K.user(s?.subject ?? ''), id)
        .exec();
      return s;
    },
  };
}

interface FileData {
  sessions: Record<string, StaffSession & { families: string[]; until: number }>;
}

/**
 * Embedded stores (no Redis): one JSON file of mode 0600 in the data folder, read and written
 * whole at each change (a handful of staff sessions), so `crm-gateway sessions` run beside the
 * gateway sees what the gateway wrote. One instance only, as every embedded store.
 */
export function createFileSessionRegistry(dataDir: string, ttlMs: number, now: () => number = Date.now): SessionRegistry {
  const file = join(dataDir, 'sessions.json');
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const load = (): FileData => {
    let data: FileData;
    try {
      data = JSON.parse(readFileSync(file, 'utf8')) as FileData;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      data = { sessions: {} };
    }
    const t = now();
    for (const [id, s] of Object.entries(data.sessions ?? {})) if (!(s.until > t)) delete data.sessions[id];
    return { sessions: data.sessions ?? {} };
  };
  const save = (data: FileData): void => writeFileAtomic(file, JSON.stringify(data));
  const plain = ({ families: _f, until: _u, ...s }: FileData['sessions'][string]): StaffSession => s;
  return {
    async create(input) {
      const s = build(input, now());
      const data = load();
      data.sessions[s.id] = { ...s, families: [], until: s.createdAt + ttlMs };
      save(data);
      return s;
    },
    async get(id) {
      const data = load();
      const s = Object.hasOwn(data.sessions, id) ? data.sessions[id] : undefined;
      return s ? plain(s) : undefined;
    },
    async touch(id, at) {
      const data = load();
      const s = Object.hasOwn(data.sessions, id) ? data.sessions[id] : undefined;
      if (!s) return;
      s.lastSeenAt = Math.max(s.lastSeenAt, at);
      save(data);
    },
    async list(filter = {}) {
      return Object.values(load().sessions)
        .filter((s) => filter.subject === undefined || s.subject === filter.subject)
        .sort((a, b) => b.createdAt - a.createdAt)
        .slice(0, MAX_LISTED)
        .map(plain);
    },
    async addFamily(id, family) {
      const data = load();
      const s = Object.hasOwn(data.sessions, id) ? data.sessions[id] : undefined;
      if (!s) return;
      if (!s.families.includes(family)) s.families.push(family);
      save(data);
    },
    async families(id) {
      const data = load();
      return Object.hasOwn(data.sessions, id) ? (data.sessions[id]?.families ?? []) : [];
    },
    async remove(id) {
      const data = load();
      const s = Object.hasOwn(data.sessions, id) ? data.sessions[id] : undefined;
      if (!s) return undefined;
      delete data.sessions[id];
      save(data);
      return plain(s);
    },
  };
}
