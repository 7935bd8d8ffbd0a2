import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { openRequest, rawTlsExchange, readBody, startTestGateway, testCertificate, testConfig, type TestGateway } from '../helpers/harness.js';
import { testCa } from '../helpers/deployment.js';
import { createForwarder } from '../../src/proxy/forwarder.js';
import { Reply } from '../../src/reply.js';
import type { RequestContext } from '../../src/context.js';
import type { CompiledRoute } from '../../src/routes.js';

/**
 * The forwarding core (undici, src/proxy/exchange.ts) where it differs from a plain pipe: the
 * request's framing as the client sent it, 1xx answers, repeated headers, early answers,
 * activity on either side counting against the route timeout, HTTPS upstreams verified.
 */

/** Every wait in this file is bounded by this, so a regression fails instead of hanging. */
const WAIT_MS = 5_000;
const HOST = 'Host: api.test.local\r\n';

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function listen(t: TestContext, server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        if (server instanceof http.Server) server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** A plain HTTP upstream with the behaviour a test needs. */
async function startUpstream(t: TestContext, handler: http.RequestListener): Promise<string> {
  return `http://127.0.0.1:${await listen(t, http.createServer(handler))}`;
}

/** An upstream that answers every request with exactly these bytes (whatever the request was). */
async function rawUpstream(t: TestContext, answer: string): Promise<string> {
  const server = net.createServer((socket) => {
    socket.once('data', () => socket.end(answer));
    socket.on('error', () => socket.destroy());
  });
  return `http://127.0.0.1:${await listen(t, server)}`;
}

async function gateway(t: TestContext, upstream: string, extra = ''): Promise<TestGateway> {
  const gw = await startTestGateway(
    `
  - name: svc
    host: api.test.local
    upstream: ${upstream}
    auth: none
${extra}`,
    {},
    'server: { shutdownTimeout: 1s }',
  );
  t.after(() => gw.close());
  return gw;
}

test("the request body goes upstream framed as the client framed it: chunked stays chunked, Content-Length as given", async (t) => {
  const gw = await startTestGateway(`
  - name: svc
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`);
  t.after(() => gw.close());

  await t.test('chunked, the whole request in one write (the body is read before the upstream request starts)', async () => {
    gw.upstream.seen.length = 0;
    const raw = await rawTlsExchange(gw.port, gw.ca, `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 200 /);
    const seen = gw.upstream.seen[0];
    assert.equal(gw.upstream.seen.length, 1);
    assert.equal(seen?.headers['transfer-encoding'], 'chunked');
    assert.equal(seen?.headers['content-length'], undefined);
    assert.equal(seen?.body, 'hello world');
  });

  await t.test('Content-Length', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ method: 'PUT', path: '/x', headers: { 'content-type': 'text/plain', 'content-length': '11' }, body: 'hello world' });
    assert.equal(res.status, 200);
    const seen = gw.upstream.seen[0];
    assert.equal(seen?.headers['content-length'], '11');
    assert.equal(seen?.headers['transfer-encoding'], undefined);
    assert.equal(seen?.body, 'hello world');
  });

  await t.test('a GET with a Content-Length body: the body stays that request\'s body', async () => {
    gw.upstream.seen.length = 0;
    const inner = `GET /smuggled HTTP/1.1\r\n${HOST}\r\n`;
    const raw = await rawTlsExchange(gw.port, gw.ca, `GET /x HTTP/1.1\r\n${HOST}Content-Length: ${inner.length}\r\nConnection: close\r\n\r\n${inner}`);
    assert.match(raw, /^HTTP\/1\.1 200 /);
    await sleep(100);
    assert.deepEqual(
      gw.upstream.seen.map((s) => [s.method, s.url, s.headers['content-length'], s.body]),
      [['GET', '/x', String(inner.length), inner]],
    );
  });

  await t.test('an empty POST still says Content-Length: 0', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ method: 'POST', path: '/x', headers: { 'content-length': '0' } });
    assert.equal(res.status, 200);
    assert.equal(gw.upstream.seen[0]?.headers['content-length'], '0');
  });
});

test('a 103 Early Hints before the answer is dropped (as before); the final answer goes through whole', async (t) => {
  const up = await startUpstream(t, (_req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    setTimeout(() => res.end('final'), 20);
  });
  const gw = await gateway(t, up);
  const { req, response } = openRequest(gw, { path: '/page' });
  const informational: number[] = [];
  req.on('information', (info: { statusCode: number }) => informational.push(info.statusCode));
  req.end();
  const res = await within(response, WAIT_MS, 'the answer');
  assert.equal(res.statusCode, 200);
  assert.equal((await readBody(res)).toString(), 'final');
  assert.deepEqual(informational, []);
});

test("an upstream's 100 Continue it was never asked for: a clean 502 UPSTREAM_BAD_RESPONSE, never a hang (undici refuses it; http-proxy skipped it)", async (t) => {
  const up = await rawUpstream(t, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const gw = await gateway(t, up);
  const res = await within(gw.request({ path: '/x' }), WAIT_MS, 'the answer');
  assert.equal(res.status, 502);
  assert.equal(res.json<{ error: { code: string } }>().error.code, 'UPSTREAM_BAD_RESPONSE');
});

test('repeated upstream headers are read as Node reads them: the first Location (rewritten), every Set-Cookie, others joined', async (t) => {
  let port = 0;
  const server = net.createServer((socket) => {
    socket.once('data', () =>
      socket.end(
        [
          'HTTP/1.1 302 Found',
          `Location: http://127.0.0.1:${port}/first`,
          `Location: http://127.0.0.1:${port}/second`,
          'Set-Cookie: a=1; Domain=127.0.0.1; Path=/',
          'Set-Cookie: b=2; Path=/',
          'X-Thing: one',
          'X-Thing: two',
          'Content-Length: 0',
          'Connection: close',
          '',
          '',
        ].join('\r\n'),
      ),
    );
    socket.on('error', () => socket.destroy());
  });
  port = await listen(t, server);
  const gw = await gateway(t, `http://127.0.0.1:${port}`);
  const res = await gw.request({ path: '/x' });
  assert.equal(res.status, 302);
  assert.equal(res.headers.location, 'https://api.test.local/first');
  assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/; Secure', 'b=2; Path=/; Secure']);
  assert.equal(res.headers['x-thing'], 'one, two');
});

