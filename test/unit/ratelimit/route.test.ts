import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { routeSchema, type RouteConfig } from '../../../src/config/schema.js';
import type { Principal, RequestContext } from '../../../src/context.js';
import { GatewayError } from '../../../src/errors.js';
import { Reply } from '../../../src/reply.js';
import { createMemoryLogger, type Logger } from '../../../src/log/logger.js';
import { normalizeIp } from '../../../src/net/ip.js';
import { chargeStopped, createRouteLimit, RATE_LIMIT_KEY_PREFIX } from '../../../src/ratelimit/index.js';
import type { Step } from '../../../src/step.js';
import { FULL_BUCKET_MEMORY_MS } from '../../../src/ratelimit/limiter.js';
import { deleteKeys, gatewayRedis, listKeys, RedisServerProcess, runId, SHARED_REDIS_URL, waitFor } from '../../helpers/redis.js';
import { Registry } from 'prom-client';
import { createRateLimitMetrics } from '../../../src/ratelimit/metrics.js';

let seq = 0;
function ctx(ip: string): RequestContext {
  const client = normalizeIp(ip);
  assert.ok(client);
  return { id: `req-${++seq}`, address: { client, peer: client, peerTrusted: false }, reply: new Reply('r', false, { hsts: undefined }) } as unknown as RequestContext;
}

function routeOf(name: string, rateLimit: Record<string, unknown>): RouteConfig {
  return routeSchema.parse({ name, host: 'api.test.local', upstream: 'http://127.0.0.1:1', auth: 'jwt', rateLimit: { window: '1m', max: 3, by: 'user', ...rateLimit } });
}

/**
 * A route's steps as the pipeline builds them (src/app.ts): rate-limit, authenticate and authorize
 * made to charge the address of a request they stop, user-rate-limit. Authentication here names
 * the principal a request carries (`who`), or refuses it; `authenticated` counts how often it ran.
 */
function pipeline(route: RouteConfig, redis?: Redis, log: Logger = createMemoryLogger()): { run(c: RequestContext, who?: Principal | 'redirect'): Promise<string>; authenticated: number } {
  const limit = createRouteLimit(route, { log, redis, metrics: { rateLimit: createRateLimitMetrics(new Registry()) } });
  assert.ok(limit);
  const principals = new WeakMap<RequestContext, Principal | 'redirect'>();
  const state = { authenticated: 0 };
  const authenticate: Step = async (c) => {
    state.authenticated++;
    const who = principals.get(c);
    if (who === 'redirect') return { answer: 302 };
    if (!who) throw new GatewayError('AUTH_REQUIRED', 'no credentials');
    c.principal = who;
    return undefined;
  };
  const authorize: Step = (c) => {
    if (!c.principal?.roles.includes('api')) throw new GatewayError('ROLE_FORBIDDEN', 'no api role');
  };
  const steps = [limit.beforeAuth, chargeStopped(limit, authenticate), chargeStopped(limit, authorize), limit.afterAuth].filter((s): s is Step => s !== undefined);
  return {
    get authenticated() {
      return state.authenticated;
    },
    async run(c, who) {
      if (who) principals.set(c, who);
      try {
        for (const step of steps) {
          const result = await step(c);
          if (result) return String(result.answer);
        }
        return 'ok';
      } catch (err) {
        if (err instanceof GatewayError) return err.code;
        throw err;
      }
    },
  };
}

const user = (subject: string, roles = ['api'], method: Principal['method'] = 'jwt'): Principal => ({ subject, roles, method });

