import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rawTlsExchange, startTestGateway, type TestGateway } from '../helpers/harness.js';
import type { SeenRequest } from '../../src/demo/echo-upstream.js';

const PUBLIC_ROUTE = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function gateway(t: { after(fn: () => Promise<void>): void }, routes = PUBLIC_ROUTE, env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startTestGateway(routes, env);
  t.after(() => gw.close());
  return gw;
}

function onlySeen(gw: TestGateway): SeenRequest {
  assert.equal(gw.upstream.seen.length, 1, 'exactly one request reached the upstream');
  return gw.upstream.seen[0] as SeenRequest;
}

/** How many times the upstream received a header, whatever its spelling. */
function rawCount(seen: SeenRequest, name: string): number {
  let n = 0;
  for (let i = 0; i < seen.rawHeaders.length; i += 2) if (seen.rawHeaders[i]?.toLowerCase() === name) n++;
  return n;
}

function rawNames(seen: SeenRequest): string[] {
  return seen.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
}

const SPOOFED_FORWARDING = {
  'X-Forwarded-For': '6.6.6.6, 7.7.7.7',
  'X-Forwarded-Proto': 'http',
  'X-Forwarded-Host': 'evil.example',
  'X-Forwarded-Port': '80',
  Forwarded: 'for=6.6.6.6;proto=http;host=evil.example',
  'X-Real-IP': '6.6.6.6',
  'X-Original-URL': '/admin',
  'X-Rewrite-URL': '/admin',
  'True-Client-IP': '6.6.6.6',
  'X-Client-IP': '6.6.6.6',
  'CF-Connecting-IP': '6.6.6.6',
  X_Forwarded_For: '6.6.6.6',
  X_Real_IP: '6.6.6.6',
};

test('from an untrusted peer, client forwarding headers are dropped and the gateway sets its own', async (t) => {
  const gw = await gateway(t);
  const res = await gw.request({ path: '/who', headers: SPOOFED_FORWARDING });
  assert.equal(res.status, 200);
  const seen = onlySeen(gw);
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.equal(seen.headers['x-forwarded-host'], 'api.test.local');
  // The gateway's own X-Forwarded-Port and RFC 7239 Forwarded replace the client's spoofed ones.
  assert.equal(seen.headers['x-forwarded-port'], '443');
  assert.equal(seen.headers.forwarded, 'for=127.0.0.1;host="api.test.local";proto=https');
  for (const name of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded']) assert.equal(rawCount(seen, name), 1, name);
  for (const name of ['x-real-ip', 'x-original-url', 'x-rewrite-url', 'true-client-ip', 'x-client-ip', 'cf-connecting-ip']) {
    assert.equal(seen.headers[name], undefined, name);
  }
  assert.deepEqual(
    rawNames(seen).filter((n) => n.includes('_')),
    [],
    'no underscore twins reach the upstream',
  );
  const entry = gw.log.accessEntries.find((e) => e.requestId === res.headers['x-request-id']);
  assert.equal(entry?.clientIp, '127.0.0.1', 'the client is the socket peer');
});

test('from an untrusted peer, a client X-Request-Id is replaced', async (t) => {
  const gw = await gateway(t);
  const res = await gw.request({ path: '/id', headers: { 'X-Request-Id': 'client-chosen-id-0001' } });
  assert.equal(res.status, 200);
  const id = String(res.headers['x-request-id']);
  assert.match(id, UUID);
  assert.equal(onlySeen(gw).headers['x-request-id'], id);
  assert.equal(rawCount(onlySeen(gw), 'x-request-id'), 1);
});

test('with TRUSTED_PROXIES=127.0.0.1/32 the X-Forwarded-For chain is honoured and the proxy request id kept', async (t) => {
  const gw = await gateway(t, PUBLIC_ROUTE, { TRUSTED_PROXIES: '127.0.0.1/32' });

  await t.test('the client is the rightmost untrusted hop; the chain is extended with the peer', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/chain', headers: { 'X-Forwarded-For': '203.0.113.7, 10.9.8.7', 'X-Request-Id': 'edge-proxy-id-0001' } });
    assert.equal(res.status, 200);
    const seen = onlySeen(gw);
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 10.9.8.7, 127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-request-id'], 'edge-proxy-id-0001');
    assert.equal(res.headers['x-request-id'], 'edge-proxy-id-0001');
    const entry = gw.log.accessEntries.find((e) => e.requestId === 'edge-proxy-id-0001');
    assert.equal(entry?.clientIp, '10.9.8.7');
    assert.equal(entry?.peerIp, '127.0.0.1');
  });

  await t.test('trusted hops on the right are skipped', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/chain2', headers: { 'X-Forwarded-For': '198.51.100.4, 127.0.0.1', 'X-Request-Id': 'edge-proxy-id-0002' } });
    assert.equal(res.status, 200);
    assert.equal(gw.log.accessEntries.find((e) => e.requestId === 'edge-proxy-id-0002')?.clientIp, '198.51.100.4');
  });

  await t.test('a malformed request id from the proxy is replaced', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/badid', headers: { 'X-Request-Id': 'short' } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['x-request-id']), UUID);
    assert.equal(onlySeen(gw).headers['x-request-id'], res.headers['x-request-id']);
  });

  await t.test('other forwarding headers from the proxy are still not passed on', async () => {
    gw.upstream.seen.length = 0;
    await gw.request({ path: '/fw', headers: { Forwarded: 'for=6.6.6.6', 'X-Real-IP': '6.6.6.6', 'X-Original-URL': '/admin', 'X-Forwarded-Host': 'evil.example' } });
    const seen = onlySeen(gw);
    // The proxy's Forwarded is replaced by one built from the same hops as X-Forwarded-For.
    assert.equal(seen.headers.forwarded, 'for=127.0.0.1, for=127.0.0.1;host="api.test.local";proto=https');
    assert.equal(seen.headers['x-real-ip'], undefined);
    assert.equal(seen.headers['x-original-url'], undefined);
    assert.equal(seen.headers['x-forwarded-host'], 'api.test.local');
  });
});

