import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { startTestGateway, type TestGateway, type TestResponse } from '../helpers/harness.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';

type After = { after(fn: () => Promise<void>): void };

async function gateway(t: After, routes: string, env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startTestGateway(routes, env);
  t.after(() => gw.close());
  return gw;
}

function assertRefused(res: TestResponse, status: number, code: string): void {
  assert.equal(res.status, status, res.body);
  const error = res.json<{ error: { code: string; requestId: string } }>().error;
  assert.equal(error.code, code);
  assert.ok(error.requestId, 'requestId present');
  assert.equal(error.requestId, res.headers['x-request-id']);
}

/** An HTTPS request from a chosen local address family (the harness always dials 127.0.0.1). */
function requestVia(address: '::1' | '127.0.0.1', gw: TestGateway, host: string, path: string): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: address, port: gw.port, path, ca: gw.ca, servername: host, headers: { host }, agent: false, checkServerIdentity: () => undefined },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const CORS_ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: none
    cors: { origins: ["https://app.example.com", "localhost"], credentials: true }
  - name: crm-default
    host: crm.test.local
    upstream: UPSTREAM
    auth: none
    cors: { origins: ["https://app.example.com"] }
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: none
`;

test('CORS on a route with listed origins', async (t) => {
  const gw = await gateway(t, CORS_ROUTES);

  await t.test('regression: a route that does not ask for credentials allows none (it defaulted to true)', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/data', host: 'crm.test.local', headers: { Origin: 'https://app.example.com' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(res.headers['access-control-allow-credentials'], undefined);
    // Browser code can read the request id and back off on the rate-limit headers.
    assert.equal(res.headers['access-control-expose-headers'], 'X-Request-Id, RateLimit, RateLimit-Policy, Retry-After');
    const pre = await gw.request({ method: 'OPTIONS', path: '/data', host: 'crm.test.local', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-credentials'], undefined);
    assert.equal(gw.upstream.seen.length, 1, 'the preflight never reached the upstream');
  });

  await t.test('an allowed origin gets its exact origin back with credentials', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/data', headers: { Origin: 'https://app.example.com' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.equal(res.headers['access-control-expose-headers'], 'X-Request-Id, RateLimit, RateLimit-Policy, Retry-After');
    assert.match(String(res.headers.vary), /\bOrigin\b/);
    assert.equal(gw.upstream.seen.length, 1);
  });

  await t.test('a bare host entry (localhost) allows that host on any port and scheme http/https', async () => {
    for (const origin of ['http://localhost:3000', 'https://localhost']) {
      const res = await gw.request({ path: '/data', headers: { Origin: origin } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['access-control-allow-origin'], origin);
    }
  });

  await t.test('an allowed preflight is answered at the gateway with 204; the upstream sees nothing', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({
      method: 'OPTIONS',
      path: '/data',
      headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type, authorization' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.body, '');
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.match(String(res.headers['access-control-allow-methods']), /\bPUT\b/);
    assert.match(String(res.headers['access-control-allow-headers']), /Content-Type/i);
    assert.equal(res.headers['access-control-max-age'], '600');
    assert.ok(res.headers['x-request-id']);
    assert.equal(gw.upstream.seen.length, 0);
  });

  await t.test('a preflight for a method outside the CORS methods → 403 CORS_ORIGIN_DENIED', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ method: 'OPTIONS', path: '/data', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'PROPFIND' } });
    assertRefused(res, 403, 'CORS_ORIGIN_DENIED');
    assert.equal(gw.upstream.seen.length, 0);
  });

  await t.test('a disallowed origin: preflight 403 without CORS headers, upstream sees nothing', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ method: 'OPTIONS', path: '/data', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } });
    assertRefused(res, 403, 'CORS_ORIGIN_DENIED');
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers['access-control-allow-credentials'], undefined);
    assert.equal(gw.upstream.seen.length, 0);
  });

  await t.test('a disallowed origin: unsafe methods → 403, whatever the look-alike', async () => {
    gw.upstream.seen.length = 0;
    const lookalikes = [
      'https://evil.example',
      'https://app.example.com.evil.example',
      'https://evilapp.example.com',
      'http://app.example.com',
      'https://app.example.com:8443',
      'http://localhost.evil.example',
      'null',
      'https://app.example.com/path',
    ];
    for (const origin of lookalikes) {
      // No body on DELETE: Node's client would send it unframed (no Content-Length).
      for (const [method, body] of [['POST', '{}'], ['DELETE', undefined]] as const) {
        const res = await gw.request({ method, path: '/data', headers: { Origin: origin, 'content-type': 'application/json' }, body });
        assertRefused(res, 403, 'CORS_ORIGIN_DENIED');
        assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
      }
    }
    assert.equal(gw.upstream.seen.length, 0);
  });

  await t.test('a disallowed origin: GET is forwarded, without Access-Control-Allow-Origin', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/data', headers: { Origin: 'https://evil.example' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers['access-control-allow-credentials'], undefined);
    assert.equal(gw.upstream.seen.length, 1);
  });

  await t.test('a same-origin request passes without CORS headers', async () => {
    gw.upstream.seen.length = 0;
    const host = `api.test.local:${gw.port}`;
    const res = await gw.request({ method: 'POST', path: '/form', host, headers: { Origin: `https://${host}` }, body: 'a=1' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(gw.upstream.seen.length, 1);
  });

  await t.test('the same host over plain http is not the same origin', async () => {
    gw.upstream.seen.length = 0;
    const host = `api.test.local:${gw.port}`;
    assertRefused(await gw.request({ method: 'POST', path: '/form', host, headers: { Origin: `http://${host}` }, body: 'a=1' }), 403, 'CORS_ORIGIN_DENIED');
    assert.equal(gw.upstream.seen.length, 0);
  });

  await t.test('a route without cors config refuses cross-origin preflights and unsafe methods', async () => {
    gw.upstream.seen.length = 0;
    const preflight = await gw.request({
      method: 'OPTIONS',
      path: '/',
      host: 'nocodb.test.local',
      headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' },
    });
    assertRefused(preflight, 403, 'CORS_ORIGIN_DENIED');
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    assertRefused(await gw.request({ method: 'POST', path: '/', host: 'nocodb.test.local', headers: { Origin: 'https://app.example.com' }, body: '{}' }), 403, 'CORS_ORIGIN_DENIED');
    assert.equal(gw.upstream.seen.length, 0);
    const get = await gw.request({ path: '/', host: 'nocodb.test.local', headers: { Origin: 'https://app.example.com' } });
    assert.equal(get.status, 200);
    assert.equal(get.headers['access-control-allow-origin'], undefined);
  });
});