async function byUserBehaviour(redis?: Redis): Promise<void> {
  const name = runId('u');
  const p = pipeline(routeOf(name, {}), redis);
  try {
    // Many users behind one address each have their own budget: the address is not the limit.
    for (const who of ['ana', 'bob', 'eve']) {
      for (let i = 0; i < 3; i++) assert.equal(await p.run(ctx('203.0.113.5'), user(who)), 'ok', `${who} #${i + 1}`);
      assert.equal(await p.run(ctx('203.0.113.5'), user(who)), 'RATE_LIMITED', `${who} over`);
    }
    // The user's budget follows them to another address.
    assert.equal(await p.run(ctx('198.51.100.1'), user('ana')), 'RATE_LIMITED');
    const c = ctx('198.51.100.2');
    assert.equal(await p.run(c, user('zoe')), 'ok');
    assert.match(String(c.reply.headers.ratelimit), /^limit=3, remaining=2, reset=\d+$/);
    assert.equal(c.reply.headers['ratelimit-policy'], '3;w=60');

    // Requests that never authenticate spend the address's budget (refused by authentication,
    // by authorization, or sent to the login page), and past it even a valid user from that
    // address is refused before authentication runs.
    assert.equal(await p.run(ctx('192.0.2.9')), 'AUTH_REQUIRED');
    assert.equal(await p.run(ctx('192.0.2.9'), user('mallory', ['staff'])), 'ROLE_FORBIDDEN');
    const last = ctx('192.0.2.9');
    assert.equal(await p.run(last, 'redirect'), '302');
    assert.match(String(last.reply.headers.ratelimit), /^limit=3, remaining=0, reset=\d+$/, 'a stopped request carries its address usage');
    const before = p.authenticated;
    assert.equal(await p.run(ctx('192.0.2.9')), 'RATE_LIMITED');
    assert.equal(await p.run(ctx('192.0.2.9'), user('new-user')), 'RATE_LIMITED');
    assert.equal(p.authenticated, before, 'refused before authentication ran');

    if (redis) {
      const keys = await listKeys(redis, `${RATE_LIMIT_KEY_PREFIX}r:${name}:*`);
      assert.equal(keys.length, 5, `four users and one address: ${keys.join(' ')}`);
      for (const key of keys) assert.ok((await redis.pttl(key)) > 0, `${key} has a TTL`);
      // Authenticated requests never touched their address bucket, not even provisionally.
      assert.equal(await redis.exists(`${RATE_LIMIT_KEY_PREFIX}r:${name}:ip:203.0.113.5`), 0);
      assert.equal(await redis.get(`${RATE_LIMIT_KEY_PREFIX}r:${name}:ip:192.0.2.9`), '3');
    }
  } finally {
    if (redis) await deleteKeys(SHARED_REDIS_URL, `${RATE_LIMIT_KEY_PREFIX}r:${name}:*`);
  }
}

test('by: user with the embedded memory store', () => byUserBehaviour());

test('by: user on the shared Redis', async (t) => {
  const redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
  t.after(() => redis.disconnect());
  await byUserBehaviour(redis);
});

test('the webhook principal (not verified yet) is charged to its address, never as a user', async () => {
  const p = pipeline(routeOf(runId('w'), { max: 2 }));
  const meta = (): Principal => user('whatsapp-webhook', ['api'], 'whatsapp');
  assert.equal(await p.run(ctx('203.0.113.7'), meta()), 'ok');
  assert.equal(await p.run(ctx('203.0.113.7'), meta()), 'ok');
  assert.equal(await p.run(ctx('203.0.113.7'), meta()), 'RATE_LIMITED');
  assert.equal(await p.run(ctx('198.51.100.7'), meta()), 'ok', 'another address: its own budget');
});

test('two gateways built from one route config share nothing (the limit belongs to what built the steps)', async () => {
  const route = routeOf(runId('g'), { max: 1, by: 'ip' });
  const first = pipeline(route);
  const second = pipeline(route);
  assert.equal(await first.run(ctx('192.0.2.1'), user('a')), 'ok');
  assert.equal(await first.run(ctx('192.0.2.1'), user('a')), 'RATE_LIMITED');
  assert.equal(await second.run(ctx('192.0.2.1'), user('a')), 'ok', 'a fresh gateway has a fresh embedded store');
});