test('identity headers from clients never reach the upstream, in any spelling', async (t) => {
  const gw = await gateway(t);
  const res = await gw.request({
    path: '/me',
    headers: {
      'X-Gateway-User': 'admin',
      'x-gateway-roles': 'admin',
      'X-Gateway-Auth': 'jwt',
      X_Gateway_User: 'admin',
      'X-Forwarded-User': 'admin',
      'X-Forwarded-Email': 'admin@example.com',
      'X-Auth-Request-User': 'admin',
      'X-Remote-User': 'admin',
      'Remote-User': 'admin',
      Remote_User: 'admin',
      'X-User': 'admin',
      'X-WebAuth-User': 'admin',
    },
  });
  assert.equal(res.status, 200);
  const names = rawNames(onlySeen(gw));
  assert.deepEqual(
    names.filter((n) => /gateway|user|remote|auth-request|email/.test(n.replace(/_/g, '-'))),
    [],
  );
});

test('hop-by-hop headers and those the client names in Connection are removed', async (t) => {
  const gw = await gateway(t);
  const res = await gw.request({
    path: '/hop',
    headers: {
      Connection: 'keep-alive, x-secret, X_Other_Secret',
      'Keep-Alive': 'timeout=30',
      TE: 'trailers',
      'Proxy-Connection': 'keep-alive',
      Upgrade: 'h2c',
      'Proxy-Authorization': 'Basic dXNlcjpwYXNz',
      'X-Secret': 'named in Connection',
      'X-Other-Secret': 'named in Connection with an underscore',
      'X-Kept': 'yes',
    },
  });
  assert.equal(res.status, 200);
  const seen = onlySeen(gw);
  for (const name of ['keep-alive', 'te', 'proxy-connection', 'upgrade', 'proxy-authorization', 'x-secret', 'x-other-secret', 'trailer']) {
    assert.equal(seen.headers[name], undefined, name);
  }
  assert.notEqual(seen.headers.connection, 'keep-alive, x-secret, X_Other_Secret', 'the client Connection header is not forwarded');
  assert.equal(seen.headers['x-kept'], 'yes');
});

test('Connection cannot name away the headers the gateway sets', async (t) => {
  const gw = await gateway(t);
  const res = await gw.request({
    path: '/conn',
    headers: { Connection: 'x-forwarded-for, x-request-id, host, x-forwarded-proto, x-forwarded-host, x-forwarded-port, forwarded, content-length' },
    method: 'POST',
    body: 'kept body',
  });
  assert.equal(res.status, 200);
  const seen = onlySeen(gw);
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.equal(seen.headers['x-forwarded-host'], 'api.test.local');
  assert.equal(seen.headers['x-request-id'], res.headers['x-request-id']);
  // preserveHost is on by default: the upstream builds its URLs from the public Host.
  assert.equal(seen.headers.host, 'api.test.local');
  assert.equal(seen.headers['x-forwarded-port'], '443');
  assert.match(String(seen.headers.forwarded), /;proto=https$/);
  assert.equal(seen.headers['content-length'], '9');
  assert.equal(seen.body, 'kept body');
});