const ALLOWLIST_ROUTES = `
  - name: local
    host: local.test.local
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [127.0.0.1/32]
  - name: private
    host: private.test.local
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [10.0.0.0/8]
`;

test('IP allowlist', async (t) => {
  const gw = await gateway(t, ALLOWLIST_ROUTES);

  await t.test('127.0.0.1/32 lets the loopback client through', async () => {
    gw.upstream.seen.length = 0;
    assert.equal((await gw.request({ path: '/', host: 'local.test.local' })).status, 200);
    assert.equal(gw.upstream.seen.length, 1);
  });

  await t.test('10.0.0.0/8 only → 403 IP_DENIED and nothing upstream', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ path: '/', host: 'private.test.local' }), 403, 'IP_DENIED');
    assert.equal(gw.upstream.seen.length, 0);
  });

  await t.test('without trusted proxies a spoofed X-Forwarded-For does not get through', async () => {
    gw.upstream.seen.length = 0;
    for (const xff of ['10.1.2.3', '127.0.0.1, 10.1.2.3', '::ffff:10.1.2.3']) {
      const headers = { 'X-Forwarded-For': xff, 'X-Real-IP': '10.1.2.3', Forwarded: 'for=10.1.2.3' };
      assertRefused(await gw.request({ path: '/', host: 'private.test.local', headers }), 403, 'IP_DENIED');
    }
    assert.equal(gw.upstream.seen.length, 0);
  });
});

