import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from '../../../src/context.js';
import { GatewayError } from '../../../src/errors.js';
import { Reply } from '../../../src/reply.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { normalizeIp } from '../../../src/net/ip.js';
import { createLoginLimiter, CREDENTIAL_LIMITS, type CredentialLimiter } from '../../../src/ratelimit/index.js';
import { gatewayRedis, RedisServerProcess, waitFor } from '../../helpers/redis.js';
import { Registry } from 'prom-client';
import { createRateLimitMetrics } from '../../../src/ratelimit/metrics.js';

function ctx(ip: string): RequestContext {
  const client = normalizeIp(ip);
  assert.ok(client);
  return { id: 'r', address: { client, peer: client, peerTrusted: false }, reply: new Reply('r', false, { hsts: undefined }) } as unknown as RequestContext;
}

async function attempt(limit: CredentialLimiter, c: RequestContext, name?: string): Promise<string> {
  try {
    await limit(c, name);
    return 'ok';
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

// A private Redis: the credential buckets (auth:login:ip:127.0.0.1 …) carry no run id, and the
// shared Redis is used by other engineers' login tests.
test('credential limits: per user name (any spelling, any address) and per address; fail closed without Redis', async (t) => {
  const server = await RedisServerProcess.start();
  t.after(() => server.stop());
  const log = createMemoryLogger();
  const redis = await gatewayRedis(server.url, log);
  t.after(() => redis.disconnect());
  const metrics = { rateLimit: createRateLimitMetrics(new Registry()) };
  const login = createLoginLimiter({ log, redis, metrics });

  const perUser = CREDENTIAL_LIMITS.login.perUser.max;
  for (let i = 0; i < perUser; i++) assert.equal(await attempt(login, ctx(`198.51.100.${i}`), ['Ana', 'ana', ' ANA ', 'ａｎａ'][i % 4]), 'ok');
  const c = ctx('198.51.100.200');
  assert.equal(await attempt(login, c, 'ana'), 'RATE_LIMITED');
  assert.equal(c.reply.headers['ratelimit-policy'], `${CREDENTIAL_LIMITS.login.perIp.max};w=900, ${perUser};w=900`);
  assert.equal(await attempt(login, ctx('198.51.100.200'), 'bob'), 'ok', 'another name from that address');

  const perIp = CREDENTIAL_LIMITS.login.perIp.max;
  for (let i = 0; i < perIp; i++) assert.equal(await attempt(login, ctx('2001:db8:9::1'), `user${i}`), 'ok');
  assert.equal(await attempt(login, ctx('2001:db8:9::ffff'), 'someone-new'), 'RATE_LIMITED', 'the same /64');
  assert.equal(await attempt(login, ctx('2001:db8:9:1::1'), 'someone-new'), 'ok');

  // Token endpoints have their own budget.
  const token = createLoginLimiter({ log, redis, metrics }, 'token');
  assert.equal(await attempt(token, ctx('198.51.100.200'), 'ana'), 'ok');

  await server.stop();
  await waitFor(() => redis.status !== 'ready', 10_000, 'client sees Redis gone');
  assert.equal(await attempt(login, ctx('192.0.2.1'), 'carol'), 'RATE_LIMIT_UNAVAILABLE');
  assert.equal(await attempt(token, ctx('192.0.2.1')), 'RATE_LIMIT_UNAVAILABLE');
  assert.equal(log.securityEvents.filter((e) => e.event === 'ratelimit.store_unavailable' && e.failMode === 'closed').length, 3, 'login:ip, login:user, token:ip');
});

test('credential limits without Redis use this process memory', async () => {
  const login = createLoginLimiter({ log: createMemoryLogger(), metrics: { rateLimit: createRateLimitMetrics(new Registry()) } });
  for (let i = 0; i < CREDENTIAL_LIMITS.login.perUser.max; i++) assert.equal(await attempt(login, ctx('192.0.2.1'), 'dora'), 'ok');
  assert.equal(await attempt(login, ctx('192.0.2.2'), 'Dora'), 'RATE_LIMITED');
});