test('HEAD and 204 answers carry no body; HEAD keeps the upstream Content-Length', async (t) => {
  const up = await startUpstream(t, (req, res) => {
    if (req.url === '/none') {
      res.writeHead(204).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 10 });
    res.end(req.method === 'HEAD' ? undefined : '0123456789');
  });
  const gw = await gateway(t, up);
  const head = await gw.request({ method: 'HEAD', path: '/x' });
  assert.deepEqual([head.status, head.headers['content-length'], head.body], [200, '10', '']);
  const get = await gw.request({ path: '/x' });
  assert.deepEqual([get.status, get.body], [200, '0123456789']);
  const none = await gw.request({ path: '/none' });
  assert.deepEqual([none.status, none.body], [204, '']);
});

test('an upstream that answers before the upload ends: the client gets that answer and its connection stays usable', async (t) => {
  const up = await startUpstream(t, (req, res) => {
    if (req.url === '/early') {
      res.writeHead(401, { 'content-type': 'text/plain', 'content-length': 4 });
      res.end('nope');
      return;
    }
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const gw = await gateway(t, up);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const { req, response } = openRequest(gw, { method: 'POST', path: '/early', headers: { 'transfer-encoding': 'chunked' }, agent });
  req.write('part one;');
  const res = await within(response, WAIT_MS, 'the early answer');
  assert.equal(res.statusCode, 401);
  assert.equal((await readBody(res)).toString(), 'nope');
  req.end('part two');
  await sleep(50);
  const next = openRequest(gw, { path: '/after', agent });
  next.req.end();
  const after = await within(next.response, WAIT_MS, 'the next answer on the same connection');
  assert.equal(after.statusCode, 200);
  assert.equal((await readBody(after)).toString(), 'ok');
});

test('the route timeout is inactivity on either side: a steady upload longer than it passes, a slow reader is not the upstream timing out', async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024, 0x61);
  const up = await startUpstream(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
        res.end(big);
      } else {
        res.end(`got ${Buffer.concat(chunks).length}`);
      }
    });
  });
  const gw = await gateway(t, up, '    timeout: 300ms');

  await t.test('an upload sending a chunk every 100 ms for 1 s', async () => {
    const { req, response } = openRequest(gw, { method: 'POST', path: '/upload', headers: { 'transfer-encoding': 'chunked' } });
    for (let i = 0; i < 10; i++) {
      req.write('x'.repeat(100));
      await sleep(100);
    }
    req.end();
    const res = await within(response, WAIT_MS, 'the answer');
    assert.equal(res.statusCode, 200);
    assert.equal((await readBody(res)).toString(), 'got 1000');
  });

  await t.test('a client that stops reading a 4 MB answer for 1 s', async () => {
    const { req, response } = openRequest(gw, { path: '/big' });
    req.end();
    const res = await within(response, WAIT_MS, 'the headers');
    assert.equal(res.statusCode, 200);
    res.pause();
    await sleep(1_000);
    const body = await within(readBody(res), WAIT_MS, 'the whole body');
    assert.equal(body.length, big.length);
  });
});

