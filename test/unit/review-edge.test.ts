import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { createRouter, stripPrefix } from '../../src/routing/router.js';
import { UpstreamOrigin } from '../../src/proxy/upstream-urls.js';
import { secureUpstreamHeaders } from '../../src/proxy/response-headers.js';
import { parseConfig } from '../../src/config/load.js';
import type { RouteConfig } from '../../src/config/schema.js';
import type { RequestContext } from '../../src/context.js';
import { isGatewayError } from '../../src/errors.js';
import { Reply } from '../../src/reply.js';

const UP = 'http://127.0.0.1:8000';

function routes(yaml: string): RouteConfig[] {
  return parseConfig(`routes:\n${yaml}`, {}, 'test').routes;
}

describe('review: stripPrefix cuts whole segments', () => {
  const cases: readonly (readonly [string, string, string])[] = [
    ['/svc;xxadmin/v1/users', '/svc/v1', '/users'],
    ['/svc/v1;x/users', '/svc/v1', '/users'],
    ['/svc;x/v1;y', '/svc/v1', '/'],
    ['/public;x', '/public', '/'],
    ['/public;x/y', '/public', '/y'],
    ['/public/a;b/c', '/public', '/a;b/c'],
    ['/public/', '/public', '/'],
    ['/public/a%2Fb', '/public', '/a%2Fb'],
  ];
  for (const [path, prefix, expected] of cases) {
    test(`${path} without ${prefix} → ${expected}`, () => assert.equal(stripPrefix(path, prefix), expected));
  }
});

describe('review: an encoded slash must not choose the route', () => {
  const match = createRouter(
    routes(`
  - { name: admin, host: api.localhost, path: /admin, upstream: ${UP}, auth: jwt }
  - { name: files, host: api.localhost, path: /files, upstream: ${UP}, auth: none, allowEncodedSlashes: true }
  - { name: private, host: api.localhost, path: /files/private, upstream: ${UP}, auth: jwt }
  - { name: loose, host: api.localhost, upstream: ${UP}, auth: none, allowEncodedSlashes: true }
`),
  );
  const rejected = (path: string): void =>
    assert.throws(
      () => match('api.localhost', path),
      (err: unknown) => isGatewayError(err) && err.code === 'PATH_REJECTED',
      path,
    );

  test('refused when the decoded reading reaches another route', () => {
    for (const path of ['/admin%2Fusers', '/%2Fadmin', '/%2F%2Fadmin/x', '/files/private%2Fkey', '/files%2Fprivate/key']) rejected(path);
  });

  test('kept when both readings agree', () => {
    assert.equal(match('api.localhost', '/files/a%2Fb')?.name, 'files');
    assert.equal(match('api.localhost', '/other/a%2Fb')?.name, 'loose');
    assert.equal(match('api.localhost', '/admin/a%2Fb')?.name, 'admin');
    assert.equal(match('api.localhost', '/administrator%2Fx')?.name, 'loose');
  });
});

describe('review: response headers named in the upstream Connection', () => {
  const route = routes(`  - { name: r, host: api.localhost, upstream: ${UP}, auth: none }`)[0] as RouteConfig;
  const ctx = { id: 'req-1', reply: new Reply('req-1', true, { hsts: undefined }) } as unknown as RequestContext;

  test('are removed; the gateway’s own headers and framing stay', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'close, X-Internal, Strict-Transport-Security, content-length, X-Request-Id',
      'x-internal': 'secret',
      'content-length': '2',
      'strict-transport-security': 'max-age=0',
    };
    secureUpstreamHeaders(headers, ctx, route, 'max-age=31536000', { upstream: new UpstreamOrigin(new URL(UP)), connected: '127.0.0.1', view: { scheme: 'https', authority: 'api.localhost', prefix: '' } });
    assert.equal(headers['x-internal'], undefined);
    assert.equal(headers.connection, undefined);
    assert.equal(headers['content-length'], '2');
    assert.equal(headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(headers['x-request-id'], 'req-1');
    assert.equal(headers['x-content-type-options'], 'nosniff');
  });
});
