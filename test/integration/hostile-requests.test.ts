import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawTlsExchange, startTestGateway, type TestGateway, type TestResponse } from '../helpers/harness.js';

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: none
    maxBody: 1kb
  - name: admin
    host: api.test.local
    path: /admin
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [10.0.0.0/8]
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: none
`;

const HOST = 'Host: api.test.local\r\n';

/** Long enough for a request the gateway let through to reach the upstream. */
const SETTLE_MS = 150;

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** How many status lines the gateway wrote on the connection. */
  responses: number;
}

function parseRaw(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no complete response in ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] ??= line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  const body = raw.slice(end + 4, end + 4 + length);
  return { status, headers, body, responses: raw.match(/(^|\r\n)HTTP\/1\.[01] \d{3} /g)?.length ?? 0 };
}

/** A refusal: exact status and code, and the request id in the body is the X-Request-Id header. */
function assertRefused(res: TestResponse, status: number, code: string): void {
  assert.equal(res.status, status, res.body);
  const error = res.json<{ error: { code: string; requestId: string } }>().error;
  assert.equal(error.code, code);
  assert.ok(error.requestId, 'requestId present');
  assert.equal(error.requestId, res.headers['x-request-id']);
}

function assertRawRefused(raw: string, status: number, code: string): RawResponse {
  const res = parseRaw(raw);
  assert.equal(res.status, status, raw);
  const error = (JSON.parse(res.body) as { error: { code: string; requestId: string } }).error;
  assert.equal(error.code, code);
  assert.ok(error.requestId, 'requestId present');
  assert.equal(error.requestId, res.headers['x-request-id']);
  assert.equal(res.responses, 1, `exactly one response on the connection:\n${raw}`);
  return res;
}

async function assertNothingUpstream(gw: TestGateway): Promise<void> {
  await sleep(SETTLE_MS);
  assert.deepEqual(gw.upstream.seen, []);
}

async function assertNoCompleteUpstream(gw: TestGateway): Promise<void> {
  await sleep(SETTLE_MS);
  assert.deepEqual(
    gw.upstream.seen.filter((s) => s.complete),
    [],
  );
}

async function gateway(t: { after(fn: () => Promise<void>): void }): Promise<TestGateway> {
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  return gw;
}

test('Host and SNI: unknown host, mismatch, duplicate Host; case and trailing dot are the same host', async (t) => {
  const gw = await gateway(t);

  await t.test('unknown Host → 404 ROUTE_NOT_FOUND', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ path: '/', host: 'unknown.test.local' }), 404, 'ROUTE_NOT_FOUND');
    await assertNothingUpstream(gw);
  });

  await t.test('SNI api.test.local with Host nocodb.test.local → 421 MISDIRECTED_REQUEST', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ path: '/', host: 'nocodb.test.local', servername: 'api.test.local' }), 421, 'MISDIRECTED_REQUEST');
    await assertNothingUpstream(gw);
  });

  await t.test('mixed-case Host and SNI match the route', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: '/case', host: 'API.Test.Local', servername: 'api.test.local' });
    assert.equal(res.status, 200);
    const both = await gw.request({ path: '/case2', host: 'Api.TEST.local' });
    assert.equal(both.status, 200);
    assert.deepEqual(
      gw.upstream.seen.map((s) => s.url),
      ['/case', '/case2'],
    );
  });

  await t.test('trailing-dot Host (with and without a port) matches the route', async () => {
    gw.upstream.seen.length = 0;
    assert.equal((await gw.request({ path: '/dot', host: 'api.test.local.', servername: 'api.test.local' })).status, 200);
    assert.equal((await gw.request({ path: '/dotport', host: `api.test.local.:${gw.port}`, servername: 'api.test.local' })).status, 200);
    assert.deepEqual(
      gw.upstream.seen.map((s) => s.url),
      ['/dot', '/dotport'],
    );
  });

  await t.test('duplicate Host header (raw) → 400 HOST_INVALID (the gateway; Node lets it through)', async () => {
    gw.upstream.seen.length = 0;
    const raw = await rawTlsExchange(gw.port, gw.ca, `GET / HTTP/1.1\r\n${HOST}Host: nocodb.test.local\r\nConnection: close\r\n\r\n`);
    assertRawRefused(raw, 400, 'HOST_INVALID');
    await assertNothingUpstream(gw);
  });
});

test('sizes: headers over 16 KB → 431; bodies over maxBody → 413 with nothing complete upstream', async (t) => {
  const gw = await gateway(t);

  await t.test('headers over 16 KB (raw) → 431 HEADERS_TOO_LARGE from Node', async () => {
    gw.upstream.seen.length = 0;
    const raw = await rawTlsExchange(gw.port, gw.ca, `GET / HTTP/1.1\r\n${HOST}X-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
    const res = assertRawRefused(raw, 431, 'HEADERS_TOO_LARGE');
    assert.equal(res.headers.connection, 'close');
    await assertNothingUpstream(gw);
  });

  await t.test('Content-Length over maxBody → 413 BODY_TOO_LARGE', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ method: 'POST', path: '/upload', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(2048) });
    assertRefused(res, 413, 'BODY_TOO_LARGE');
    assert.equal(res.headers.connection, 'close');
    await assertNothingUpstream(gw);
  });

  await t.test('chunked body over maxBody (raw) → 413 and no complete request upstream', async () => {
    gw.upstream.seen.length = 0;
    const part = 'c'.repeat(600);
    const chunks = `${part.length.toString(16)}\r\n${part}\r\n`.repeat(4);
    const raw = await rawTlsExchange(gw.port, gw.ca, `POST /upload HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
    assertRawRefused(raw, 413, 'BODY_TOO_LARGE');
    await assertNoCompleteUpstream(gw);
  });

  await t.test('chunked body over maxBody from a client library → 413', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ method: 'PUT', path: '/upload', headers: { 'transfer-encoding': 'chunked' }, body: 'y'.repeat(3000) });
    assertRefused(res, 413, 'BODY_TOO_LARGE');
    await assertNoCompleteUpstream(gw);
  });

  await t.test('a chunked body within maxBody is forwarded whole', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ method: 'POST', path: '/small', headers: { 'transfer-encoding': 'chunked' }, body: 'z'.repeat(900) });
    assert.equal(res.status, 200);
    assert.equal(gw.upstream.seen.length, 1);
    assert.equal(gw.upstream.seen[0]?.complete, true);
    assert.equal(gw.upstream.seen[0]?.body, 'z'.repeat(900));
  });
});

/**
 * Framing the gateway and an upstream could read differently. `by` records who refuses it on
 * Node 20: its strict llhttp parser (400 BAD_REQUEST via clientError) or the gateway's own
 * framing check (400 HEADER_INVALID).
 */
const SMUGGLING: { name: string; bytes: string; status: number; code: string; by: 'node' | 'gateway'; partial?: boolean }[] = [
  {
    name: 'Content-Length with Transfer-Encoding',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'duplicate Content-Length, same value',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'duplicate Content-Length, different values',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'Transfer-Encoding: chunked, identity',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'Transfer-Encoding: xchunked',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    status: 400,
    code: 'HEADER_INVALID',
    by: 'gateway',
  },
  {
    name: 'Transfer-Encoding: identity followed by a pipelined request',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: identity\r\n\r\nGET /smuggled HTTP/1.1\r\n${HOST}\r\n`,
    status: 400,
    code: 'HEADER_INVALID',
    by: 'gateway',
  },
  {
    name: 'Transfer-Encoding: gzip, chunked',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    status: 400,
    code: 'HEADER_INVALID',
    by: 'gateway',
  },
  {
    name: 'Transfer-Encoding repeated',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'obs-fold header continuation',
    bytes: `GET /x HTTP/1.1\r\n${HOST}X-Folded: a\r\n b\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'obs-fold hiding Transfer-Encoding',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'bare CR inside a header value',
    bytes: `GET /x HTTP/1.1\r\n${HOST}X-Cr: a\rb\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'bare LF line endings',
    bytes: `GET /x HTTP/1.1\nHost: api.test.local\nX-Lf: a\n\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'space before the colon (Transfer-Encoding)',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'space before the colon (other header)',
    bytes: `GET /x HTTP/1.1\r\n${HOST}X-Space : a\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
  },
  {
    name: 'invalid chunk size',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
    partial: true,
  },
  {
    name: 'invalid chunk size after a good chunk',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n-1\r\nx\r\n0\r\n\r\n`,
    status: 400,
    code: 'BAD_REQUEST',
    by: 'node',
    partial: true,
  },
];

test('request smuggling shapes over raw TLS each get a 400 and nothing complete upstream', async (t) => {
  const gw = await gateway(t);
  for (const shape of SMUGGLING) {
    await t.test(`${shape.name} → ${shape.status} ${shape.code} (${shape.by})`, async () => {
      gw.upstream.seen.length = 0;
      const raw = await rawTlsExchange(gw.port, gw.ca, shape.bytes);
      const res = assertRawRefused(raw, shape.status, shape.code);
      // Framing the gateway cannot trust leaves the rest of the connection unreadable: close it.
      assert.equal(res.headers.connection, 'close');
      // Headers that parse are dispatched before a bad chunk is read: the upstream may see the
      // start of that request, never all of it.
      if (shape.partial) await assertNoCompleteUpstream(gw);
      else await assertNothingUpstream(gw);
    });
  }
});

test('regression: a chunked body on GET/HEAD/DELETE/OPTIONS stays a body upstream, not a smuggled request', async (t) => {
  const gw = await gateway(t);
  const inner = `GET /admin/smuggled HTTP/1.1\r\n${HOST}X-Gateway-User: admin\r\n\r\n`;
  const body = `${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`;
  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
    await t.test(method, async () => {
      gw.upstream.seen.length = 0;
      const raw = await rawTlsExchange(gw.port, gw.ca, `${method} /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`);
      assert.equal(parseRaw(raw).status, 200);
      await sleep(SETTLE_MS);
      assert.deepEqual(
        gw.upstream.seen.map((s) => ({ method: s.method, url: s.url, complete: s.complete, body: s.body, user: s.headers['x-gateway-user'] })),
        [{ method, url: '/x', complete: true, body: inner, user: undefined }],
      );
    });
  }
});

test('path tricks are refused end to end with 400 PATH_REJECTED', async (t) => {
  const gw = await gateway(t);
  const paths = ['/..%2f', '/..%2fadmin', '/%2e%2e/', '/public/%2e%2e/admin', '/public/..;/admin', '/a/%00', '/a%5cb', '/%252e%252e/admin', '/%25%32%65'];
  for (const path of paths) {
    await t.test(path, async () => {
      gw.upstream.seen.length = 0;
      assertRefused(await gw.request({ path }), 400, 'PATH_REJECTED');
      await assertNothingUpstream(gw);
    });
  }
});

test('request targets and methods: absolute-form foreign host, OPTIONS *, TRACE, CONNECT', async (t) => {
  const gw = await gateway(t);

  await t.test('absolute-form target with a foreign host → 400 BAD_REQUEST_TARGET', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ path: 'https://evil.example/x' }), 400, 'BAD_REQUEST_TARGET');
    await assertNothingUpstream(gw);
  });

  await t.test('absolute-form target naming the Host itself is accepted', async () => {
    gw.upstream.seen.length = 0;
    const res = await gw.request({ path: `https://api.test.local:${gw.port}/abs?q=1` });
    assert.equal(res.status, 200);
    assert.deepEqual(
      gw.upstream.seen.map((s) => s.url),
      ['/abs?q=1'],
    );
  });

  await t.test('OPTIONS * → 400 BAD_REQUEST_TARGET', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ method: 'OPTIONS', path: '*' }), 400, 'BAD_REQUEST_TARGET');
    await assertNothingUpstream(gw);
  });

  await t.test('TRACE → 405 METHOD_NOT_ALLOWED', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ method: 'TRACE', path: '/x' }), 405, 'METHOD_NOT_ALLOWED');
    await assertNothingUpstream(gw);
  });

  await t.test('CONNECT (raw) → 405 METHOD_NOT_ALLOWED, and it is logged', async () => {
    gw.upstream.seen.length = 0;
    const raw = await rawTlsExchange(gw.port, gw.ca, `CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n`);
    const res = assertRawRefused(raw, 405, 'METHOD_NOT_ALLOWED');
    assert.ok(
      gw.log.accessEntries.some((e) => e.requestId === res.headers['x-request-id'] && e.code === 'METHOD_NOT_ALLOWED'),
      'the refused CONNECT has an access log entry',
    );
    await assertNothingUpstream(gw);
  });
});