test('a Proxy: header (httpoxy) is dropped', async (t) => {
  const gw = await gateway(t);
  await gw.request({ path: '/cgi', headers: { Proxy: 'http://evil.example:8080' } });
  assert.equal(onlySeen(gw).headers.proxy, undefined);
});

test('proxied responses get HSTS, nosniff, Referrer-Policy and X-Request-Id, and no CSP of the gateway', async (t) => {
  const gw = await gateway(t);
  const res = await gw.request({ path: '/sec' });
  assert.equal(res.status, 200);
  assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(res.headers['referrer-policy'], 'strict-origin-when-cross-origin');
  assert.equal(res.headers['x-request-id'], onlySeen(gw).headers['x-request-id']);
  assert.equal(res.headers['content-security-policy'], undefined, 'the gateway adds no CSP to an upstream page');
});

test('regression: a client Connection: close is honoured on proxied responses (http-proxy answered keep-alive)', async (t) => {
  const gw = await gateway(t);
  const started = Date.now();
  const raw = await rawTlsExchange(gw.port, gw.ca, 'GET /close HTTP/1.1\r\nHost: api.test.local\r\nConnection: close\r\n\r\n', { waitMs: 3000 });
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.match(raw, /\r\nconnection: close\r\n/i);
  assert.ok(Date.now() - started < 2000, 'the gateway closed the connection instead of waiting for the client');
  const keep = await gw.request({ path: '/keep', headers: { Connection: 'keep-alive' } });
  assert.equal(keep.headers.connection, 'keep-alive');
});

/** A real upstream that sends its own security headers, like Metabase does. */
async function startCspUpstream(t: { after(fn: () => Promise<void>): void }): Promise<{ url: string; csp: string }> {
  const csp = "default-src 'self'; script-src 'self' 'sha256-AbCdEf0123456789='; frame-ancestors 'self'";
  const server = http.createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': csp,
      'referrer-policy': 'same-origin',
      'x-powered-by': 'Jetty',
      server: 'upstream/1.0',
      'x-upstream-secret': 'internal',
      'cache-control': 'public, max-age=60',
    });
    res.end('<!doctype html><p>upstream page</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, csp };
}

test("an upstream's own Content-Security-Policy passes unchanged, once", async (t) => {
  const upstream = await startCspUpstream(t);
  const gw = await gateway(
    t,
    `
  - name: metabase
    host: metabase.test.local
    upstream: ${upstream.url}
    auth: none
`,
  );
  const res = await gw.request({ path: '/dashboard', host: 'metabase.test.local', headers: { accept: 'text/html' } });
  assert.equal(res.status, 200);
  // Two CSP headers would arrive joined with ", ": equality proves there is exactly one.
  assert.equal(res.headers['content-security-policy'], upstream.csp);
  assert.equal(res.headers['referrer-policy'], 'same-origin', "the upstream's own Referrer-Policy is kept");
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(res.headers['x-powered-by'], undefined);
  assert.ok(res.headers['strict-transport-security']);
  assert.ok(res.headers['x-request-id']);
});

test('route responseHeaders set and remove apply to proxied responses', async (t) => {
  const upstream = await startCspUpstream(t);
  const gw = await gateway(
    t,
    `
  - name: metabase
    host: metabase.test.local
    upstream: ${upstream.url}
    auth: none
    responseHeaders:
      set:
        X-Frame-Options: DENY
        Cache-Control: no-store
        Referrer-Policy: no-referrer
      remove: [Server, X-Upstream-Secret]
`,
  );
  const res = await gw.request({ path: '/', host: 'metabase.test.local' });
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-frame-options'], 'DENY');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['referrer-policy'], 'no-referrer');
  assert.equal(res.headers.server, undefined);
  assert.equal(res.headers['x-upstream-secret'], undefined);
  assert.equal(res.headers['content-security-policy'], upstream.csp);
});

test('HSTS_PRELOAD=true adds preload to HSTS on proxied and own responses', async (t) => {
  const gw = await gateway(t, PUBLIC_ROUTE, { HSTS_PRELOAD: 'true' });
  const proxied = await gw.request({ path: '/' });
  assert.equal(proxied.status, 200);
  assert.equal(proxied.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains; preload');
  const own = await gw.request({ path: '/', host: 'unknown.test.local' });
  assert.equal(own.status, 404);
  assert.equal(own.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains; preload');
});
