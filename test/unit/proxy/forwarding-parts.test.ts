import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errors } from 'undici';
import { asNodeHeaders } from '../../../src/proxy/exchange.js';
import { joinUpstreamPath } from '../../../src/proxy/url-join.js';
import { upstreamError } from '../../../src/proxy/upstream-error.js';
import { UpstreamOrigin, rewriteUpstreamUrl } from '../../../src/proxy/upstream-urls.js';
import { GatewayError } from '../../../src/errors.js';
import type { RequestContext } from '../../../src/context.js';

test("undici's response headers become Node's: first Location and Content-Type win, Set-Cookie is always a list, other repeats are joined", () => {
  const headers = asNodeHeaders({
    location: ['http://127.0.0.1:8000/a', 'http://127.0.0.1:8000/b'],
    'content-type': ['text/html', 'text/plain'],
    'set-cookie': 'a=1',
    vary: ['Accept', 'Origin'],
    cookie: ['a=1', 'b=2'],
    etag: '"x"',
  });
  assert.deepEqual(headers, { location: 'http://127.0.0.1:8000/a', 'content-type': 'text/html', 'set-cookie': ['a=1'], vary: 'Accept, Origin', cookie: 'a=1; b=2', etag: '"x"' });
  assert.deepEqual(asNodeHeaders({ 'set-cookie': ['a=1', 'b=2'] })['set-cookie'], ['a=1', 'b=2']);
});

test("the upstream path: the target's base path joined exactly, repeated slashes folded, the query untouched", () => {
  assert.equal(joinUpstreamPath('/', '/a/b?x=1'), '/a/b?x=1');
  assert.equal(joinUpstreamPath('', '/a'), '/a');
  assert.equal(joinUpstreamPath('/base', '/a?b=1'), '/base/a?b=1');
  assert.equal(joinUpstreamPath('/root/', '/other/x'), '/root/other/x');
  assert.equal(joinUpstreamPath('/base', '/'), '/base/');
  // http-proxy's own join turned the first `http:/` into `http://`.
  assert.equal(joinUpstreamPath('/', '/go/http:/evil.example/x?y=//z'), '/go/http:/evil.example/x?y=//z');
});

test('upstream failures map to 502 UNAVAILABLE, 502 BAD_RESPONSE or 504, the cause kept for the log only', () => {
  const ctx = {} as RequestContext;
  const code = (err: unknown, c: RequestContext = ctx): string => upstreamError(err, c).code;
  assert.equal(code(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), 'UPSTREAM_UNAVAILABLE');
  assert.equal(upstreamError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), ctx).detail, 'ECONNREFUSED');
  assert.equal(code(new errors.SocketError('other side closed')), 'UPSTREAM_UNAVAILABLE');
  assert.equal(code(new errors.SocketError('bad response')), 'UPSTREAM_BAD_RESPONSE');
  assert.equal(code(new errors.HTTPParserError('Response does not match the HTTP/1.1 protocol')), 'UPSTREAM_BAD_RESPONSE');
  assert.equal(code(new errors.HeadersOverflowError()), 'UPSTREAM_BAD_RESPONSE');
  assert.equal(code(new errors.HeadersTimeoutError()), 'UPSTREAM_TIMEOUT');
  assert.equal(code(new Error('anything'), { upstreamTimedOut: true } as RequestContext), 'UPSTREAM_TIMEOUT');
  const own = new GatewayError('BODY_TOO_LARGE', 'streamed body over 10 bytes');
  assert.equal(upstreamError(own, ctx), own);
});

test('a URL naming any address the upstream was connected at names the upstream', () => {
  const upstream = new UpstreamOrigin(new URL('http://crm-api:8000'));
  const view = { scheme: 'https' as const, authority: 'api.example.com', prefix: '' };
  const connected = new Set(['172.18.0.5', '172.18.0.6']);
  assert.equal(rewriteUpstreamUrl('http://172.18.0.6:8000/v1/', upstream, connected, view), 'https://api.example.com/v1/');
  assert.equal(rewriteUpstreamUrl('http://172.18.0.7:8000/v1/', upstream, connected, view), 'http://172.18.0.7:8000/v1/');
  assert.equal(rewriteUpstreamUrl('http://172.18.0.6:9000/v1/', upstream, connected, view), 'http://172.18.0.6:9000/v1/');
});