test('a route prefix cannot be dodged: encoded and doubled spellings of /admin hit the strict route', async (t) => {
  const gw = await gateway(t);
  for (const path of ['/admin', '/%61dmin', '/%61%64%6D%69%6E', '//admin', '///admin/', '/admin//users', '//%61dmin/users?x=1']) {
    await t.test(path, async () => {
      gw.upstream.seen.length = 0;
      assertRefused(await gw.request({ path }), 403, 'IP_DENIED');
      await assertNothingUpstream(gw);
    });
  }

  // /admin;x/users is /admin/users to Jetty and Tomcat but not under /admin to uvicorn: the two
  // readings pick different routes, so neither is guessed.
  await t.test('/admin;x/users', async () => {
    gw.upstream.seen.length = 0;
    assertRefused(await gw.request({ path: '/admin;x/users' }), 400, 'PATH_REJECTED');
    await assertNothingUpstream(gw);
  });

  await t.test('a sibling path is the loose route (control)', async () => {
    gw.upstream.seen.length = 0;
    assert.equal((await gw.request({ path: '/administrator' })).status, 200);
    assert.deepEqual(
      gw.upstream.seen.map((s) => s.url),
      ['/administrator'],
    );
  });
});

test('errors are JSON for API clients and a small HTML page for browsers', async (t) => {
  const gw = await gateway(t);

  await t.test('JSON by default and when JSON is preferred', async () => {
    for (const accept of [undefined, 'application/json', 'application/json, text/html']) {
      const res = await gw.request({ path: '/', host: 'unknown.test.local', headers: accept ? { accept } : {} });
      assertRefused(res, 404, 'ROUTE_NOT_FOUND');
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    }
  });

  await t.test('Accept: text/html gets a page with the code and request id, under a strict CSP', async () => {
    const res = await gw.request({ path: '/', host: 'unknown.test.local', headers: { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' } });
    assert.equal(res.status, 404);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    const id = String(res.headers['x-request-id']);
    assert.ok(id.length > 0);
    assert.match(res.body, /^<!doctype html>/);
    assert.ok(res.body.includes('<code>ROUTE_NOT_FOUND</code>'), res.body);
    assert.ok(res.body.includes(`<code>${id}</code>`), res.body);

    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /base-uri 'none'/);
    assert.match(csp, /form-action 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    // The page's only inline style is allowed by its hash, nothing else.
    const style = /<style>(.*?)<\/style>/s.exec(res.body)?.[1] ?? '';
    const hash = createHash('sha256').update(style).digest('base64');
    assert.ok(csp.includes(`style-src 'sha256-${hash}'`), csp);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  await t.test('the HTML page escapes nothing it should not show: no detail leaks', async () => {
    const res = await gw.request({ path: '/<script>', host: 'unknown.test.local', headers: { accept: 'text/html' } });
    assert.equal(res.status, 404);
    assert.ok(!res.body.includes('<script>'), 'the request path is not echoed');
    assert.ok(!res.body.includes('unknown.test.local'), 'the detail stays in the log');
  });
});

test("regression: a request Node's parser refuses gets the same security headers as every other own answer", async (t) => {
  const gw = await gateway(t);
  gw.upstream.seen.length = 0;
  const raw = await rawTlsExchange(gw.port, gw.ca, `GET / HTTP/1.1\r\n${HOST}Bad Header: x\r\n\r\n`);
  const res = assertRawRefused(raw, 400, 'BAD_REQUEST');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(raw.match(/^x-content-type-options:/gim)?.length, 1, 'nosniff once');
  assert.ok(res.headers['content-security-policy']?.includes("default-src 'none'"), 'a CSP of its own');
  assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin');
  assert.ok(res.headers['x-frame-options'], 'frame options');
  assert.match(res.headers['strict-transport-security'] ?? '', /^max-age=\d+/, 'HSTS over TLS');
  await assertNothingUpstream(gw);
  const line = gw.log.accessEntries.find((e) => e.requestId === res.headers['x-request-id']);
  assert.equal(line?.status, 400);
});

// From an adversarial review of the edge, against the real gateway: the attack is refused (or
// reaches only what the route maps to) and the upstream sees nothing it should not.
describe('routing: ;parameters and encoded slashes cannot pick another route or upstream path (from the review of the edge)', () => {
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
});


