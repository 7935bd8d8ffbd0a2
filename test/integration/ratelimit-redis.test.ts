import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startTestGateway, type TestGateway, type TestResponse } from '../helpers/harness.js';
import { startEchoUpstream } from '../../src/demo/echo-upstream.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { createRedis } from '../../src/stores/redis.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { RATE_LIMIT_KEY_PREFIX } from '../../src/ratelimit/index.js';
import { deleteKeys, gatewayRedis, listKeys, RedisServerProcess, runId, SHARED_REDIS_URL, waitFor } from '../helpers/redis.js';

type After = { after(fn: () => Promise<void> | void): void };

/** Route names unique to this run: every key (`crmgw:rl:r:<route>:…`) is ours alone on the shared Redis. */
const RUN = runId('rl');

async function sharedRedis(t: After): Promise<Redis> {
  const redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
  t.after(async () => {
    await deleteKeys(SHARED_REDIS_URL, `${RATE_LIMIT_KEY_PREFIX}r:${RUN}*`);
    redis.disconnect();
  });
  return redis;
}

async function gateway(t: After, routes: string, redis: Redis, env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startTestGateway(routes, env, '', { redis });
  t.after(() => gw.close());
  return gw;
}

const route = (name: string, host: string, limit: string, upstream = 'UPSTREAM'): string => `
  - name: ${name}
    host: ${host}
    upstream: ${upstream}
    auth: none
    rateLimit: ${limit}
`;

function assertRefused(res: TestResponse, status: number, code: string): void {
  assert.equal(res.status, status, res.body);
  const error = res.json<{ error: { code: string; message: string; requestId: string } }>().error;
  assert.equal(error.code, code);
  assert.equal(error.requestId, res.headers['x-request-id']);
  assert.ok(!/redis|store|127\.0\.0\.1|\bip:/i.test(error.message), `no detail in the public message: ${error.message}`);
}

function assertLimited(res: TestResponse, windowSeconds: number): void {
  assertRefused(res, 429, 'RATE_LIMITED');
  const retry = Number(res.headers['retry-after']);
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= windowSeconds, `Retry-After ${String(res.headers['retry-after'])}`);
  assert.match(String(res.headers.ratelimit), /^limit=\d+, remaining=0, reset=\d+$/);
}

test('two gateway instances in front of one upstream hold the combined limit', async (t) => {
  const redis = await sharedRedis(t);
  const upstream = await startEchoUpstream('shared-upstream');
  t.after(() => upstream.close());
  const routes = route(`${RUN}-both`, 'api.test.local', '{ window: 1m, max: 10, by: ip }', upstream.url);
  const [a, b] = [await gateway(t, routes, redis), await gateway(t, routes, redis)];

  // Sequential, alternating instances: every answer after the 10th is a 429.
  const statuses: number[] = [];
  for (let i = 0; i < 16; i++) statuses.push((await (i % 2 === 0 ? a : b).request({ path: `/s${i}` })).status);
  assert.deepEqual(statuses, [...Array(10).fill(200), ...Array(6).fill(429)]);
  assert.equal(upstream.seen.length, 10);

  // A concurrent burst on both instances at once (a second bucket: another route name).
  const burst = route(`${RUN}-burst`, 'nocodb.test.local', '{ window: 1m, max: 10, by: ip }', upstream.url);
  const [c, d] = [await gateway(t, burst, redis), await gateway(t, burst, redis)];
  upstream.seen.length = 0;
  const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? c : d).request({ path: '/b', host: 'nocodb.test.local' })));
  const passed = answers.filter((r) => r.status === 200).length;
  assert.ok(passed >= 10 && passed <= 10 + 2, `combined limit 10 held within one request per instance: ${passed} passed`);
  assert.equal(upstream.seen.length, passed);
  for (const r of answers.filter((x) => x.status !== 200)) assertLimited(r, 60);
});

test('limits of two routes are independent, and every key the limiter wrote has a TTL', async (t) => {
  const redis = await sharedRedis(t);
  const gw = await gateway(t, `${route(`${RUN}-one`, 'api.test.local', '{ window: 1m, max: 3 }')}${route(`${RUN}-two`, 'nocodb.test.local', '{ window: 30s, max: 5 }')}`, redis);
  for (let i = 0; i < 3; i++) assert.equal((await gw.request({ path: '/' })).status, 200);
  assertLimited(await gw.request({ path: '/' }), 60);
  const other = await gw.request({ path: '/', host: 'nocodb.test.local' });
  assert.equal(other.status, 200);
  assert.equal(other.headers['ratelimit-policy'], '5;w=30');
  assert.match(String(other.headers.ratelimit), /^limit=5, remaining=4, reset=\d+$/);
  assert.equal(gw.upstream.seen.length, 4);

  const keys = await listKeys(redis, `${RATE_LIMIT_KEY_PREFIX}r:${RUN}-*`);
  assert.equal(keys.length, 2, keys.join(' '));
  for (const key of keys) {
    const ttl = await redis.pttl(key);
    assert.ok(ttl > 0 && ttl <= 60_000, `${key} has TTL ${ttl}`);
  }
});

