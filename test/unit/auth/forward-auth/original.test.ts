import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { readOriginal, originalView } from '../../../../src/auth/forward-auth/original.js';
import { GatewayError } from '../../../../src/errors.js';
import { ConfigError, parseConfig } from '../../../../src/config/load.js';

/** A check's request as Node would parse it: raw header pairs, lower-cased map (repeats joined). */
function check(pairs: [string, string][], method = 'GET'): IncomingMessage {
  const headers: Record<string, string> = {};
  for (const [k, v] of pairs) headers[k.toLowerCase()] = headers[k.toLowerCase()] === undefined ? v : `${headers[k.toLowerCase()]}, ${v}`;
  return { method, headers, rawHeaders: pairs.flat(), url: '/auth/verify' } as unknown as IncomingMessage;
}

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err.code;
  }
  assert.fail('expected a refusal');
}

describe('forward-auth: reading the original request', () => {
  test('Traefik and Caddy names: method, host (port kept for CSRF, dropped for routing), path and query', () => {
    const o = readOriginal(check([['X-Forwarded-Method', 'POST'], ['X-Forwarded-Host', 'App.Example.com:8443'], ['X-Forwarded-Uri', '/a/b?x=1&y=2'], ['X-Forwarded-Proto', 'https']]), 8192);
    assert.deepEqual(o, { method: 'POST', hostHeader: 'App.Example.com:8443', host: 'app.example.com', rawPath: '/a/b', query: 'x=1&y=2', statusOnly: false });
  });

  test("nginx's names ask for status-only answers; its subrequest's own method is the original's", () => {
    const o = readOriginal(check([['X-Forwarded-Host', 'app.example.com'], ['X-Original-URI', '/p']], 'DELETE'), 8192);
    assert.equal(o.method, 'DELETE');
    assert.equal(o.statusOnly, true);
  });

  test('refuses what could be read two ways or not at all', () => {
    const host: [string, string] = ['X-Forwarded-Host', 'app.example.com'];
    assert.equal(refused(() => readOriginal(check([host]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'no URI');
    assert.equal(refused(() => readOriginal(check([host, ['X-Forwarded-Uri', '/a'], ['X-Original-URI', '/b']]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'both URIs');
    assert.equal(refused(() => readOriginal(check([host, ['X-Forwarded-Uri', '/a'], ['X-Forwarded-Uri', '/b']]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'a repeated URI');
    assert.equal(refused(() => readOriginal(check([host, ['X-Forwarded-Host', 'b.example.com'], ['X-Forwarded-Uri', '/a']]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'a repeated host');
    assert.equal(refused(() => readOriginal(check([['X-Forwarded-Uri', '/a']]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'no host');
    assert.equal(refused(() => readOriginal(check([['X-Forwarded-Host', 'a b'], ['X-Forwarded-Uri', '/a']]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'a malformed host');
    for (const uri of ['a', 'http://evil/x', '/a#f', '/a b', '/é']) {
      assert.equal(refused(() => readOriginal(check([host, ['X-Forwarded-Uri', uri]]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', uri);
    }
    assert.equal(refused(() => readOriginal(check([host, ['X-Forwarded-Uri', `/${'a'.repeat(300)}`]]), 256)), 'FORWARD_AUTH_BAD_REQUEST', 'too long');
    assert.equal(refused(() => readOriginal(check([host, ['X-Forwarded-Uri', '/a'], ['X-Forwarded-Method', 'GET'], ['X-Original-Method', 'POST']]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'two methods');
    assert.equal(refused(() => readOriginal(check([host, ['X-Forwarded-Uri', '/a'], ['X-Forwarded-Method', 'G E T']]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'a bad method');
    assert.equal(refused(() => readOriginal(check([host, ['X-Forwarded-Uri', '/a'], ['X-Forwarded-Proto', 'gopher']]), 8192)), 'FORWARD_AUTH_BAD_REQUEST', 'a bad scheme');
  });

  test("the steps' view: original method, Host and URL; the describing headers gone; the rest as the edge passed them", () => {
    const req = check([['Host', 'auth.example.com'], ['Cookie', 'a=1'], ['X-Forwarded-Host', 'app.example.com'], ['X-Forwarded-Uri', '/p?q=1'], ['X-Forwarded-Method', 'PUT']]);
    const view = originalView(req, readOriginal(req, 8192));
    assert.equal(view.method, 'PUT');
    assert.equal(view.url, '/p?q=1');
    assert.equal(view.headers.host, 'app.example.com');
    assert.equal(view.headers.cookie, 'a=1');
    assert.equal(view.headers['x-forwarded-uri'], undefined);
    assert.equal(req.method, 'GET', 'the check itself is unchanged');
  });
});

describe('forward-auth: config', () => {
  const ROUTE = 'routes:\n  - { name: app, host: app.example.com, upstream: "http://127.0.0.1:3000", auth: session }\n';

  test('off unless configured; FORWARD_AUTH_HOST turns it on with the default path, edges from TRUSTED_PROXIES', () => {
    assert.equal(parseConfig(ROUTE, {}).forwardAuth, undefined);
    const cfg = parseConfig(ROUTE, { FORWARD_AUTH_HOST: 'Auth.Example.com', TRUSTED_PROXIES: '10.0.0.5' });
    assert.deepEqual(cfg.forwardAuth, { host: 'auth.example.com', path: '/auth/verify', edges: [] });
  });

  test('refused without any edge to believe (fail closed), and with a path outside /auth/', () => {
    const problems = (yaml: string, env: Record<string, string> = {}): string[] => {
      try {
        parseConfig(yaml, env);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.problems.map((p) => `${p.path}: ${p.message}`);
      }
      return [];
    };
    assert.match(problems(ROUTE, { FORWARD_AUTH_HOST: 'auth.example.com' }).join('\n'), /forwardAuth\.host.*edge proxies/);
    assert.match(problems(`forwardAuth: { host: auth.example.com, path: /verify, edges: [10.0.0.5] }\n${ROUTE}`).join('\n'), /forwardAuth\.path/);
    assert.deepEqual(problems(`forwardAuth: { host: auth.example.com, edges: [10.0.0.5/32] }\n${ROUTE}`), []);
  });
});
