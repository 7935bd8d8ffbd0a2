import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig, type ConfigProblem } from '../../../src/config/load.js';
import type { RouteConfig } from '../../../src/config/schema.js';

/** One route built from YAML flow-mapping fields, e.g. `path: /x, auth: none`. */
function routeYaml(fields: string, name = 'r'): string {
  return `routes:\n  - { name: ${name}, upstream: "http://127.0.0.1:8000", ${fields} }\n`;
}

function route(fields: string): RouteConfig {
  const r = parseConfig(routeYaml(fields), {}, 'test.yaml').routes[0];
  assert.ok(r);
  return r;
}

function problemsOf(yaml: string): ConfigProblem[] {
  try {
    parseConfig(yaml, {}, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  assert.fail('expected a ConfigError');
}

describe('routeSchema: host and path', () => {
  test('a route with neither host nor path is refused', () => {
    assert.deepEqual(problemsOf(routeYaml('auth: jwt')), [{ path: 'routes[0] (route r)', message: 'a route needs a host, a path, or both' }]);
  });

  test('host is lower-cased and loses its trailing dot', () => {
    assert.equal(route('host: API.Example.COM., auth: jwt').host, 'api.example.com');
  });

  test('hosts that are not plain names are refused', () => {
    for (const host of ['bad host', 'api.localhost:8443', 'https://api.localhost', '*.localhost', 'a..b', `${'a'.repeat(64)}.com`]) {
      assert.deepEqual(problemsOf(routeYaml(`host: "${host}", auth: jwt`)), [{ path: 'routes[0].host (route r)', message: 'not a valid host name' }], host);
    }
  });

  test('a path prefix loses trailing slashes; / stays /', () => {
    assert.equal(route('path: /public/, auth: none').path, '/public');
    assert.equal(route('path: /, auth: none').path, '/');
  });

  test('path prefixes outside plain characters are refused', () => {
    for (const path of ['public', '/a b', '/a%2Fb', '/a?b', '/a#b', '/caf\u00e9', '/a\\b']) {
      const problems = problemsOf(routeYaml(`path: "${path.replace(/\\/g, '\\\\')}", auth: none`));
      assert.deepEqual(problems, [{ path: 'routes[0].path (route r)', message: 'path prefix must start with / and use plain URL characters' }], path);
    }
  });

  test('path prefixes not in normal form are refused', () => {
    for (const path of ['/a/../b', '/a/./b', '/..', '//a', '/a//b']) {
      assert.deepEqual(problemsOf(routeYaml(`path: "${path}", auth: none`)), [{ path: 'routes[0].path (route r)', message: 'path prefix must be in normal form' }], path);
    }
  });

  test('stripPrefix needs a path', () => {
    assert.deepEqual(problemsOf(routeYaml('host: x, auth: jwt, stripPrefix: true')), [
      { path: 'routes[0].stripPrefix (route r)', message: 'stripPrefix needs a path' },
    ]);
    assert.equal(route('path: /p, auth: none, stripPrefix: "yes"').stripPrefix, true);
  });
});

describe('routeSchema: upstream, auth, roles', () => {
  test('upstream must be a plain http(s) URL', () => {
    const cases: readonly (readonly [string, string[]])[] = [
      ['nope', ['not a URL: "nope"']],
      ['ftp://127.0.0.1/', ['upstream must be http:// or https://']],
      ['http://u:p@127.0.0.1/', ['upstream URL must not carry credentials']],
      ['http://127.0.0.1/?a=1', ['upstream URL must not have a query or fragment']],
      ['http://127.0.0.1/#f', ['upstream URL must not have a query or fragment']],
      ['file:///etc/passwd', ['upstream must be http:// or https://']],
    ];
    for (const [upstream, messages] of cases) {
      const problems = problemsOf(`routes:\n  - { name: r, host: x, auth: jwt, upstream: "${upstream}" }\n`);
      assert.deepEqual(problems, messages.map((message) => ({ path: 'routes[0].upstream (route r)', message })), upstream);
    }
    assert.equal(route('host: x, auth: jwt').upstream, 'http://127.0.0.1:8000');
  });

  test('auth must be one of the named modes', () => {
    for (const auth of ['none', 'jwt', 'session', 'jwt-or-session', 'whatsapp'] as const) assert.equal(route(`host: x, auth: ${auth}`).auth, auth);
    const problems = problemsOf(routeYaml('host: x, auth: basic'));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'routes[0].auth (route r)');
    const missing = problemsOf(routeYaml('host: x'));
    assert.equal(missing[0]?.path, 'routes[0].auth (route r)');
  });

  test('roles need an authenticated route', () => {
    assert.deepEqual(problemsOf(routeYaml('host: x, auth: none, roles: [admin]')), [
      { path: 'routes[0].roles (route r)', message: 'roles need an auth mode other than none' },
    ]);
    assert.deepEqual(route('host: x, auth: jwt, roles: [api, admin]').roles, ['api', 'admin']);
  });

  test('route names are lower-case identifiers', () => {
    const problems = problemsOf(routeYaml('host: x, auth: jwt', '"Bad Name"'));
    assert.deepEqual(problems, [{ path: 'routes[0].name (route Bad Name)', message: 'use lower-case letters, digits, - and _' }]);
  });
});

describe('routeSchema: durations and sizes', () => {
  const durations: readonly (readonly [string, number])[] = [
    ['500ms', 500],
    ['1.5s', 1500],
    ['60s', 60_000],
    [' 60S ', 60_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['250', 250],
  ];
  for (const [text, ms] of durations) {
    test(`timeout "${text}" → ${ms} ms`, () => {
      assert.equal(route(`host: x, auth: jwt, timeout: "${text}"`).timeout, ms);
    });
  }

  test('a bare YAML number is milliseconds', () => {
    assert.equal(route('host: x, auth: jwt, timeout: 1500').timeout, 1500);
  });

  test('malformed durations are refused with the value and an example', () => {
    for (const text of ['"10 minutes"', '"1w"', '"-1s"', '""', '"s"', '-5']) {
      const problems = problemsOf(routeYaml(`host: x, auth: jwt, timeout: ${text}`));
      assert.equal(problems.length, 1, text);
      assert.equal(problems[0]?.path, 'routes[0].timeout (route r)');
      assert.match(problems[0]?.message ?? '', /^not a duration: .* \(use e\.g\. 500ms, 60s, 10m\)$/, text);
    }
  });

  test('infinite and NaN durations are refused (zod\'s own message)', () => {
    for (const text of ['.inf', '.nan']) {
      assert.deepEqual(problemsOf(routeYaml(`host: x, auth: jwt, timeout: ${text}`)).map((p) => p.path), ['routes[0].timeout (route r)'], text);
    }
  });

  const sizes: readonly (readonly [string, number])[] = [
    ['512kb', 524_288],
    ['1mb', 1_048_576],
    ['1.5mb', 1_572_864],
    ['3MB', 3_145_728],
    ['1gb', 1_073_741_824],
    ['100b', 100],
    ['10', 10],
  ];
  for (const [text, bytes] of sizes) {
    test(`maxBody "${text}" → ${bytes} bytes`, () => {
      assert.equal(route(`host: x, auth: jwt, maxBody: "${text}"`).maxBody, bytes);
    });
  }

  test('malformed sizes are refused', () => {
    for (const text of ['"1tb"', '"1 megabyte"', '"-1"', '""', '1.5', '-1', '"mb"']) {
      const problems = problemsOf(routeYaml(`host: x, auth: jwt, maxBody: ${text}`));
      assert.equal(problems.length, 1, text);
      assert.equal(problems[0]?.path, 'routes[0].maxBody (route r)');
      assert.match(problems[0]?.message ?? '', /^not a size: .* \(use e\.g\. 512kb, 1mb\)$/, text);
    }
  });
});

describe('routeSchema: ipAllowlist, rateLimit, cors, headers', () => {
  test('ipAllowlist accepts addresses and CIDRs, as a list or a comma string', () => {
    assert.deepEqual(route('host: x, auth: jwt, ipAllowlist: [10.0.0.0/8, "::1", "::ffff:192.168.0.0/112"]').ipAllowlist, [
      '10.0.0.0/8',
      '::1',
      '::ffff:192.168.0.0/112',
    ]);
    assert.deepEqual(route('host: x, auth: jwt, ipAllowlist: "10.0.0.0/8, 192.168.1.1"').ipAllowlist, ['10.0.0.0/8', '192.168.1.1']);
  });

  test('a bad CIDR in ipAllowlist names every bad entry', () => {
    assert.deepEqual(problemsOf(routeYaml('host: x, auth: jwt, ipAllowlist: [10.0.0.0/8, 10.0.0.0/33, office, "2001:db8::/200"]')), [
      {
        path: 'routes[0].ipAllowlist (route r)',
        message: 'invalid address or CIDR: 10.0.0.0/33 (prefix longer than 32), office (not an IP address), 2001:db8::/200 (prefix longer than 128)',
      },
    ]);
  });

  test('rateLimit: window parsed, by defaults to ip', () => {
    assert.deepEqual(route('host: x, auth: jwt, rateLimit: { window: 1m, max: 600 }').rateLimit, { window: 60_000, max: 600, by: 'ip', failMode: 'open', ipv6Prefix: 64 });
  });

  test('rateLimit: by user needs an authenticated route; max must be positive; unknown keys refused', () => {
    assert.deepEqual(problemsOf(routeYaml('host: x, auth: none, rateLimit: { window: 1m, max: 10, by: user }')), [
      { path: 'routes[0].rateLimit.by (route r)', message: 'by: user needs an authenticated route' },
    ]);
    const problems = problemsOf(routeYaml('host: x, auth: jwt, rateLimit: { window: 1m, max: 0, burst: 5 }'));
    assert.deepEqual(
      problems.map((p) => p.path),
      ['routes[0].rateLimit.max (route r)', 'routes[0].rateLimit (route r)'],
    );
    assert.equal(problems[1]?.message, 'Unrecognized key: "burst"');
  });

  test('cors: origins split on commas, the rest defaulted', () => {
    assert.deepEqual(route('host: x, auth: jwt, cors: { origins: ["https://a.example,https://b.example", "https://c.example"] }').cors, {
      origins: ['https://a.example', 'https://b.example', 'https://c.example'],
      credentials: false,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      headers: ['Authorization', 'Content-Type', 'X-Requested-With', 'X-Request-Id'],
      exposeHeaders: ['X-Request-Id', 'RateLimit', 'RateLimit-Policy', 'Retry-After'],
      maxAge: 600_000,
    });
  });

  test('header edits: names lower-cased, bad names refused', () => {
    const r = route('host: x, auth: jwt, requestHeaders: { set: { X-Tenant: crm }, remove: [X-Debug] }');
    assert.deepEqual(r.requestHeaders, { set: { 'x-tenant': 'crm' }, remove: ['x-debug'] });
    const problems = problemsOf(routeYaml('host: x, auth: jwt, responseHeaders: { remove: ["bad header"] }'));
    assert.deepEqual(problems, [{ path: 'routes[0].responseHeaders.remove[0] (route r)', message: 'not a valid header name' }]);
  });

  test('boolean settings take true/false/yes/no/1/0 and nothing else', () => {
    assert.equal(route('host: x, auth: jwt, websocket: "no"').websocket, false);
    assert.equal(route('host: x, auth: jwt, preserveHost: "1"').preserveHost, true);
    assert.equal(route('host: x, auth: jwt, allowEncodedSlashes: true').allowEncodedSlashes, true);
    assert.equal(problemsOf(routeYaml('host: x, auth: jwt, websocket: "maybe"'))[0]?.path, 'routes[0].websocket (route r)');
  });
});

describe('gatewaySchema: the route list', () => {
  test('at least one route', () => {
    assert.deepEqual(problemsOf('routes: []\n'), [{ path: 'routes', message: 'at least one route is needed' }]);
  });

  test('duplicate route names', () => {
    const problems = problemsOf(`
routes:
  - { name: api, host: a.localhost, upstream: "http://x", auth: jwt }
  - { name: api, host: b.localhost, upstream: "http://x", auth: jwt }
`);
    assert.deepEqual(problems, [{ path: 'routes[1].name (route api)', message: 'duplicate route name api' }]);
  });

  test('two routes with the same host and path', () => {
    const problems = problemsOf(`
routes:
  - { name: one, host: API.localhost, path: /p, upstream: "http://x", auth: jwt }
  - { name: two, host: api.localhost., path: /p/, upstream: "http://x", auth: jwt }
  - { name: three, path: /q, upstream: "http://x", auth: jwt }
  - { name: four, path: /q, upstream: "http://x", auth: jwt }
`);
    assert.deepEqual(problems, [
      { path: 'routes[1] (route two)', message: 'same host and path as route one' },
      { path: 'routes[3] (route four)', message: 'same host and path as route three' },
    ]);
  });

  test('route-level problems in several routes are reported together', () => {
    const problems = problemsOf(`
routes:
  - { name: a, upstream: "nope", auth: jwt }
  - { name: b, host: y, upstream: "http://x", auth: none, roles: [x] }
  - { name: c, host: z, upstream: "http://x", auth: jwt, timeout: soon }
`);
    assert.deepEqual(problems, [
      { path: 'routes[0].upstream (route a)', message: 'not a URL: "nope"' },
      { path: 'routes[0] (route a)', message: 'a route needs a host, a path, or both' },
      { path: 'routes[1].roles (route b)', message: 'roles need an auth mode other than none' },
      { path: 'routes[2].timeout (route c)', message: 'not a duration: "soon" (use e.g. 500ms, 60s, 10m)' },
    ]);
  });
});

describe('routeSchema: cors', () => {
  test('regression: a malformed origin is a config problem with its path, not a TypeError at startup', () => {
    for (const origin of ['https://', 'https://app.example.com/path', 'ftp://x', 'https://u:p@app.example.com', 'app example', 'https://app.example.com?x=1']) {
      const problems = problemsOf(routeYaml(`host: a, auth: none, cors: { origins: ["${origin}"] }`));
      assert.equal(problems.length, 1, origin);
      assert.match(problems[0]?.path ?? '', /^routes\[0\]\.cors\.origins\[0\]/, origin);
    }
  });

  test('exact origins, bare hosts and * are accepted; credentials are off unless asked', () => {
    const r = route('host: a, auth: none, cors: { origins: ["https://app.example.com:8443", "localhost", "127.0.0.1", "*"] }');
    assert.deepEqual(r.cors?.origins, ['https://app.example.com:8443', 'localhost', '127.0.0.1', '*']);
    assert.equal(r.cors?.credentials, false);
    assert.deepEqual(r.cors?.exposeHeaders, ['X-Request-Id', 'RateLimit', 'RateLimit-Policy', 'Retry-After']);
    assert.equal(route('host: a, auth: none, cors: { origins: [localhost], credentials: true }').cors?.credentials, true);
  });

  test('responseHeaders.keep lets named banners through', () => {
    assert.deepEqual(route('host: a, auth: none, responseHeaders: { keep: [Server] }').responseHeaders?.keep, ['server']);
  });
});

describe('bodies read whole and OpenAPI routes', () => {
  test('server.maxBufferedBodies and server.bodyReadTimeout take sizes and durations, within bounds', () => {
    const cfg = parseConfig(`server: { maxBufferedBodies: 8mb, bodyReadTimeout: 3s }\n${routeYaml('path: /x, auth: none')}`, {}, 'test.yaml');
    assert.equal(cfg.server.maxBufferedBodies, 8 * 1024 * 1024);
    assert.equal(cfg.server.bodyReadTimeout, 3000);
    const problems = problemsOf(`server: { maxBufferedBodies: 1kb, bodyReadTimeout: 10ms }\n${routeYaml('path: /x, auth: none')}`);
    assert.deepEqual(
      problems.map((p) => [p.path, p.message]),
      [
        ['server.maxBufferedBodies', 'at least 64kb'],
        ['server.bodyReadTimeout', 'at least 1s'],
      ],
    );
  });

  test('a route that reads bodies whole cannot take a body larger than the budget', () => {
    const problems = problemsOf(`server: { maxBufferedBodies: 1mb }\n${routeYaml('path: /x, auth: none, maxBody: 4mb, openapi: { spec: spec.json }')}`);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'routes[0].maxBody (route r)');
    assert.match(problems[0]?.message ?? '', /larger than server.maxBufferedBodies \(1048576 bytes\)/);
    // A route that streams its bodies is not bound by it.
    assert.equal(parseConfig(`server: { maxBufferedBodies: 1mb }\n${routeYaml('path: /x, auth: none, maxBody: 4mb')}`, {}, 'test.yaml').routes[0]?.maxBody, 4 * 1024 * 1024);
  });

  test('regression: openapi with allowEncodedSlashes is refused (the gateway would check one path, uvicorn, decoding %2F, route another)', () => {
    assert.deepEqual(
      problemsOf(routeYaml('path: /x, auth: none, allowEncodedSlashes: true, openapi: { spec: spec.json }')).map((p) => p.path),
      ['routes[0].allowEncodedSlashes (route r)'],
    );
    assert.match(problemsOf(routeYaml('path: /x, auth: none, allowEncodedSlashes: true, openapi: { spec: spec.json }'))[0]?.message ?? '', /allowEncodedSlashes cannot be used with openapi/);
    assert.equal(route('path: /x, auth: none, allowEncodedSlashes: false, openapi: { spec: spec.json }').allowEncodedSlashes, false);
  });
});
