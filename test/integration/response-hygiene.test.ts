import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import WebSocket, { WebSocketServer, type ClientOptions } from 'ws';
import { httpsRequest, testCertificate, testConfig, startTestGateway, type TestGateway } from '../helpers/harness.js';
import { startGateway } from '../../src/server/start.js';
import { createMemoryLogger } from '../../src/log/logger.js';

/**
 * A real upstream that answers with the headers a test asks for (JSON in `x-answer`), as an
 * application behind the gateway would: absolute redirects built from what it sees, cookies
 * for its own host, banners. It records every request it got.
 */
async function startHeaderUpstream(): Promise<{ url: string; port: number; seen: http.IncomingHttpHeaders[]; wss: WebSocketServer; close(): Promise<void> }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    const answer = JSON.parse(String(req.headers['x-answer'] ?? '{}')) as Record<string, string | string[]>;
    const status = Number(answer[':status'] ?? 200);
    delete answer[':status'];
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': 2, ...answer });
    res.end('ok');
  });
  const wss = new WebSocketServer({ server });
  wss.on('headers', (headers) => headers.push('Server: uvicorn', 'X-Powered-By: Starlette', 'Set-Cookie: ws=1; Domain=127.0.0.1; Path=/'));
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    wss,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: none
  - name: prefixed
    host: app.test.local
    path: /crm
    stripPrefix: true
    upstream: UPSTREAM
    auth: none
  - name: banners-kept
    host: debug.test.local
    upstream: UPSTREAM
    auth: none
    responseHeaders: { keep: [server] }
`;

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const cert = await testCertificate();
  const upstream = await startHeaderUpstream();
  const running = await startGateway(testConfig(ROUTES, upstream.url, cert), { log: createMemoryLogger() });
  t.after(async () => {
    await running.shutdown();
    await upstream.close();
  });
  const ca = (await import('node:fs')).readFileSync(cert.cert, 'utf8');
  const get = (answer: Record<string, string | string[]>, host = 'api.test.local:8443', path = '/x') =>
    httpsRequest(running.ports.https, ca, { path, host, headers: { 'x-answer': JSON.stringify(answer) } });
  return { upstream, running, ca, get };
}

test('regression: an upstream redirect to its own address comes back naming the public origin (FastAPI trailing slash)', async (t) => {
  const { upstream, get } = await setup(t);
  const internal = upstream.url;
  for (const location of [`${internal}/v1/companies/`, `https://127.0.0.1:${upstream.port}/v1/companies/`, `http://localhost:${upstream.port}/v1/companies/`]) {
    const res = await get({ ':status': '307', location });
    assert.equal(res.status, 307);
    assert.equal(res.headers.location, 'https://api.test.local:8443/v1/companies/', location);
  }
  // An app that sees the public Host (preserveHost) but not TLS builds http://: the client's scheme is put back.
  const wrongScheme = await get({ ':status': '302', location: 'http://api.test.local:8443/next' });
  assert.equal(wrongScheme.headers.location, 'https://api.test.local:8443/next');
  const cl = await get({ 'content-location': `${internal}/v1/companies/7`, refresh: `3; url=${internal}/later` });
  assert.equal(cl.headers['content-location'], 'https://api.test.local:8443/v1/companies/7');
  assert.equal(cl.headers.refresh, '3; url=https://api.test.local:8443/later');
});

test('regression: a repeated Content-Location or Refresh never passes the upstream\'s internal address on (the repeats were joined after the rewritten first)', async (t) => {
  const { upstream, get } = await setup(t);
  const internal = upstream.url;
  const res = await get({ 'content-location': ['/v1/companies/7', `${internal}/v1/secret`], refresh: ['3; url=/later', `0; url=${internal}/internal`] });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'ok');
  // The upstream did send both (Node writes an array as repeated headers).
  assert.equal(upstream.seen.length, 1);
  assert.equal(res.headers['content-location'], '/v1/companies/7');
  assert.equal(res.headers.refresh, '3; url=/later');
  assert.ok(!JSON.stringify(res.headers).includes(`127.0.0.1:${upstream.port}`), JSON.stringify(res.headers));
});