/** Commands Redis received from clients (MONITOR; commands run inside scripts not counted). */
async function monitorCommands(url: string): Promise<{ names: string[]; stop(): Promise<string[]> }> {
  const names: string[] = [];
  const admin = new Redis(url);
  const monitor = await admin.monitor();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') names.push(String(args[0]).toLowerCase());
  });
  await new Promise((r) => setTimeout(r, 50));
  return {
    names,
    async stop() {
      await new Promise((r) => setTimeout(r, 50));
      monitor.disconnect();
      admin.disconnect();
      return names;
    },
  };
}

test('one round trip per request on Redis, whatever happens to it; none for a bucket known full', async (t) => {
  const server = await RedisServerProcess.start();
  t.after(() => server.stop());
  const redis = await gatewayRedis(server.url, createMemoryLogger());
  t.after(() => redis.disconnect());
  const byUser = pipeline(routeOf('u', { max: 1000 }), redis);
  const byIp = pipeline(routeOf('i', { max: 1000, by: 'ip' }), redis);
  // The first call of each script may load it (EVALSHA → NOSCRIPT → EVAL, or SCRIPT LOAD).
  await byUser.run(ctx('192.0.2.200'), user('warm'));
  await byUser.run(ctx('192.0.2.200'));
  await byIp.run(ctx('192.0.2.200'), user('warm'));

  const cases: [string, () => Promise<string>][] = [
    ['by: user, authenticated', () => byUser.run(ctx('192.0.2.1'), user('ana'))],
    ['by: user, refused by authentication', () => byUser.run(ctx('192.0.2.2'))],
    ['by: user, refused by authorization', () => byUser.run(ctx('192.0.2.3'), user('bob', ['staff']))],
    ['by: user, sent to the login page', () => byUser.run(ctx('192.0.2.4'), 'redirect')],
    ['by: ip', () => byIp.run(ctx('192.0.2.5'), user('carol'))],
  ];
  for (const [what, request] of cases) {
    const seen = await monitorCommands(server.url);
    for (let i = 0; i < 20; i++) await request();
    const commands = await seen.stop();
    assert.deepEqual(commands, Array(20).fill('evalsha'), `${what}: ${commands.join(' ')}`);
  }

  // A bucket this process saw full is refused from memory: no round trip at all.
  const small = pipeline(routeOf('s', { max: 2 }), redis);
  for (let i = 0; i < 2; i++) assert.equal(await small.run(ctx('192.0.2.9')), 'AUTH_REQUIRED');
  const seen = await monitorCommands(server.url);
  for (let i = 0; i < 20; i++) assert.equal(await small.run(ctx('192.0.2.9'), user('dora')), 'RATE_LIMITED');
  assert.deepEqual(await seen.stop(), []);
});

test('an address filled on another instance: refused after authentication there (one script), then before it', async (t) => {
  const redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
  const name = runId('x');
  t.after(async () => {
    await deleteKeys(SHARED_REDIS_URL, `${RATE_LIMIT_KEY_PREFIX}r:${name}:*`);
    redis.disconnect();
  });
  const route = routeOf(name, { max: 2 });
  const a = pipeline(route, redis);
  const b = pipeline(route, redis);
  for (let i = 0; i < 2; i++) assert.equal(await a.run(ctx('203.0.113.9')), 'AUTH_REQUIRED');
  // Instance b has not seen that bucket full: authentication runs, the address read refuses.
  assert.equal(await b.run(ctx('203.0.113.9'), user('ana')), 'RATE_LIMITED');
  assert.equal(b.authenticated, 1);
  assert.equal(await b.run(ctx('203.0.113.9'), user('ana')), 'RATE_LIMITED');
  assert.equal(await b.run(ctx('203.0.113.9')), 'RATE_LIMITED');
  assert.equal(b.authenticated, 1, 'then refused before authentication');
  assert.deepEqual(await listKeys(redis, `${RATE_LIMIT_KEY_PREFIX}r:${name}:user:*`), [], 'the refused user was charged nothing');
  assert.equal(await redis.get(`${RATE_LIMIT_KEY_PREFIX}r:${name}:ip:203.0.113.9`), '2', 'refused requests charged nothing more');
  // And a refused, unauthenticated request on a third instance is answered 429, not 401.
  const c = pipeline(route, redis);
  assert.equal(await c.run(ctx('203.0.113.9')), 'RATE_LIMITED');
});

