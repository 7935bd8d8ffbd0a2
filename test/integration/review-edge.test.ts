import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { startTestGateway, type TestGateway, type TestResponse } from '../helpers/harness.js';
import { StandInCrm } from '../helpers/crm-api.js';
import { deleteKeys, gatewayRedis, runId, SHARED_REDIS_URL } from '../helpers/redis.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { signBody } from '../../src/webhook/signature.js';

/**
 * Findings of an adversarial review, each against the real gateway: the attack is refused (or
 * reaches only what the route maps to) and the upstream sees nothing it should not.
 */

type After = { after(fn: () => Promise<void>): void };

async function gateway(t: After, routes: string, env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startTestGateway(routes, env);
  t.after(() => gw.close());
  return gw;
}

function assertRefused(res: TestResponse, status: number, code: string): void {
  assert.equal(res.status, status, res.body);
  assert.equal(res.json<{ error: { code: string } }>().error.code, code);
}

let redis: Redis;
const redisPatterns: string[] = [];
before(async () => {
  redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
});
after(async () => {
  for (const pattern of redisPatterns) await deleteKeys(SHARED_REDIS_URL, pattern);
  redis.disconnect();
});

test('stripPrefix: a ;parameter inside a multi-segment prefix cannot pick the upstream path', async (t) => {
  const gw = await gateway(
    t,
    `
  - name: svc
    host: api.test.local
    path: /svc/v1
    stripPrefix: true
    upstream: UPSTREAM
    auth: none
`,
  );
  // The prefix was cut by character count from the spelling with parameters, so the
  // parameter's tail became the first upstream segment: /svc;xxadmin/v1/users reached
  // /admin/v1/users, outside everything the route maps (/svc/v1/* → /*). Now a parameter inside
  // the prefix is refused outright (read literally the path is not under /svc/v1, so the two
  // readings disagree); one after the prefix stays with the rest of the path.
  for (const path of ['/svc;xxadmin/v1/users', '/svc/v1;x/users', '/svc;x/v1;y']) {
    await t.test(path, async () => {
      gw.upstream.seen.length = 0;
      assertRefused(await gw.request({ path }), 400, 'PATH_REJECTED');
      assert.equal(gw.upstream.seen.length, 0);
    });
  }
  await t.test('/svc/v1/users;z?q=1', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/svc/v1/users;z?q=1' });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(
      gw.upstream.seen.map((s) => s.url),
      ['/users;z?q=1'],
    );
  });
});

test('an encoded slash cannot carry a path past a stricter route to a route that allows encoded slashes', async (t) => {
  const gw = await gateway(
    t,
    `
  - name: admin
    host: api.test.local
    path: /admin
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [10.0.0.0/8]
  - name: files
    host: api.test.local
    upstream: UPSTREAM
    auth: none
    allowEncodedSlashes: true
`,
  );
  // An upstream that decodes %2F (Starlette, many others) serves /admin/users for these; the
  // gateway routed them to the loose route, which allows encoded slashes. (The last one reaches
  // the admin route, params ignored, which refuses encoded slashes: the same answer.)
  for (const path of ['/admin%2Fusers', '/admin%2f', '/%2Fadmin/users', '/admin;x%2Fusers']) {
    await t.test(path, async () => {
      gw.upstream.seen.length = 0;
      const res = await gw.request({ path });
      assertRefused(res, 400, 'PATH_REJECTED');
      assert.equal(gw.upstream.seen.length, 0);
    });
  }

  await t.test('an encoded slash that stays on the same route is kept (control)', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/files/a%2Fb' });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(
      gw.upstream.seen.map((s) => s.url),
      ['/files/a%2Fb'],
    );
  });
});

test('WhatsApp webhook with by: user limits: unsigned requests spend their address budget, not Meta’s', async (t) => {
  const appSecret = randomBytes(24).toString('hex');
  const crm = await StandInCrm.start();
  const name = runId('wa-rl-');
  redisPatterns.push(`crmgw:{wa:${name}}:*`, `crmgw:rl:r:${name}:*`);
  const gw = await startTestGateway(
    `
  - name: ${name}
    host: api.test.local
    path: /webhook/whatsapp
    upstream: ${crm.url}
    auth: whatsapp
    websocket: false
    rateLimit: { window: 1m, max: 2, by: user }
`,
    {
      WHATSAPP_APP_SECRET: appSecret,
      WHATSAPP_VERIFY_TOKEN: randomBytes(16).toString('hex'),
      WHATSAPP_QUEUE_KEY: randomBytes(32).toString('hex'),
      TRUSTED_PROXIES: '127.0.0.1/32',
    },
    'whatsapp: { ackTimeout: 3s, retryMin: 50ms, retryMax: 200ms }',
    { redis },
  );
  t.after(async () => {
    await gw.close();
    await crm.stop();
  });
  const forged = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');
  const attacker = { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.5', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` };
  // The webhook names its caller before the handler checks the signature; the per-user step
  // took that for an authenticated user: the forger's address charge was refunded and the one
  // shared "whatsapp-webhook" bucket charged instead.
  assertRefused(await gw.request({ method: 'POST', path: '/webhook/whatsapp', headers: attacker, body: forged }), 401, 'WEBHOOK_SIGNATURE_INVALID');
  assertRefused(await gw.request({ method: 'POST', path: '/webhook/whatsapp', headers: attacker, body: forged }), 401, 'WEBHOOK_SIGNATURE_INVALID');
  assertRefused(await gw.request({ method: 'POST', path: '/webhook/whatsapp', headers: attacker, body: forged }), 429, 'RATE_LIMITED');

  const ts = Math.floor(Date.now() / 1000);
  const body = Buffer.from(
    JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: '1', changes: [{ field: 'messages', value: { messages: [{ id: `wamid.${name}`, from: '34600111222', timestamp: String(ts) }] } }] }],
    }),
  );
  const meta = await gw.request({
    method: 'POST',
    path: '/webhook/whatsapp',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.7', 'x-hub-signature-256': signBody(body, appSecret) },
    body,
  });
  assert.equal(meta.status, 200, meta.body);
  assert.equal(crm.received.length, 1, 'only the signed payload reached the CRM API');
  assert.ok(crm.received[0]?.body.equals(body));
});

test('a header the upstream names in its own Connection header does not reach the client (RFC 9110 §7.6.1)', async (t) => {
  const upstream = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive, X-Internal-Debug', 'x-internal-debug': 'db=10.0.0.5', 'x-kept': 'yes' });
    res.end('ok');
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => new Promise<void>((r) => upstream.close(() => r())));
  const gw = await gateway(
    t,
    `
  - name: api
    host: api.test.local
    upstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}
    auth: none
`,
  );
  const res = await gw.request({ path: '/' });
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-internal-debug'], undefined);
  assert.equal(res.headers['x-kept'], 'yes');
  assert.equal(res.headers['x-request-id'] !== undefined, true);
});

test('an upstream’s own CORS answer never reaches the client: the gateway owns CORS, also on routes without cors:', async (t) => {
  const upstream = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-secret' });
    res.end('{}');
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => new Promise<void>((r) => upstream.close(() => r())));
  const gw = await gateway(
    t,
    `
  - name: api
    host: api.test.local
    upstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}
    auth: none
`,
  );
  const res = await gw.request({ path: '/', headers: { origin: 'https://evil.example' } });
  assert.equal(res.status, 200);
  for (const name of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers']) assert.equal(res.headers[name], undefined, name);
});
