import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRouter, stripPrefix, underPrefix } from '../../../src/routing/router.js';
import { parseConfig } from '../../../src/config/load.js';
import type { RouteConfig } from '../../../src/config/schema.js';
import { isGatewayError } from '../../../src/errors.js';

const UP = 'http://127.0.0.1:8000';

/** Real RouteConfig values, through the config parser. Listed least specific first on purpose. */
function routes(): RouteConfig[] {
  return parseConfig(
    `
routes:
  - { name: catchall, path: /, upstream: ${UP}, auth: jwt }
  - { name: status, path: /status, upstream: ${UP}, auth: none }
  - { name: api, host: api.localhost, upstream: ${UP}, auth: jwt }
  - { name: api-public, host: api.localhost, path: /public/, upstream: ${UP}, auth: none }
  - { name: api-public-docs, host: api.localhost, path: /public/docs, upstream: ${UP}, auth: none }
  - { name: webhook, host: api.localhost, path: /webhook/whatsapp, upstream: ${UP}, auth: whatsapp }
  - { name: nocodb, host: NocoDB.LocalHost., upstream: http://127.0.0.1:8080, auth: session }
  - { name: metabase, host: metabase.localhost, upstream: http://127.0.0.1:3000, auth: session }
`,
    {},
    'test',
  ).routes;
}

function matcher(list: readonly RouteConfig[] = routes()): (host: string, path: string) => string | undefined {
  const match = createRouter(list);
  return (host, path) => match(host, path)?.name;
}

describe('createRouter: most specific route wins', () => {
  const match = matcher();
  const cases: readonly (readonly [string, string, string | undefined])[] = [
    ['api.localhost', '/', 'api'],
    ['api.localhost', '/anything/else', 'api'],
    ['api.localhost', '/public', 'api-public'],
    ['api.localhost', '/public/', 'api-public'],
    ['api.localhost', '/public/x', 'api-public'],
    ['api.localhost', '/public/docs', 'api-public-docs'],
    ['api.localhost', '/public/docs/v1', 'api-public-docs'],
    ['api.localhost', '/public/docsx', 'api-public'],
    ['api.localhost', '/webhook/whatsapp', 'webhook'],
    ['api.localhost', '/webhook/whatsapp/', 'webhook'],
    ['api.localhost', '/webhook/whatsappx', 'api'],
    ['api.localhost', '/webhook', 'api'],
    ['nocodb.localhost', '/dashboard', 'nocodb'],
    ['metabase.localhost', '/api/session', 'metabase'],
    ['other.localhost', '/status', 'status'],
    ['other.localhost', '/status/live', 'status'],
    ['other.localhost', '/statusx', 'catchall'],
    ['other.localhost', '/', 'catchall'],
  ];
  for (const [host, path, expected] of cases) {
    test(`${host}${path} → ${expected}`, () => {
      assert.equal(match(host, path), expected);
    });
  }

  test('/public does not cover /publicfoo: it falls to the host route', () => {
    assert.equal(match('api.localhost', '/publicfoo'), 'api');
    assert.equal(match('api.localhost', '/public-x'), 'api');
    assert.equal(match('api.localhost', '/public.json'), 'api');
  });

  test('a host route beats a path-only route, even one with a longer path', () => {
    assert.equal(match('nocodb.localhost', '/status'), 'nocodb');
    assert.equal(match('api.localhost', '/status'), 'api');
  });

  test('host-specific path routes do not leak to other hosts', () => {
    assert.equal(match('nocodb.localhost', '/public/x'), 'nocodb');
    assert.equal(match('other.localhost', '/webhook/whatsapp'), 'catchall');
  });

  test('host is matched exactly against the normalized form the config holds', () => {
    assert.equal(match('nocodb.localhost', '/'), 'nocodb', 'config host NocoDB.LocalHost. normalized');
    assert.equal(match('sub.api.localhost', '/public'), 'catchall');
    assert.equal(match('localhost', '/public'), 'catchall');
  });

  test('path parameters (;) that change the route on one reading are refused', () => {
    // Jetty and Tomcat strip ;params (/public;x/y is /public/y), uvicorn keeps them (/public;x/y
    // is not under /public): when the readings pick different routes, the request is refused.
    assert.throws(() => match('api.localhost', '/public;x/y'), /PATH_REJECTED|path parameter/);
    assert.throws(() => match('api.localhost', '/public;x'), /PATH_REJECTED|path parameter/);
    assert.equal(match('api.localhost', '/publicx;y'), 'api', 'a parameter never extends a segment into a prefix');
    assert.equal(match('api.localhost', '/public/a;v=1'), 'api-public', 'a parameter that changes nothing passes');
  });

  test('the result does not depend on config order', () => {
    const list = routes();
    const forward = matcher(list);
    const backward = matcher([...list].reverse());
    for (const [host, path] of cases) assert.equal(backward(host, path), forward(host, path), `${host}${path}`);
  });

  test('returns the route object itself, with its parsed settings', () => {
    const route = createRouter(routes())('api.localhost', '/public/x');
    assert.equal(route?.path, '/public', 'trailing slash of the prefix removed by the schema');
    assert.equal(route?.auth, 'none');
    assert.equal(route?.timeout, 60_000);
  });
});

