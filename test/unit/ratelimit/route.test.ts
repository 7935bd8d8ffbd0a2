import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { routeSchema } from '../../../src/config/schema.js';
import type { RequestContext } from '../../../src/context.js';
import { GatewayError } from '../../../src/errors.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { normalizeIp } from '../../../src/net/ip.js';
import { createRateLimit, createUserRateLimit, RATE_LIMIT_KEY_PREFIX } from '../../../src/ratelimit/index.js';
import type { Step } from '../../../src/step.js';
import { deleteKeys, gatewayRedis, listKeys, runId, SHARED_REDIS_URL } from '../../helpers/redis.js';

let seq = 0;
function ctx(ip: string, subject?: string): RequestContext {
  const client = normalizeIp(ip);
  assert.ok(client);
  return {
    id: `req-${++seq}`,
    address: { client, peer: client, peerTrusted: false },
    responseHeaders: {},
    ...(subject ? { principal: { subject, roles: ['api'], method: 'jwt' } } : {}),
  } as unknown as RequestContext;
}

function steps(name: string, redis?: Redis): { before: Step; after: Step } {
  const route = routeSchema.parse({ name, host: 'api.test.local', upstream: 'http://127.0.0.1:1', auth: 'jwt', rateLimit: { window: '1m', max: 3, by: 'user' } });
  const deps = { log: createMemoryLogger(), redis };
  const before = createRateLimit(route, deps);
  const after = createUserRateLimit(route, deps);
  assert.ok(before && after);
  return { before, after };
}

/** One request through the two steps, as the pipeline runs them; `authenticated: false` stops after the first (auth refused). */
async function request(s: { before: Step; after: Step }, c: RequestContext, authenticated = true): Promise<string> {
  try {
    await s.before(c);
    if (authenticated) await s.after(c);
    return 'ok';
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

async function byUserBehaviour(redis?: Redis): Promise<void> {
  const name = runId('u');
  const s = steps(name, redis);
  try {
    // Many users behind one address each have their own budget: the address is not the limit.
    for (const user of ['ana', 'bob', 'eve']) {
      for (let i = 0; i < 3; i++) assert.equal(await request(s, ctx('203.0.113.5', user)), 'ok', `${user} #${i + 1}`);
      assert.equal(await request(s, ctx('203.0.113.5', user)), 'RATE_LIMITED', `${user} over`);
    }
    // The user's budget follows them to another address.
    assert.equal(await request(s, ctx('198.51.100.1', 'ana')), 'RATE_LIMITED');
    const c = ctx('198.51.100.2', 'zoe');
    assert.equal(await request(s, c), 'ok');
    assert.match(String(c.responseHeaders.ratelimit), /^limit=3, remaining=2, reset=\d+$/);

    // Requests that never authenticate spend the address's budget, and past it even a valid
    // user from that address is refused before authentication runs.
    for (let i = 0; i < 3; i++) assert.equal(await request(s, ctx('192.0.2.9'), false), 'ok');
    assert.equal(await request(s, ctx('192.0.2.9'), false), 'RATE_LIMITED');
    assert.equal(await request(s, ctx('192.0.2.9', 'new-user')), 'RATE_LIMITED');

    if (redis) {
      const keys = await listKeys(redis, `${RATE_LIMIT_KEY_PREFIX}r:${name}:*`);
      assert.ok(keys.length >= 7, keys.join(' '));
      for (const key of keys) assert.ok((await redis.pttl(key)) > 0, `${key} has a TTL`);
      // The refunded address bucket is back to zero, not gone below.
      assert.equal(await redis.get(`${RATE_LIMIT_KEY_PREFIX}r:${name}:ip:203.0.113.5`), '0');
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

test('a route without rateLimit has no steps; by: ip has no user step', () => {
  const deps = { log: createMemoryLogger() };
  const none = routeSchema.parse({ name: 'a', host: 'a.test', upstream: 'http://127.0.0.1:1', auth: 'none' });
  assert.equal(createRateLimit(none, deps), undefined);
  assert.equal(createUserRateLimit(none, deps), undefined);
  const byIp = routeSchema.parse({ name: 'b', host: 'a.test', upstream: 'http://127.0.0.1:1', auth: 'jwt', rateLimit: { window: '1m', max: 1 } });
  assert.ok(createRateLimit(byIp, deps));
  assert.equal(createUserRateLimit(byIp, deps), undefined);
});