test('a spoofed X-Forwarded-For does not escape the limit (untrusted peer, and the client part behind a trusted proxy)', async (t) => {
  const redis = await sharedRedis(t);
  const untrusted = await gateway(t, route(`${RUN}-xff`, 'api.test.local', '{ window: 1m, max: 3 }'), redis);
  for (let i = 0; i < 3; i++) assert.equal((await untrusted.request({ path: '/', headers: { 'X-Forwarded-For': `198.51.100.${i}`, Forwarded: `for=198.51.100.${i}` } })).status, 200);
  assertLimited(await untrusted.request({ path: '/', headers: { 'X-Forwarded-For': '203.0.113.250', 'X-Real-IP': '203.0.113.250' } }), 60);
  assert.equal(untrusted.upstream.seen.length, 3);

  // Behind a trusted proxy the proxy's own hop (rightmost) counts; what the client put left of it does not.
  const proxied = await gateway(t, route(`${RUN}-xffp`, 'api.test.local', '{ window: 1m, max: 3 }'), redis, { TRUSTED_PROXIES: '127.0.0.1/32' });
  for (let i = 0; i < 3; i++) assert.equal((await proxied.request({ path: '/', headers: { 'X-Forwarded-For': `10.9.9.${i}, 203.0.113.7` } })).status, 200);
  assertLimited(await proxied.request({ path: '/', headers: { 'X-Forwarded-For': '10.0.0.1, 10.0.0.2, 203.0.113.7' } }), 60);
  assertLimited(await proxied.request({ path: '/', headers: { 'X-Forwarded-For': 'garbage, 203.0.113.7' } }), 60);
  assert.equal(proxied.upstream.seen.length, 3);
  // Another real client behind the same proxy has its own budget.
  assert.equal((await proxied.request({ path: '/', headers: { 'X-Forwarded-For': '203.0.113.8' } })).status, 200);
});

test('IPv6 clients are grouped by /64 (and the prefix is configurable)', async (t) => {
  const redis = await sharedRedis(t);
  const gw = await gateway(
    t,
    `${route(`${RUN}-v6`, 'api.test.local', '{ window: 1m, max: 3 }')}${route(`${RUN}-v6w`, 'nocodb.test.local', '{ window: 1m, max: 3, ipv6Prefix: 48 }')}`,
    redis,
    { TRUSTED_PROXIES: '127.0.0.1/32' },
  );
  const from = (ip: string, host = 'api.test.local'): Promise<TestResponse> => gw.request({ path: '/', host, headers: { 'X-Forwarded-For': ip } });
  // Three addresses of one /64, in different spellings: one bucket.
  assert.equal((await from('2001:db8:aa:1::1')).status, 200);
  assert.equal((await from('2001:DB8:AA:1:0:0:0:2')).status, 200);
  assert.equal((await from('[2001:db8:aa:1:ffff:ffff:ffff:ffff]')).status, 200);
  assertLimited(await from('2001:db8:aa:1:1234::9'), 60);
  // The next /64 is another client.
  assert.equal((await from('2001:db8:aa:2::1')).status, 200);
  assert.equal(gw.upstream.seen.length, 4);

  // ipv6Prefix: 48 puts both /64s above into one bucket.
  for (const ip of ['2001:db8:bb:1::1', '2001:db8:bb:2::1', '2001:db8:bb:ffff::1']) assert.equal((await from(ip, 'nocodb.test.local')).status, 200);
  assertLimited(await from('2001:db8:bb:3::1', 'nocodb.test.local'), 60);
  assert.equal((await from('2001:db8:bc::1', 'nocodb.test.local')).status, 200);
});

test('rejections are logged as security events sampled per bucket, not once per request', async (t) => {
  const redis = await sharedRedis(t);
  const gw = await gateway(t, route(`${RUN}-log`, 'api.test.local', '{ window: 1m, max: 2 }'), redis, { TRUSTED_PROXIES: '127.0.0.1/32' });
  for (const ip of ['203.0.113.1', '203.0.113.2']) {
    for (let i = 0; i < 12; i++) await gw.request({ path: '/', headers: { 'X-Forwarded-For': ip } });
  }
  const events = gw.log.securityEvents.filter((e) => e.event === 'ratelimit.rejected');
  assert.deepEqual(
    events.map((e) => [e.clientIp, e.bucket, e.limit]),
    [
      ['203.0.113.1', 'ip:203.0.113.1', `${RUN}-log`],
      ['203.0.113.2', 'ip:203.0.113.2', `${RUN}-log`],
    ],
  );
  assert.equal(gw.upstream.seen.length, 4);
});

