import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { openRequest, readBody, startTestGateway, type TestGateway } from '../helpers/harness.js';

/** Every wait in this file is bounded by this, so a regression fails instead of hanging. */
const WAIT_MS = 5_000;
/** Short drain on close: a test that leaves a request in flight must not stall its cleanup. */
const EXTRA_YAML = 'server: { shutdownTimeout: 1s }';

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `check` until it holds; fails after `ms`. */
async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A promise and the function that resolves it. */
function signal<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface Upstream {
  readonly server: http.Server;
  readonly url: string;
  /** TCP connections the upstream accepted. */
  connections: number;
}

/** A plain HTTP upstream with the behaviour a test needs, closed after the test. */
async function startUpstream(t: TestContext, handler: http.RequestListener): Promise<Upstream> {
  const server = http.createServer(handler);
  const up = { server, url: '', connections: 0 };
  server.on('connection', () => {
    up.connections++;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return up;
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function gateway(t: TestContext, routes: string): Promise<TestGateway> {
  const gw = await startTestGateway(routes, {}, EXTRA_YAML);
  t.after(() => gw.close());
  return gw;
}

function route(upstream: string, extra = ''): string {
  return `
  - name: svc
    host: api.test.local
    upstream: ${upstream}
    auth: none
${extra}`;
}

interface ErrorJson {
  error: { code: string; message: string; requestId: string };
}

test('an upstream that refuses connections gives 502 UPSTREAM_UNAVAILABLE as JSON with the request id', async (t) => {
  const port = await closedPort();
  const gw = await gateway(t, route(`http://127.0.0.1:${port}`));
  const res = await gw.request({ path: '/x', headers: { accept: 'application/json' } });
  assert.equal(res.status, 502);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json<ErrorJson>();
  assert.equal(body.error.code, 'UPSTREAM_UNAVAILABLE');
  assert.equal(body.error.requestId, res.headers['x-request-id']);
  assert.doesNotMatch(res.body, /socket hang up|ECONNREFUSED|127\.0\.0\.1/i);
});

test('an upstream that hangs up without answering gives 502 UPSTREAM_UNAVAILABLE, not "socket hang up"', async (t) => {
  const up = await startUpstream(t, (req) => req.socket.destroy());
  const gw = await gateway(t, route(up.url));
  const res = await gw.request({ path: '/x' });
  assert.equal(res.status, 502);
  assert.equal(res.json<ErrorJson>().error.code, 'UPSTREAM_UNAVAILABLE');
  assert.doesNotMatch(res.body, /socket hang up|ECONNRESET/i);
});

test('an upstream sending a malformed response gives 502 UPSTREAM_BAD_RESPONSE', async (t) => {
  const garbage = net.createServer((socket) => {
    socket.once('data', () => socket.end('THIS IS NOT HTTP\r\n\r\n'));
  });
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => garbage.close(() => r())));
  const gw = await gateway(t, route(`http://127.0.0.1:${(garbage.address() as AddressInfo).port}`));
  const res = await gw.request({ path: '/x' });
  assert.equal(res.status, 502);
  const body = res.json<ErrorJson>();
  assert.equal(body.error.code, 'UPSTREAM_BAD_RESPONSE');
  assert.equal(body.error.requestId, res.headers['x-request-id']);
  assert.doesNotMatch(res.body, /HPE_|THIS IS NOT HTTP/);
});

test('an upstream slower than the route timeout gives 504 UPSTREAM_TIMEOUT and the upstream request is torn down', async (t) => {
  const upstreamClosed = signal();
  const up = await startUpstream(t, (req) => {
    // Never answers; only notes when the gateway gives up on it.
    req.socket.once('close', () => upstreamClosed.resolve());
  });
  const gw = await gateway(t, route(up.url, '    timeout: 300ms'));
  const res = await within(gw.request({ path: '/slow' }), WAIT_MS, 'the 504');
  assert.equal(res.status, 504);
  assert.equal(res.json<ErrorJson>().error.code, 'UPSTREAM_TIMEOUT');
  await within(upstreamClosed.promise, WAIT_MS, 'the upstream connection to close');
});

test('a request with Expect: 100-continue still gets the route timeout (http-proxy skips its proxyReq hook for it)', async (t) => {
  const seenExpect: (string | undefined)[] = [];
  const up = await startUpstream(t, (req) => {
    seenExpect.push(req.headers.expect);
  });
  const gw = await gateway(t, route(up.url, '    timeout: 300ms'));
  const res = await within(
    gw.request({ method: 'POST', path: '/upload', headers: { expect: '100-continue', 'content-type': 'text/plain' }, body: 'hello' }),
    WAIT_MS,
    'the 504 for an Expect: 100-continue request',
  );
  assert.equal(res.status, 504);
  assert.equal(res.json<ErrorJson>().error.code, 'UPSTREAM_TIMEOUT');
  // The gateway met the expectation itself; the upstream gets a plain request.
  assert.deepEqual(seenExpect, [undefined]);
});

test('the route timeout is inactivity, not total time: a 3 s stream with a chunk every 500 ms passes a 2 s timeout', async (t) => {
  const up = await startUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const timer = setInterval(() => {
      n++;
      if (n < 6) res.write(`chunk${n};`);
      else {
        clearInterval(timer);
        res.end(`chunk${n};`);
      }
    }, 500);
    res.once('close', () => clearInterval(timer));
  });
  const gw = await gateway(t, route(up.url, '    timeout: 2s'));
  const res = await within(gw.request({ path: '/stream' }), WAIT_MS * 2, 'the streamed response');
  assert.equal(res.status, 200);
  assert.equal(res.body, 'chunk1;chunk2;chunk3;chunk4;chunk5;chunk6;');
});