test('redirects to other origins, look-alike hosts and relative ones pass untouched', async (t) => {
  const { upstream, get } = await setup(t);
  for (const location of [
    'https://login.example.org/cb',
    `http://127.0.0.1.evil.test:${upstream.port}/x`,
    `http://127.0.0.1:${upstream.port + 1}/x`,
    `https://evil.test/?next=${upstream.url}/`,
    '/v1/companies/',
    '../up',
  ]) {
    const res = await get({ ':status': '302', location });
    assert.equal(res.headers.location, location);
  }
});

test('under a stripped path prefix the prefix goes back on redirects and cookie paths', async (t) => {
  const { upstream, get } = await setup(t);
  const res = await get({ ':status': '302', location: `${upstream.url}/login`, 'set-cookie': 'sid=1; Path=/' }, 'app.test.local', '/crm/start');
  assert.equal(res.headers.location, 'https://app.test.local/crm/login');
  assert.deepEqual(res.headers['set-cookie'], ['sid=1; Path=/crm; Secure']);
  assert.equal(upstream.seen.at(-1)?.host, 'app.test.local');
});

test('upstream cookies are host-only and Secure; a parent-domain cookie cannot reach sibling hosts; the gateway cookie cannot be forged', async (t) => {
  const { get } = await setup(t);
  const res = await get({
    'set-cookie': ['refresh_token=r1; Path=/; HttpOnly; Domain=127.0.0.1', 'toss=1; Domain=.test.local; Path=/', '__Host-crmgw_at=forged; Path=/; Secure'],
  });
  assert.equal(res.status, 200);
  assert.deepEqual(res.headers['set-cookie'], ['refresh_token=r1; Path=/; HttpOnly; Secure', 'toss=1; Path=/; Secure']);
});

test('upstream banners (Server, X-Powered-By) do not reach clients unless the route keeps them', async (t) => {
  const { get } = await setup(t);
  const res = await get({ server: 'uvicorn', 'x-powered-by': 'Express', 'x-aspnet-version': '4.0', 'x-app': 'kept' });
  assert.equal(res.headers.server, undefined);
  assert.equal(res.headers['x-powered-by'], undefined);
  assert.equal(res.headers['x-aspnet-version'], undefined);
  assert.equal(res.headers['x-app'], 'kept');
  const kept = await get({ server: 'uvicorn', 'x-powered-by': 'Express' }, 'debug.test.local');
  assert.equal(kept.headers.server, 'uvicorn');
  assert.equal(kept.headers['x-powered-by'], undefined);
});

test('the upstream learns the public origin: Host, X-Forwarded-Host/-Proto/-Port and RFC 7239 Forwarded', async (t) => {
  const { upstream, get } = await setup(t);
  await get({});
  const h = upstream.seen.at(-1) ?? {};
  assert.equal(h.host, 'api.test.local:8443');
  assert.equal(h['x-forwarded-host'], 'api.test.local:8443');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-port'], '8443');
  assert.equal(h.forwarded, 'for=127.0.0.1;host="api.test.local:8443";proto=https');
});

test('a websocket handshake answer gets the same hygiene: no banner, host-only Secure cookie', async (t) => {
  const { running, ca } = await setup(t);
  // `servername` goes through to tls.connect (SNI must match Host); ws's types leave it out.
  const options: ClientOptions & { servername: string } = { headers: { host: 'api.test.local' }, servername: 'api.test.local', ca };
  const ws = new WebSocket(`wss://127.0.0.1:${running.ports.https}/ws`, options);
  const upgraded = once(ws, 'upgrade') as Promise<[http.IncomingMessage]>;
  const opened = once(ws, 'open');
  const [res] = await upgraded;
  await opened;
  assert.equal(res.headers.server, undefined);
  assert.equal(res.headers['x-powered-by'], undefined);
  assert.deepEqual(res.headers['set-cookie'], ['ws=1; Path=/; Secure']);
  assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  ws.send('ping');
  const [msg] = (await once(ws, 'message')) as [Buffer];
  assert.equal(msg.toString(), 'ping');
  ws.close();
  await once(ws, 'close');
});

// From an adversarial review of the edge, against the real gateway: the attack is refused (or
// reaches only what the route maps to) and the upstream sees nothing it should not.
describe('hop-by-hop headers named by the upstream (from the review of the edge)', () => {
  type After = { after(fn: () => Promise<void>): void };

  async function gateway(t: After, routes: string, env: Record<string, string> = {}): Promise<TestGateway> {
    const gw = await startTestGateway(routes, env);
    t.after(() => gw.close());
    return gw;
  }

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
});