test('HTTPS upstreams are verified: one whose certificate the gateway does not trust is refused with 502, never forwarded to', async (t) => {
  const leaf = testCa().issue(['localhost'], 2);
  let reached = 0;
  const server = https.createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (_req, res) => {
    reached++;
    res.end('secret');
  });
  const port = await listen(t, server);
  const gw = await gateway(t, `https://localhost:${port}`, '    preserveHost: false');
  const res = await gw.request({ path: '/x' });
  assert.equal(res.status, 502);
  assert.equal(res.json<{ error: { code: string } }>().error.code, 'UPSTREAM_UNAVAILABLE');
  assert.equal(reached, 0);
  const entry = gw.log.accessEntries.find((e) => e.path === '/x');
  assert.match(String(entry?.detail), /certificate/i);
});

test('an HTTPS upstream signed by a CA the forwarder trusts is forwarded to, checked by the upstream URL host name whatever Host is sent', async (t) => {
  const ca = testCa();
  const leaf = ca.issue(['localhost'], 2);
  const server = https.createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (req, res) => {
    res.end(`tls ${req.headers.host} ${req.url}`);
  });
  const port = await listen(t, server);
  const cert = await testCertificate();
  const route = (name: string, preserveHost: boolean): CompiledRoute => {
    const config = testConfig(`  - { name: ${name}, host: api.test.local, upstream: "https://localhost:${port}/base", auth: none, preserveHost: ${preserveHost} }`, '', cert).routes[0];
    assert.ok(config);
    return { name, config, target: new URL(config.upstream), steps: [], upgradeSteps: [], ownPageSteps: [], forwardAuthSteps: [] };
  };
  const byName = route('by-name', false);
  const byPublicHost = route('public-host', true);
  const forwarder = createForwarder(undefined, { upstreamTls: { ca: readFileSync(ca.caCert) } });
  t.after(() => forwarder.close());
  // A bare front: the forwarder alone, with the context the pipeline would have built.
  const front = http.createServer((req, res) => {
    const id = randomUUID();
    const ctx = { id, startedAt: performance.now(), kind: 'http', req, secure: false, servername: undefined, path: '/x', target: { host: 'api.test.local', rawPath: '/x', query: 'q=1' }, reply: new Reply(id, false, { hsts: undefined }), bytesIn: 0, bytesOut: 0 } as RequestContext;
    forwarder.web(ctx, req.url === '/public' ? byPublicHost : byName, res, (err) => ctx.reply.refuse(res, err, false));
  });
  const frontPort = await listen(t, front);
  const get = (path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: frontPort, path, headers: { host: 'api.test.local' } }, (res) => {
        void readBody(res).then((b) => resolve({ status: res.statusCode ?? 0, body: b.toString() }), reject);
      }).on('error', reject);
    });
  assert.deepEqual(await get('/'), { status: 200, body: `tls localhost:${port} /base/x?q=1` });
  // preserveHost: the public Host is sent, but the name checked is the upstream URL's host (issue 15,
  // route upstreamTls: never the Host header), which the upstream's certificate carries.
  assert.deepEqual(await get('/public'), { status: 200, body: 'tls api.test.local /base/x?q=1' });
});

test('regression: a client that stops reading is cut off after server.sendTimeout, and its upstream request freed (it held a pooled connection for as long as it stayed connected)', async (t) => {
  let upstreamClosed = false;
  let requests = 0;
  const upstream = net.createServer((sock) => {
    sock.once('data', () => {
      requests++;
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n');
      const chunk = Buffer.alloc(64 * 1024, 97);
      const pump = (): void => {
        while (!sock.destroyed && sock.write(chunk));
      };
      sock.on('drain', pump);
      pump();
    });
    sock.on('close', () => (upstreamClosed = true));
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.after(() => upstream.close());
  const port = (upstream.address() as AddressInfo).port;
  const gw = await startTestGateway(`
  - name: api
    host: api.test.local
    upstream: http://127.0.0.1:${port}
    auth: none
    timeout: 300ms
`, {}, 'server: { sendTimeout: 800ms }');
  t.after(() => gw.close());
  const tls = await import('node:tls');
  const socket = tls.connect({ host: '127.0.0.1', port: gw.port, ca: gw.ca, servername: 'api.test.local' });
  t.after(() => socket.destroy());
  await new Promise<void>((r) => socket.once('secureConnect', () => r()));
  socket.on('error', () => undefined);
  socket.write('GET /big HTTP/1.1\r\nHost: api.test.local\r\n\r\n');
  await new Promise<void>((r) => socket.once('data', () => r()));
  socket.pause();
  // Not before the send timeout: the route timeout (300 ms) is the upstream's, not the client's.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(upstreamClosed, false, 'a slow client is not cut by the route timeout');
  // (A paused socket never emits 'close' itself: the gateway's side is what is checked.)
  await waitUntil(() => upstreamClosed, 'the stalled client cut off and its upstream request torn down');
  await waitUntil(() => gw.log.accessEntries.some((e) => e.path === '/big'), 'the access line');
  assert.equal(requests, 1);
  const line = gw.log.accessEntries.find((e) => e.path === '/big');
  assert.equal(line?.status, 200);
  assert.equal(line?.outcome, 'aborted');
});

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