describe('createRouter: unmatched', () => {
  test('no route for an unknown host without path-only routes → undefined', () => {
    const hostOnly = routes().filter((r) => r.host !== undefined);
    const match = matcher(hostOnly);
    assert.equal(match('other.localhost', '/'), undefined);
    assert.equal(match('', '/'), undefined);
  });

  test('a path-only route without a catch-all leaves other paths unmatched', () => {
    const match = matcher(routes().filter((r) => r.name === 'status'));
    assert.equal(match('any.localhost', '/status'), 'status');
    assert.equal(match('any.localhost', '/'), undefined);
    assert.equal(match('any.localhost', '/stat'), undefined);
  });

  test('no routes at all → undefined', () => {
    assert.equal(createRouter([])('api.localhost', '/'), undefined);
  });
});

describe('underPrefix', () => {
  test('the prefix itself and paths below it', () => {
    assert.equal(underPrefix('/public', '/public'), true);
    assert.equal(underPrefix('/public/', '/public'), true);
    assert.equal(underPrefix('/public/a/b', '/public'), true);
  });

  test('siblings that share the leading characters are not below it', () => {
    assert.equal(underPrefix('/publicfoo', '/public'), false);
    assert.equal(underPrefix('/public-x', '/public'), false);
    assert.equal(underPrefix('/publi', '/public'), false);
    assert.equal(underPrefix('/', '/public'), false);
  });

  test('matching is case-sensitive', () => {
    assert.equal(underPrefix('/Public/x', '/public'), false);
  });

  test('/ covers everything', () => {
    assert.equal(underPrefix('/', '/'), true);
    assert.equal(underPrefix('/anything', '/'), true);
  });
});

describe('stripPrefix', () => {
  const cases: readonly (readonly [string, string, string])[] = [
    ['/public/x', '/public', '/x'],
    ['/public/docs', '/public', '/docs'],
    ['/public', '/public', '/'],
    ['/public/', '/public', '/'],
    ['/public/docs/v1', '/public/docs', '/v1'],
    ['/publicfoo', '/public', '/publicfoo'],
    ['/other', '/public', '/other'],
    ['/x', '/', '/x'],
    ['/', '/', '/'],
  ];
  for (const [path, prefix, expected] of cases) {
    test(`${path} without ${prefix} → ${expected}`, () => {
      assert.equal(stripPrefix(path, prefix), expected);
    });
  }
});

// Prefixes and encoded slashes (from the review of the edge).
/** Routes from a YAML list, through the config parser. */
function routesOf(yaml: string): RouteConfig[] {
  return parseConfig(`routes:\n${yaml}`, {}, 'test').routes;
}

describe('stripPrefix cuts whole segments', () => {
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

describe('an encoded slash must not choose the route', () => {
  const match = createRouter(
    routesOf(`
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
