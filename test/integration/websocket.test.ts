import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, type ClientOptions, type RawData } from 'ws';
import { firstStatus, rawTlsExchange, startTestGateway, type TestGateway } from '../helpers/harness.js';

/** Every wait in this file is bounded by this, so a regression fails instead of hanging. */
const WAIT_MS = 5_000;
const EXTRA_YAML = 'server: { shutdownTimeout: 1s }';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function gateway(t: TestContext, routes: string): Promise<TestGateway> {
  const gw = await startTestGateway(routes, {}, EXTRA_YAML);
  t.after(() => gw.close());
  return gw;
}

function route(extra = '', upstream = 'UPSTREAM'): string {
  return `
  - name: live
    host: api.test.local
    upstream: ${upstream}
    auth: none
${extra}`;
}

type Handshake = { kind: 'open'; ws: WebSocket } | { kind: 'refused'; status: number; body: string; headers: http.IncomingHttpHeaders };

/** A websocket client over wss to the gateway; resolves once opened or refused (never hangs). */
function connect(t: TestContext, gw: TestGateway, path: string, headers: Record<string, string> = {}): Promise<Handshake> {
  // `servername` goes through to tls.connect (SNI must match Host); ws's types leave it out.
  const options: ClientOptions & { servername: string } = {
    ca: gw.ca,
    servername: 'api.test.local',
    headers: { host: 'api.test.local', ...headers },
    handshakeTimeout: WAIT_MS,
  };
  const ws = new WebSocket(`wss://127.0.0.1:${gw.port}${path}`, options);
  t.after(() => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ kind: 'open', ws }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ kind: 'refused', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.once('error', reject);
    });
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no websocket message within the wait')), WAIT_MS);
    ws.once('message', (data: RawData) => {
      clearTimeout(timer);
      resolve(data.toString());
    });
  });
}

/** Asserts a refused handshake: the status and error code the client saw, and that the upstream saw nothing. */
function assertRefused(gw: TestGateway, result: Handshake, status: number, code: string | RegExp): void {
  assert.equal(result.kind, 'refused', 'the upgrade should have been refused');
  if (result.kind !== 'refused') return;
  assert.equal(result.status, status);
  const body = JSON.parse(result.body) as { error: { code: string; requestId: string } };
  if (typeof code === 'string') assert.equal(body.error.code, code);
  else assert.match(body.error.code, code);
  assert.equal(body.error.requestId, result.headers['x-request-id']);
  assert.equal(gw.upstream.seen.length, 0, 'the upstream must see nothing of a refused upgrade');
}

/** A raw websocket handshake over TLS, for shapes the ws client will not send. */
function rawUpgrade(gw: TestGateway, requestLine: string, upgrade = 'websocket'): Promise<string> {
  const bytes =
    `${requestLine}\r\nHost: api.test.local\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
  return rawTlsExchange(gw.port, gw.ca, bytes, { waitMs: 2_000 });
}

test('an upgrade on an auth: none route is proxied, messages flow both ways, and the upstream sees only gateway-set identity headers', async (t) => {
  const gw = await gateway(t, route());
  const result = await connect(t, gw, '/chat?room=1', {
    'x-forwarded-for': '203.0.113.66',
    'x-real-ip': '203.0.113.66',
    'x-request-id': 'spoofed-request-id-123',
    'x-gateway-user': 'admin',
    'x-gateway-roles': 'admin',
    'x-remote-user': 'admin',
  });
  assert.equal(result.kind, 'open');
  if (result.kind !== 'open') return;
  const { ws } = result;
  // Upstream → client: the echo upstream greets with what it received.
  const hello = JSON.parse(await nextMessage(ws)) as { path: string; headers: Record<string, string> };
  assert.equal(hello.path, '/chat?room=1');
  // Client → upstream → client.
  ws.send('ping-1');
  assert.equal(await nextMessage(ws), 'ping-1');
  ws.send('ping-2');
  assert.equal(await nextMessage(ws), 'ping-2');

  assert.equal(gw.upstream.seen.length, 1);
  const seen = gw.upstream.seen[0]!.headers;
  assert.equal(seen['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen['x-forwarded-proto'], 'https');
  assert.match(String(seen['x-request-id']), UUID);
  assert.notEqual(seen['x-request-id'], 'spoofed-request-id-123');
  for (const spoofed of ['x-real-ip', 'x-gateway-user', 'x-gateway-roles', 'x-remote-user']) assert.equal(seen[spoofed], undefined, `${spoofed} reached the upstream`);
  assert.equal(String(seen.upgrade).toLowerCase(), 'websocket');

  const closed = new Promise((r) => ws.once('close', r));
  ws.close();
  await closed;
});

test('a same-origin upgrade (Origin is the gateway host itself) is allowed', async (t) => {
  const gw = await gateway(t, route());
  // As a browser sends it: Host and Origin both carry the port.
  const result = await connect(t, gw, '/same', { host: `api.test.local:${gw.port}`, origin: `https://api.test.local:${gw.port}` });
  assert.equal(result.kind, 'open');
  assert.equal(gw.upstream.seen.length, 1);
  if (result.kind === 'open') result.ws.terminate();
});

