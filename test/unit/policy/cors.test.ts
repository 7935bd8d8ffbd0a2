import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { createCors } from '../../../src/policy/cors.js';
import { parseConfig } from '../../../src/config/load.js';
import type { RouteConfig } from '../../../src/config/schema.js';
import type { RequestContext } from '../../../src/context.js';
import { isGatewayError } from '../../../src/errors.js';
import { Reply } from '../../../src/reply.js';

// The CORS step on its own: a real route from the config parser, and the parts of a request
// context it reads (the request's headers and method, the reply it sets headers on).
const UP = 'http://127.0.0.1:8000';

function route(cors: string): RouteConfig {
  return parseConfig(`routes:\n  - { name: api, host: api.localhost, upstream: ${UP}, auth: none, cors: ${cors} }\n`, {}, 'test').routes[0] as RouteConfig;
}

function request(headers: IncomingHttpHeaders, method = 'GET', kind: 'http' | 'upgrade' = 'http'): RequestContext {
  return { id: 'req-1', kind, secure: true, req: { method, headers: { host: 'api.localhost', ...headers } }, reply: new Reply('req-1', true, { hsts: undefined }) } as unknown as RequestContext;
}

const denied = (err: unknown): boolean => isGatewayError(err) && err.code === 'CORS_ORIGIN_DENIED';

describe('createCors', () => {
  const listed = createCors(route('{ origins: ["https://app.example.com"], credentials: true, methods: [GET, POST], maxAge: 10m }'));

  test('no Origin: nothing to do, no Vary', () => {
    const ctx = request({});
    assert.equal(listed(ctx), undefined);
    assert.equal(ctx.reply.headers.vary, undefined);
  });

  test("the gateway's own origin needs no CORS headers", () => {
    const ctx = request({ origin: 'https://api.localhost' }, 'POST');
    assert.equal(listed(ctx), undefined);
    assert.equal(ctx.reply.headers['access-control-allow-origin'], undefined);
  });

  test('a listed origin is echoed exactly, with credentials; a preflight is answered here with 204', () => {
    const ctx = request({ origin: 'https://app.example.com', 'access-control-request-method': 'post' }, 'OPTIONS');
    assert.deepEqual(listed(ctx), { answer: 204 });
    assert.equal(ctx.reply.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(ctx.reply.headers['access-control-allow-credentials'], 'true');
    assert.equal(ctx.reply.headers['access-control-allow-methods'], 'GET, POST');
    assert.equal(ctx.reply.headers['access-control-max-age'], '600');
    assert.equal(ctx.reply.headers.vary, 'Origin');
  });

  test('a preflight for a method the route does not list is refused', () => {
    assert.throws(() => listed(request({ origin: 'https://app.example.com', 'access-control-request-method': 'DELETE' }, 'OPTIONS')), denied);
  });

  test('an unlisted origin: refused for preflights, upgrades and unsafe methods; no CORS headers on safe ones', () => {
    const origin = 'https://evil.example';
    assert.throws(() => listed(request({ origin, 'access-control-request-method': 'GET' }, 'OPTIONS')), denied);
    assert.throws(() => listed(request({ origin }, 'GET', 'upgrade')), denied);
    assert.throws(() => listed(request({ origin }, 'POST')), denied);
    const ctx = request({ origin });
    assert.equal(listed(ctx), undefined);
    assert.equal(ctx.reply.headers['access-control-allow-origin'], undefined);
  });

  test('"null", non-web and malformed origins are never listed; a host name is matched in any case', () => {
    for (const origin of ['null', 'ftp://app.example.com', 'https://app.example.com/', 'https://app.example.com.evil']) assert.throws(() => listed(request({ origin }, 'POST')), denied, origin);
    const ctx = request({ origin: 'https://APP.example.com' }, 'POST');
    assert.equal(listed(ctx), undefined);
    assert.equal(ctx.reply.headers['access-control-allow-origin'], 'https://app.example.com');
  });

  test('a wildcard answers `*` and never carries credentials', () => {
    const any = createCors(route('{ origins: ["*"], credentials: true }'));
    const ctx = request({ origin: 'https://anyone.example' });
    assert.equal(any(ctx), undefined);
    assert.equal(ctx.reply.headers['access-control-allow-origin'], '*');
    assert.equal(ctx.reply.headers['access-control-allow-credentials'], undefined);
  });
});