test('response bodies stream: the client reads the first chunk while the upstream is still holding the rest', async (t) => {
  const release = signal();
  let upstreamFinished = false;
  const up = await startUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first;');
    // The rest is only sent once the client has seen the first chunk: a buffering proxy deadlocks here.
    void release.promise.then(() => {
      upstreamFinished = true;
      res.end('rest');
    });
  });
  const gw = await gateway(t, route(up.url));
  const { req, response } = openRequest(gw, { path: '/stream' });
  req.end();
  const res = await within(response, WAIT_MS, 'response headers');
  assert.equal(res.statusCode, 200);
  const first = await within(new Promise<Buffer>((r) => res.once('data', r)), WAIT_MS, 'the first chunk before the upstream finished');
  assert.equal(upstreamFinished, false);
  assert.equal(first.toString(), 'first;');
  const rest = readBody(res).then((b) => b.toString('utf8'));
  release.resolve();
  assert.equal(await within(rest, WAIT_MS, 'the rest of the body'), 'rest');
});

test('request bodies stream: the upstream receives the first bytes of a chunked upload before the client has finished', async (t) => {
  const firstBytes = signal<string>();
  const up = await startUpstream(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      firstBytes.resolve(Buffer.concat(chunks).toString());
    });
    req.once('end', () => res.end(`got:${Buffer.concat(chunks).toString()}`));
  });
  const gw = await gateway(t, route(up.url));
  const { req, response } = openRequest(gw, { method: 'POST', path: '/upload', headers: { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' } });
  req.write('part1;');
  // The client sends the rest only after the upstream saw the first part: a buffering proxy deadlocks here.
  const seenFirst = await within(firstBytes.promise, WAIT_MS, 'the upstream to receive the first part while the upload is open');
  assert.equal(seenFirst, 'part1;');
  assert.equal(req.writableEnded, false);
  req.end('part2');
  const res = await within(response, WAIT_MS, 'the response');
  assert.equal(res.statusCode, 200);
  assert.equal((await readBody(res)).toString('utf8'), 'got:part1;part2');
});

test('node-http-proxy #1586 regression: a client that aborts mid-response tears down the upstream request', async (t) => {
  const upstreamClosed = signal<string>();
  let interval: NodeJS.Timeout | undefined;
  t.after(() => clearInterval(interval));
  const up = await startUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('tick;');
    // Keeps the response open (as a long download or an event stream would).
    interval = setInterval(() => res.write('tick;'), 100);
    res.once('close', () => {
      clearInterval(interval);
      upstreamClosed.resolve(res.writableFinished ? 'finished' : 'closed early');
    });
    req.once('close', () => undefined);
  });
  const gw = await gateway(t, route(up.url));
  const { req, response } = openRequest(gw, { path: '/events' });
  req.end();
  const res = await within(response, WAIT_MS, 'response headers');
  await within(new Promise((r) => res.once('data', r)), WAIT_MS, 'the first chunk');
  // The request is fully sent; only the response is in flight. Going away now must reach the upstream.
  req.destroy();
  const how = await within(upstreamClosed.promise, 1_000, "the upstream's response to see 'close' within 1 s of the client abort");
  assert.equal(how, 'closed early');
  await waitFor(() => gw.log.accessEntries.some((e) => e.path === '/events' && e.outcome === 'aborted'), WAIT_MS, 'the access log to record the abort');
});