test('the memory of a full bucket is only a few seconds old at most: a bucket emptied in Redis is believed after it', { timeout: 20_000 }, async (t) => {
  const redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
  const name = runId('m');
  t.after(async () => {
    await deleteKeys(SHARED_REDIS_URL, `${RATE_LIMIT_KEY_PREFIX}r:${name}:*`);
    redis.disconnect();
  });
  const p = pipeline(routeOf(name, { max: 1, by: 'ip' }), redis);
  assert.equal(await p.run(ctx('192.0.2.77'), user('a')), 'ok');
  assert.equal(await p.run(ctx('192.0.2.77'), user('a')), 'RATE_LIMITED');
  // An operator (or a Redis restart) empties the bucket: refused from memory a little longer.
  await redis.del(`${RATE_LIMIT_KEY_PREFIX}r:${name}:ip:192.0.2.77`);
  assert.equal(await p.run(ctx('192.0.2.77'), user('a')), 'RATE_LIMITED');
  await new Promise((r) => setTimeout(r, FULL_BUCKET_MEMORY_MS + 100));
  assert.equal(await p.run(ctx('192.0.2.77'), user('a')), 'ok');
});

test('Redis down: by: user fail closed refuses before authentication; fail open lets requests pass unchecked', async (t) => {
  const server = await RedisServerProcess.start();
  t.after(() => server.stop());
  const log = createMemoryLogger();
  const redis = await gatewayRedis(server.url, log);
  t.after(() => redis.disconnect());
  const closed = pipeline(routeOf('closed', { failMode: 'closed' }), redis, log);
  const open = pipeline(routeOf('open', { failMode: 'open' }), redis, log);
  assert.equal(await closed.run(ctx('192.0.2.1'), user('ana')), 'ok');
  await server.stop();
  await waitFor(() => redis.status !== 'ready', 10_000, 'the client sees Redis gone');

  const before = closed.authenticated;
  assert.equal(await closed.run(ctx('192.0.2.1'), user('ana')), 'RATE_LIMIT_UNAVAILABLE');
  assert.equal(await closed.run(ctx('192.0.2.1')), 'RATE_LIMIT_UNAVAILABLE');
  assert.equal(closed.authenticated, before, 'refused before authentication');
  const c = ctx('192.0.2.1');
  assert.equal(await open.run(c, user('ana')), 'ok');
  assert.equal(c.reply.headers.ratelimit, undefined, 'unchecked: no headers');
  assert.equal(await open.run(ctx('192.0.2.1')), 'AUTH_REQUIRED', 'a refusal stays what it was');

  await server.start();
  await waitFor(() => redis.status === 'ready', 20_000, 'the client reconnects');
  assert.equal(await closed.run(ctx('192.0.2.1'), user('ana')), 'ok');
  assert.deepEqual(
    log.securityEvents.filter((e) => String(e.event).startsWith('ratelimit.store_')).map((e) => [e.event, e.limit]),
    [
      ['ratelimit.store_unavailable', 'closed'],
      ['ratelimit.store_unavailable', 'open'],
      ['ratelimit.store_recovered', 'closed'],
    ],
  );
});

test('a route without rateLimit has no limit; by: ip has no user step and leaves the steps between as they are', () => {
  const deps = { log: createMemoryLogger(), metrics: { rateLimit: createRateLimitMetrics(new Registry()) } };
  assert.equal(createRouteLimit(routeSchema.parse({ name: 'a', host: 'a.test', upstream: 'http://127.0.0.1:1', auth: 'none' }), deps), undefined);
  const byIp = createRouteLimit(routeOf('b', { max: 1, by: 'ip' }), deps);
  assert.ok(byIp);
  assert.equal(byIp.afterAuth, undefined);
  const step: Step = () => undefined;
  assert.equal(chargeStopped(byIp, step), step);
  assert.equal(chargeStopped(undefined, step), step);
  assert.equal(chargeStopped(createRouteLimit(routeOf('c', {}), deps), undefined), undefined);
});