test('IP allowlist with TRUSTED_PROXIES=127.0.0.1/32 applies to the forwarded client', async (t) => {
  const gw = await gateway(t, ALLOWLIST_ROUTES, { TRUSTED_PROXIES: '127.0.0.1/32' });

  await t.test('X-Forwarded-For: 10.1.2.3 makes the client 10.1.2.3: allowed by 10.0.0.0/8', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/', host: 'private.test.local', headers: { 'X-Forwarded-For': '10.1.2.3' } });
    assert.equal(res.status, 200);
    assert.equal(gw.upstream.seen.length, 1);
    assert.equal(gw.upstream.seen[0]?.headers['x-forwarded-for'], '10.1.2.3, 127.0.0.1');
  });

  await t.test('... and refused by 127.0.0.1/32, although the proxy itself is 127.0.0.1', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ path: '/', host: 'local.test.local', headers: { 'X-Forwarded-For': '10.1.2.3' } }), 403, 'IP_DENIED');
    assert.equal(gw.upstream.seen.length, 0);
  });

  await t.test('a malformed rightmost hop stops the walk: no address is injected past it', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ path: '/', host: 'private.test.local', headers: { 'X-Forwarded-For': '10.1.2.3, not-an-ip' } }), 403, 'IP_DENIED');
    assert.equal(gw.upstream.seen.length, 0);
  });
});

test('IP allowlist entries in IPv6 and IPv4-mapped form (dual-stack listener)', async (t) => {
  const gw = await gateway(
    t,
    `
  - name: v6
    host: v6.test.local
    upstream: UPSTREAM
    auth: none
    ipAllowlist: ["::1/128"]
  - name: mapped
    host: mapped.test.local
    upstream: UPSTREAM
    auth: none
    ipAllowlist: ["::ffff:127.0.0.1/128"]
  - name: v4
    host: v4.test.local
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [127.0.0.0/8]
`,
    { LISTEN_ADDRESS: '::' },
  );

  await t.test('::1/128 allows the IPv6 loopback client and not the IPv4 one', async () => {
    gw.upstream.seen.length = 0;
    assert.equal((await requestVia('::1', gw, 'v6.test.local', '/')).status, 200);
    assertRefused(await requestVia('127.0.0.1', gw, 'v6.test.local', '/'), 403, 'IP_DENIED');
    assert.equal(gw.upstream.seen.length, 1);
  });

  await t.test('::ffff:127.0.0.1/128 allows the IPv4 loopback client (seen as ::ffff:127.0.0.1 on the socket)', async () => {
    gw.upstream.seen.length = 0;
    assert.equal((await requestVia('127.0.0.1', gw, 'mapped.test.local', '/')).status, 200);
    assertRefused(await requestVia('::1', gw, 'mapped.test.local', '/'), 403, 'IP_DENIED');
    assert.equal(gw.upstream.seen.length, 1);
    assert.equal(gw.upstream.seen[0]?.headers['x-forwarded-for'], '127.0.0.1', 'the mapped address is logged and forwarded as plain IPv4');
  });

  await t.test('an IPv4 CIDR matches the IPv4 client on a dual-stack socket', async () => {
    gw.upstream.seen.length = 0;
    assert.equal((await requestVia('127.0.0.1', gw, 'v4.test.local', '/')).status, 200);
    assert.equal(gw.upstream.seen.length, 1);
  });
});

const LIMITED = (name: string, host: string, path?: string): string => `
  - name: ${name}
    host: ${host}${path ? `\n    path: ${path}` : ''}
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 3, by: ip }
`;