test('keep-alive to the upstream: 20 sequential requests share a few connections and never send Connection: close', async (t) => {
  const connectionHeaders: (string | undefined)[] = [];
  const up = await startUpstream(t, (req, res) => {
    connectionHeaders.push(req.headers.connection);
    res.end('ok');
  });
  const gw = await gateway(t, route(up.url));
  for (let i = 0; i < 20; i++) {
    // The harness client sends `Connection: close` itself; that is hop-by-hop and must not reach the upstream.
    const res = await gw.request({ path: `/n/${i}` });
    assert.equal(res.status, 200);
  }
  assert.equal(connectionHeaders.length, 20);
  assert.ok(up.connections <= 2, `expected at most 2 upstream connections, saw ${up.connections}`);
  for (const h of connectionHeaders) assert.notEqual(h?.toLowerCase(), 'close');
});

test('stripPrefix forwards /svc/a?b=1 as /a?b=1 and /svc as /, and /svcx does not match the route', async (t) => {
  const gw = await gateway(
    t,
    `
  - name: svc
    host: api.test.local
    path: /svc
    stripPrefix: true
    upstream: UPSTREAM
    auth: none
`,
  );
  assert.equal((await gw.request({ path: '/svc/a?b=1' })).status, 200);
  assert.equal((await gw.request({ path: '/svc' })).status, 200);
  assert.equal((await gw.request({ path: '/svc?q=2' })).status, 200);
  assert.deepEqual(
    gw.upstream.seen.map((s) => s.url),
    ['/a?b=1', '/', '/?q=2'],
  );
  const miss = await gw.request({ path: '/svcx' });
  assert.equal(miss.status, 404);
  assert.equal(miss.json<ErrorJson>().error.code, 'ROUTE_NOT_FOUND');
  assert.equal(gw.upstream.seen.length, 3);
});

test('an upstream URL with a base path is prepended to the forwarded path', async (t) => {
  const gw = await gateway(
    t,
    `
  - name: svc
    host: api.test.local
    path: /svc
    stripPrefix: true
    upstream: UPSTREAM/base
    auth: none
  - name: whole
    host: api.test.local
    upstream: UPSTREAM/root/
    auth: none
`,
  );
  assert.equal((await gw.request({ path: '/svc/a?b=1' })).status, 200);
  assert.equal((await gw.request({ path: '/other/x' })).status, 200);
  assert.deepEqual(
    gw.upstream.seen.map((s) => s.url),
    ['/base/a?b=1', '/root/other/x'],
  );
});

test(
  'the upstream receives the normalized path unchanged (http-proxy must not rewrite "http:/" segments)',
  {},
  async (t) => {
    const gw = await gateway(t, route('UPSTREAM'));
    // `//` collapses in normalization; http-proxy's urlJoin would then turn `http:/` back into `http://`.
    const res = await gw.request({ path: '/go/http://evil.example/x?y=1' });
    assert.equal(res.status, 200);
    assert.equal(gw.upstream.seen[0]?.url, '/go/http:/evil.example/x?y=1');
  },
);