test('IP allowlist runs on upgrades: 403 IP_DENIED, upstream saw no upgrade', async (t) => {
  const gw = await gateway(t, route('    ipAllowlist: [10.0.0.0/8]'));
  assertRefused(gw, await connect(t, gw, '/chat'), 403, 'IP_DENIED');
});

test('a foreign Origin is refused on upgrades (cross-site websocket hijacking): 403 CORS_ORIGIN_DENIED', async (t) => {
  const gw = await gateway(t, route('    cors: { origins: [https://app.test.local] }'));
  assertRefused(gw, await connect(t, gw, '/chat', { origin: 'https://evil.example' }), 403, 'CORS_ORIGIN_DENIED');
  // Also on a route without any CORS config: only the gateway's own origin may open a socket.
  const plain = await gateway(t, route());
  assertRefused(plain, await connect(t, plain, '/chat', { origin: 'https://evil.example' }), 403, 'CORS_ORIGIN_DENIED');
  assertRefused(plain, await connect(t, plain, '/chat', { origin: 'null' }), 403, 'CORS_ORIGIN_DENIED');
});

test('an auth: jwt route refuses an unauthenticated upgrade with 401', async (t) => {
  const gw = await gateway(
    t,
    `
  - name: live
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
`,
  );
  // No auth method is enabled in this harness: AUTH_UNAVAILABLE; with one, AUTH_REQUIRED.
  assertRefused(gw, await connect(t, gw, '/chat'), 401, /^AUTH_(UNAVAILABLE|REQUIRED)$/);
});

test('path tricks are refused on upgrades with 400 before anything reaches the upstream', async (t) => {
  const gw = await gateway(t, route());
  assertRefused(gw, await connect(t, gw, '/a%2Fb'), 400, 'PATH_REJECTED');
  assertRefused(gw, await connect(t, gw, '/a/..%2Fadmin'), 400, 'PATH_REJECTED');
  assertRefused(gw, await connect(t, gw, '/a/%252e%252e/admin'), 400, 'PATH_REJECTED');
  // Shapes the ws client (WHATWG URL) would clean up before sending: sent raw.
  for (const target of ['/a/../admin', '/a/%2e%2e/admin', '/a\\..\\admin', '/a/.%2E/admin']) {
    const raw = await rawUpgrade(gw, `GET ${target} HTTP/1.1`);
    assert.equal(firstStatus(raw), 400, `${target}: ${raw.split('\r\n')[0]}`);
    assert.doesNotMatch(raw, /^HTTP\/1\.1 101/);
  }
  assert.equal(gw.upstream.seen.length, 0);
});