test('Redis stopped mid-test: each route follows its fail mode, logged once per outage; limits return with Redis, no restart', async (t) => {
  const server = await RedisServerProcess.start();
  t.after(() => server.stop());
  const log = createMemoryLogger();
  const redis = await gatewayRedis(server.url, log);
  t.after(() => redis.disconnect());
  const gw = await gateway(
    t,
    `${route('ui', 'nocodb.test.local', '{ window: 1m, max: 3 }')}${route('login', 'api.test.local', '{ window: 1m, max: 3, failMode: closed }')}`,
    redis,
  );
  const ui = (): Promise<TestResponse> => gw.request({ path: '/', host: 'nocodb.test.local' });
  const login = (): Promise<TestResponse> => gw.request({ path: '/login', method: 'POST', body: 'x' });
  assert.equal((await ui()).status, 200);
  assert.equal((await login()).status, 200);

  await server.stop();
  await waitFor(() => redis.status !== 'ready', 10_000, 'the gateway client notices Redis is gone');
  gw.upstream.seen.length = 0;
  for (let i = 0; i < 5; i++) {
    const res = await ui();
    assert.equal(res.status, 200, 'fail open: the UI route keeps serving');
    assert.equal(res.headers.ratelimit, undefined, 'no limit headers for an unchecked request');
  }
  assert.equal(gw.upstream.seen.length, 5);
  for (let i = 0; i < 3; i++) {
    const res = await login();
    assertRefused(res, 503, 'RATE_LIMIT_UNAVAILABLE');
    assert.ok(Number(res.headers['retry-after']) > 0);
  }
  assert.equal(gw.upstream.seen.length, 5, 'fail closed: nothing of the login route reached the upstream');
  const outage = gw.log.securityEvents.filter((e) => e.event === 'ratelimit.store_unavailable');
  assert.deepEqual(
    outage.map((e) => [e.limit, e.failMode]).sort(),
    [
      ['login', 'closed'],
      ['ui', 'open'],
    ],
  );

  await server.start();
  await waitFor(() => redis.status === 'ready', 20_000, 'the gateway client reconnects by itself');
  gw.upstream.seen.length = 0;
  // Redis came back empty (no persistence): each route has its full budget again, and it holds.
  for (let i = 0; i < 3; i++) assert.equal((await login()).status, 200);
  assertLimited(await login(), 60);
  for (let i = 0; i < 3; i++) assert.equal((await ui()).status, 200);
  assertLimited(await ui(), 60);
  assert.equal(gw.upstream.seen.length, 6);
  const back = gw.log.securityEvents.filter((e) => e.event === 'ratelimit.store_recovered');
  assert.deepEqual(
    back.map((e) => [e.limit, e.requestsDuringOutage]).sort(),
    [
      ['login', 3],
      ['ui', 5],
    ],
  );
  assert.equal(gw.log.securityEvents.filter((e) => e.event === 'ratelimit.store_unavailable').length, 2, 'still one event per route for the whole outage');
});

test('a gateway started while Redis is down serves by fail mode, then limits once Redis comes up', async (t) => {
  const server = await RedisServerProcess.start();
  await server.stop();
  t.after(() => server.stop());
  const log = createMemoryLogger();
  const redis = await createRedis({ stores: { redisUrl: server.url } } as GatewayConfig, log);
  assert.ok(redis);
  t.after(() => redis.disconnect());
  const gw = await gateway(t, `${route('ui', 'nocodb.test.local', '{ window: 1m, max: 2 }')}${route('login', 'api.test.local', '{ window: 1m, max: 2, failMode: closed }')}`, redis);
  assert.equal((await gw.request({ path: '/', host: 'nocodb.test.local' })).status, 200);
  assertRefused(await gw.request({ path: '/' }), 503, 'RATE_LIMIT_UNAVAILABLE');

  await server.start();
  await waitFor(() => redis.status === 'ready', 20_000, 'first connection');
  for (let i = 0; i < 2; i++) assert.equal((await gw.request({ path: '/' })).status, 200);
  assertLimited(await gw.request({ path: '/' }), 60);
  for (let i = 0; i < 2; i++) assert.equal((await gw.request({ path: '/', host: 'nocodb.test.local' })).status, 200);
  assertLimited(await gw.request({ path: '/', host: 'nocodb.test.local' }), 60);
});