function assertRateLimited(res: TestResponse): void {
  assertRefused(res, 429, 'RATE_LIMITED');
  const retry = Number(res.headers['retry-after']);
  assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 60, `Retry-After ${String(res.headers['retry-after'])}`);
  assert.equal(res.headers['ratelimit-policy'], '3;w=60');
  assert.match(String(res.headers.ratelimit), /^limit=3, remaining=0, reset=\d+$/);
}

test('rate limit: the 4th request in the window → 429 with Retry-After, nothing upstream', async (t) => {
  const gw = await gateway(t, LIMITED('api', 'api.test.local'));
  for (let i = 1; i <= 3; i++) {
    const res = await gw.request({ path: `/n${i}` });
    assert.equal(res.status, 200);
    assert.equal(res.headers['ratelimit-policy'], '3;w=60');
    assert.match(String(res.headers.ratelimit), new RegExp(`^limit=3, remaining=${3 - i}, reset=\\d+$`));
  }
  assert.equal(gw.upstream.seen.length, 3);
  assertRateLimited(await gw.request({ path: '/n4' }));
  assert.equal(gw.upstream.seen.length, 3);
});

test('rate limit: rotating X-Forwarded-For from an untrusted peer does not reset the count', async (t) => {
  const gw = await gateway(t, LIMITED('api', 'api.test.local'));
  for (let i = 1; i <= 3; i++) assert.equal((await gw.request({ path: '/', headers: { 'X-Forwarded-For': `198.51.100.${i}` } })).status, 200);
  assertRateLimited(await gw.request({ path: '/', headers: { 'X-Forwarded-For': '198.51.100.99', 'X-Real-IP': '198.51.100.99' } }));
  assert.equal(gw.upstream.seen.length, 3);
});

test('rate limit: changing the Host case or adding a trailing dot does not reset the count', async (t) => {
  const gw = await gateway(t, LIMITED('api', 'api.test.local'));
  for (const host of ['api.test.local', 'API.TEST.LOCAL', 'Api.Test.Local.']) {
    assert.equal((await gw.request({ path: '/', host, servername: 'api.test.local' })).status, 200);
  }
  assertRateLimited(await gw.request({ path: '/', host: `aPi.test.local:${gw.port}`, servername: 'api.test.local' }));
  assert.equal(gw.upstream.seen.length, 3);
});

test('rate limit: spelling the path differently does not reach another budget', async (t) => {
  const gw = await gateway(
    t,
    `${LIMITED('login', 'api.test.local', '/a')}
  - name: rest
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`,
  );
  for (const path of ['/a', '/%61', '//a']) assert.equal((await gw.request({ path })).status, 200);
  assertRateLimited(await gw.request({ path: '/a/' }));
  assertRateLimited(await gw.request({ path: '//%61//x' }));
  assert.equal(gw.upstream.seen.length, 3);
  assert.deepEqual(
    gw.upstream.seen.map((s) => s.url),
    ['/a', '/a', '/a'],
  );
  // The rest of the host has no limit and is not touched by the login budget.
  assert.equal((await gw.request({ path: '/b' })).status, 200);
});

test("rate limit: one route's traffic does not spend another route's budget", async (t) => {
  const gw = await gateway(t, `${LIMITED('api', 'api.test.local')}${LIMITED('nocodb', 'nocodb.test.local')}`);
  for (let i = 0; i < 3; i++) assert.equal((await gw.request({ path: '/' })).status, 200);
  assertRateLimited(await gw.request({ path: '/' }));
  const other = await gw.request({ path: '/', host: 'nocodb.test.local' });
  assert.equal(other.status, 200);
  assert.match(String(other.headers.ratelimit), /^limit=3, remaining=2, reset=\d+$/);
  assert.equal(gw.upstream.seen.length, 4);
});

// From an adversarial review of the edge, against the real gateway: the attack is refused (or
// reaches only what the route maps to) and the upstream sees nothing it should not.
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