test('a websocket: false route refuses upgrades with 400 UPGRADE_NOT_ALLOWED', async (t) => {
  const gw = await gateway(t, route('    websocket: false'));
  assertRefused(gw, await connect(t, gw, '/chat'), 400, 'UPGRADE_NOT_ALLOWED');
});

test('an Upgrade to anything but websocket, or a non-GET upgrade, is refused with 400', async (t) => {
  const gw = await gateway(t, route());
  for (const [line, proto] of [
    ['GET /x HTTP/1.1', 'h2c'],
    ['GET /x HTTP/1.1', 'TLS/1.2'],
    ['POST /x HTTP/1.1', 'websocket'],
  ] as const) {
    const raw = await rawUpgrade(gw, line, proto);
    assert.equal(firstStatus(raw), 400, `${line} Upgrade: ${proto}: ${raw.split('\r\n')[0]}`);
    assert.match(raw, /"code":"UPGRADE_NOT_ALLOWED"/);
  }
  assert.equal(gw.upstream.seen.length, 0);
});

test('the route rate limit applies to upgrades: the third of max 2 gets 429 and never reaches the upstream', async (t) => {
  const gw = await gateway(t, route('    rateLimit: { window: 1m, max: 2, by: ip }'));
  for (let i = 0; i < 2; i++) {
    const ok = await connect(t, gw, `/chat/${i}`);
    assert.equal(ok.kind, 'open');
    if (ok.kind === 'open') ok.ws.terminate();
  }
  const denied = await connect(t, gw, '/chat/2');
  assert.equal(denied.kind, 'refused');
  if (denied.kind !== 'refused') return;
  assert.equal(denied.status, 429);
  assert.equal((JSON.parse(denied.body) as { error: { code: string } }).error.code, 'RATE_LIMITED');
  assert.ok(Number(denied.headers['retry-after']) > 0, 'Retry-After is set');
  assert.deepEqual(
    gw.upstream.seen.map((s) => s.url),
    ['/chat/0', '/chat/1'],
  );
});

test('an upgrade to an upstream that refuses connections gets 502 UPSTREAM_UNAVAILABLE', async (t) => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  const gw = await gateway(t, route('', `http://127.0.0.1:${port}`));
  assertRefused(gw, await connect(t, gw, '/chat'), 502, 'UPSTREAM_UNAVAILABLE');
});

test('an upgrade to an upstream that never answers the handshake fails within the route timeout (504)', async (t) => {
  const hanging = http.createServer();
  const upgrades: string[] = [];
  const held: Duplex[] = [];
  hanging.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    upgrades.push(req.url ?? '');
    held.push(socket);
  });
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        // Upgrade sockets leave the server's tracking (and stay half-open): destroyed here.
        for (const socket of held) socket.destroy();
        hanging.close(() => r());
      }),
  );
  const gw = await gateway(t, route('    timeout: 300ms', `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`));
  const result = await connect(t, gw, '/chat');
  assert.equal(result.kind, 'refused');
  if (result.kind !== 'refused') return;
  assert.equal(result.status, 504);
  assert.equal((JSON.parse(result.body) as { error: { code: string } }).error.code, 'UPSTREAM_TIMEOUT');
  assert.deepEqual(upgrades, ['/chat']);
});

test('the route timeout covers only the handshake: an established websocket stays open while idle', async (t) => {
  const gw = await gateway(t, route('    timeout: 300ms'));
  const result = await connect(t, gw, '/idle');
  assert.equal(result.kind, 'open');
  if (result.kind !== 'open') return;
  const { ws } = result;
  await nextMessage(ws); // the upstream's greeting
  let closedEarly = false;
  ws.once('close', () => {
    closedEarly = true;
  });
  // Idle for well over the route timeout.
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(closedEarly, false);
  ws.send('still here');
  assert.equal(await nextMessage(ws), 'still here');
  ws.terminate();
});
