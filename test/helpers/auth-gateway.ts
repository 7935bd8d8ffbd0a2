import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { Redis } from 'ioredis';
import type { GatewayConfig } from '../../src/config/schema.js';
import { createMemoryLogger, type MemoryLogger } from '../../src/log/logger.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { hashPassword } from '../../src/auth/password.js';
import { createRedis } from '../../src/stores/redis.js';
import { createPostgres } from '../../src/stores/postgres.js';
import { kidOf } from '../../src/auth/keyring.js';
import { httpsRequest, testCertificate, testConfig, type RequestOptions, type TestResponse } from './harness.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';
export const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** 32 random bytes as hex, the shape of API_SECRET_KEY. */
export function randomSecret(): string {
  return randomBytes(32).toString('hex');
}

/** A short random suffix for names and keys shared with other test runs in the same Redis. */
export function uniq(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export interface AuthGatewayOptions {
  /** Routes section; `UPSTREAM` is replaced by the echo upstream's URL. */
  routes: string;
  env?: Record<string, string>;
  extraYaml?: string;
  /** Share Redis (revocations, refresh tokens, lockouts) at REDIS_URL. */
  redis?: boolean;
  /** PostgreSQL for users and clients. */
  databaseUrl?: string;
  /** Share a data directory (embedded users file, revocations file) with another instance. */
  dataDir?: string;
  /** API_SECRET_KEY; random when absent. */
  secret?: string;
  /** Share one upstream between instances. */
  upstream?: EchoUpstream;
}

export interface AuthTestGateway {
  readonly running: RunningGateway;
  readonly config: GatewayConfig;
  readonly upstream: EchoUpstream;
  readonly log: MemoryLogger;
  readonly auth: AuthService;
  readonly redis: Redis | undefined;
  readonly postgres: pg.Pool | undefined;
  readonly dataDir: string;
  readonly secret: string;
  readonly port: number;
  readonly ca: string;
  request(opts: RequestOptions): Promise<TestResponse>;
  close(): Promise<void>;
}

async function redisReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Redis did not become ready')), 5_000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * A gateway with the auth service built the way `src/main.ts` builds it: config with
 * API_SECRET_KEY and DATA_DIR (plus REDIS_URL / DATABASE_URL when asked), stores, then
 * `createAuthService`, on port 0 with real TLS in front of a real echo upstream.
 */
export async function startAuthGateway(opts: AuthGatewayOptions): Promise<AuthTestGateway> {
  const cert = await testCertificate();
  const ownUpstream = opts.upstream === undefined;
  const upstream = opts.upstream ?? (await startEchoUpstream('test-upstream'));
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'crm-gw-auth-'));
  const secret = opts.secret ?? randomSecret();
  const config = testConfig(
    opts.routes,
    upstream.url,
    cert,
    {
      API_SECRET_KEY: secret,
      DATA_DIR: dataDir,
      ...(opts.redis ? { REDIS_URL } : {}),
      ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
      ...opts.env,
    },
    opts.extraYaml ?? '',
  );
  const log = createMemoryLogger();
  const redis = await createRedis(config, log);
  if (redis) await redisReady(redis);
  const postgres = await createPostgres(config, log);
  const auth = await createAuthService(config, { log, redis, postgres });
  assert.ok(auth, 'the auth service is built when API_SECRET_KEY is set');
  const running = await startGateway(config, { log, redis, postgres, auth });
  const port = running.ports.https;
  const ca = readFileSync(cert.cert, 'utf8');
  return {
    running,
    config,
    upstream,
    log,
    auth,
    redis,
    postgres,
    dataDir,
    secret,
    port,
    ca,
    request: (r) => httpsRequest(port, ca, r),
    close: async () => {
      await running.shutdown();
      await auth.close();
      await Promise.allSettled([redis?.quit(), postgres?.end()]);
      if (ownUpstream) await upstream.close();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}


/** Adds a login user with a real scrypt hash. */
export async function addUser(auth: AuthService, name: string, password: string, roles: string[], disabled = false): Promise<void> {
  await auth.store.addUser({ name, passwordHash: await hashPassword(password), roles, disabled, createdAt: new Date() });
}

/** Adds an API client (its secret is irrelevant to bearer tokens). */
export async function addClient(auth: AuthService, name: string, roles: string[]): Promise<void> {
  await auth.store.addClient({ name, secretHash: 'x'.repeat(64), roles, disabled: false, createdAt: new Date() });
}

export function b64url(data: string | Buffer | object): string {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(typeof data === 'string' ? data : JSON.stringify(data), 'utf8');
  return buf.toString('base64url');
}

/** A JWT assembled by hand: any header, any claims, HS256 over `key` (or no signature). */
export function handToken(header: Record<string, unknown>, claims: Record<string, unknown>, key: string | Buffer | undefined): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  const sig = key === undefined ? '' : createHmac('sha256', key).update(input).digest('base64url');
  return `${input}.${sig}`;
}

/** Valid claims for `sub` as the gateway issues them, with overrides (undefined removes a claim). */
export function claimsFor(sub: string, overrides: Record<string, unknown> = {}, opts: { issuer?: string; audience?: string } = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const base: Record<string, unknown> = {
    sub,
    iss: opts.issuer ?? 'crm-gateway',
    aud: opts.audience ?? 'crm',
    iat: now,
    exp: now + 600,
    jti: randomBytes(16).toString('base64url'),
    roles: ['api'],
    typ: 'access',
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

/** Signs claims with a ring secret exactly as the gateway does (HS256, kid of the secret). */
export function ringToken(secret: string, claims: Record<string, unknown>, extraHeader: Record<string, unknown> = {}): string {
  return handToken({ alg: 'HS256', typ: 'JWT', kid: kidOf(secret), ...extraHeader }, claims, Buffer.from(secret, 'utf8'));
}

/** Polls until `check` is true or the time is up. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Asserts a refusal: status, error code (JSON), and that the upstream received nothing more. */
export async function expectRefused(
  gw: { upstream: EchoUpstream; request(o: RequestOptions): Promise<TestResponse> },
  req: RequestOptions,
  status: number,
  code: string,
): Promise<TestResponse> {
  const before = gw.upstream.seen.length;
  const res = await gw.request(req);
  assert.equal(res.status, status, `status for ${req.method ?? 'GET'} ${req.path}: ${res.body.slice(0, 200)}`);
  if (code) assert.equal(res.json<{ error: { code: string } }>().error.code, code, `code for ${req.path}`);
  assert.equal(gw.upstream.seen.length, before, 'nothing reached the upstream');
  return res;
}

/** A throw-away PostgreSQL database for one test file. */
export async function createTestDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`.replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A cookie jar of name → value, fed by Set-Cookie headers (Max-Age=0 deletes). */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  take(res: TestResponse): string[] {
    const set = res.headers['set-cookie'] ?? [];
    for (const line of set) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (gone) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return set;
  }

  get(name: string): string | undefined {
    return this.cookies.get(name);
  }

  header(): string {
    return [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
  }
}
