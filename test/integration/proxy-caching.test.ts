import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, type TestGateway } from '../helpers/harness.js';
import { startStaticUpstream, type StaticUpstream } from '../helpers/static-upstream.js';

/**
 * Issue 12, item 10: the gateway must not be what breaks HTTP caching. Validators, freshness
 * and Vary pass both ways untouched, and a 304 reaches the client as a 304 without a body.
 */

let gw: TestGateway;
let app: StaticUpstream;

before(async () => {
  app = await startStaticUpstream();
  gw = await startTestGateway(`
  - name: static-app
    host: api.test.local
    path: /app
    upstream: ${app.url}
    auth: none
  - name: echo
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`);
});

after(async () => {
  await gw?.close();
  await app?.close();
});

test('conditional request headers reach the upstream as the client sent them', async () => {
  const sent = {
    'if-none-match': 'W/"a", "b"',
    'if-modified-since': 'Thu, 01 Jan 2026 00:00:00 GMT',
    'if-match': '"c"',
    'if-unmodified-since': 'Fri, 02 Jan 2026 00:00:00 GMT',
    'if-range': '"d"',
    'cache-control': 'max-age=0',
    'accept-encoding': 'gzip, deflate, br, zstd',
  };
  const res = await gw.request({ path: '/conditional', headers: sent });
  assert.equal(res.status, 200);
  const seen = gw.upstream.seen.find((s) => s.url === '/conditional');
  for (const [name, value] of Object.entries(sent)) assert.equal(seen?.headers[name], value, name);
});

test('a 200 keeps ETag, Last-Modified, Cache-Control and Vary as the upstream set them', async () => {
  const css = await gw.request({ path: '/app/app.css' });
  assert.equal(css.status, 200);
  assert.match(String(css.headers.etag), /^"[\w-]{16}"$/);
  assert.equal(css.headers['cache-control'], 'no-cache');
  const js = await gw.request({ path: '/app/app.3f2a.js' });
  assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
  const logo = await gw.request({ path: '/app/logo.svg' });
  assert.equal(logo.headers['last-modified'], 'Thu, 01 Jan 2026 00:00:00 GMT');
  assert.equal(logo.headers['cache-control'], 'public, max-age=0, must-revalidate');
  const rows = await gw.request({ path: '/app/api/rows' });
  assert.equal(rows.headers.vary, 'Accept-Encoding');
  assert.equal(rows.headers['cache-control'], 'private, no-cache');
  assert.equal(rows.headers.pragma, undefined, 'nothing that disables caching is added');
  assert.equal(rows.headers.expires, undefined);
});

test('304s pass as 304s: no body, validators and Cache-Control kept (If-None-Match and If-Modified-Since)', async () => {
  const first = await gw.request({ path: '/app/app.css' });
  const etag = String(first.headers.etag);
  const hits = app.hits.length;
  const revalidated = await gw.request({ path: '/app/app.css', headers: { 'if-none-match': etag } });
  assert.equal(revalidated.status, 304);
  assert.equal(revalidated.body, '');
  assert.equal(revalidated.headers.etag, etag);
  assert.equal(revalidated.headers['cache-control'], 'no-cache');
  assert.deepEqual(app.hits.slice(hits).map((h) => [h.status, h.ifNoneMatch]), [[304, etag]], 'the upstream answered the condition itself');

  const logo = await gw.request({ path: '/app/logo.svg', headers: { 'if-modified-since': 'Thu, 01 Jan 2026 00:00:00 GMT' } });
  assert.equal(logo.status, 304);
  assert.equal(logo.body, '');
  assert.equal(logo.headers['last-modified'], 'Thu, 01 Jan 2026 00:00:00 GMT');

  const access = gw.log.accessEntries.filter((e) => e.path === '/app/app.css' && e.status === 304);
  assert.equal(access.at(-1)?.bytesOut, 0, 'the access line records the 304 with no body');
});
