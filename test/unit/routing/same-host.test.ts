import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { namesRequestHost } from '../../../src/routing/same-host.js';
import { normalizeHost } from '../../../src/routing/host.js';

/** [Origin or Referer, Host, plain (the CSRF check), dottedHost (CORS)] */
const CASES: readonly (readonly [string, string | undefined, boolean, boolean])[] = [
  ['https://app.example', 'app.example', true, true],
  // case: the URL parser lower-cases the URL, the Host is lower-cased here
  ['https://APP.Example', 'app.example', true, true],
  ['https://app.example', 'App.EXAMPLE', true, true],
  // ports: compared as written, the URL's default port dropped
  ['https://app.example:8443', 'app.example:8443', true, true],
  ['https://app.example:8443', 'app.example', false, false],
  ['https://app.example', 'app.example:8443', false, false],
  ['https://app.example:443', 'app.example', true, true],
  ['https://app.example', 'app.example:443', false, false],
  // the Host's root dot, before a port or at the end
  ['https://app.example', 'app.example.', true, true],
  ['https://app.example:8443', 'App.Example.:8443', true, true],
  ['https://app.example.', 'app.example.', false, true],
  ['https://app.example.:8443', 'app.example.:8443', false, true],
  ['https://app.example.', 'app.example', false, false],
  // IPv6 literals: the URL side is canonical, the Host side is not rewritten
  ['https://[::1]', '[::1]', true, true],
  ['https://[::1]:8443', '[::1]:8443', true, true],
  ['https://[2001:DB8::1]', '[2001:db8::1]', true, true],
  ['https://[2001:db8::1]', '[2001:DB8::1]', true, true],
  ['https://[0:0::1]', '[::1]', true, true],
  ['https://[::1]', '[0:0::1]', false, false],
  ['https://[::ffff:10.0.0.1]', '[::ffff:10.0.0.1]', false, false],
  ['https://[::ffff:a00:1]', '[::ffff:a00:1]', true, true],
  ['https://127.0.0.1:8443', '127.0.0.1:8443', true, true],
  // other hosts
  ['https://evil.example', 'app.example', false, false],
  ['https://app.example.evil', 'app.example', false, false],
  ['https://sub.app.example', 'app.example', false, false],
  ['https://app.example', '', false, false],
  ['https://app.example', undefined, false, false],
];

describe('namesRequestHost: an Origin naming the Host the request was sent to', () => {
  for (const [url, host, plain, dotted] of CASES) {
    test(`${url} with Host ${JSON.stringify(host)}: ${plain} / dottedHost ${dotted}`, () => {
      assert.equal(namesRequestHost(new URL(url), host), plain);
      assert.equal(namesRequestHost(new URL(url), host, { dottedHost: true }), dotted);
    });
  }

  // The comparisons policy/cors.ts and auth/csrf.ts each wrote before they shared this one.
  const corsBefore = (origin: URL, hostHeader: string): boolean => {
    const h = hostHeader.toLowerCase();
    return origin.host === h || origin.host === h.replace(/\.(?=:|$)/, '');
  };
  const csrfBefore = (url: URL, hostHeader: string): boolean => url.host === hostHeader.toLowerCase().replace(/\.(?=:\d+$|$)/, '');

  test('the same answers as the CSRF check and CORS gave before, on every case', () => {
    for (const [url, host] of CASES) {
      const u = new URL(url);
      assert.equal(namesRequestHost(u, host), csrfBefore(u, host ?? ''), `${url} ${host}`);
      assert.equal(namesRequestHost(u, host, { dottedHost: true }), corsBefore(u, host ?? ''), `${url} ${host}`);
    }
  });

  test("CORS's old root-dot pattern dropped a dot before any colon; no Host that reaches CORS has one", () => {
    // Two kinds of malformed Host tell the two patterns apart: a dot inside an IPv6 literal
    // (the old pattern matched more) and a dot after the port (the new one lets the dot before
    // the port stand for the root). The request-target step refuses both (HOST_INVALID) before
    // any route step, CORS included, runs.
    const v6 = new URL('https://[::1:2]');
    assert.equal(corsBefore(v6, '[::1.:2]'), true);
    assert.equal(namesRequestHost(v6, '[::1.:2]', { dottedHost: true }), false);
    assert.equal(normalizeHost('[::1.:2]'), undefined);
    const dotted = new URL('https://a.example.:8443');
    assert.equal(corsBefore(dotted, 'a.example.:8443.'), false);
    assert.equal(namesRequestHost(dotted, 'a.example.:8443.', { dottedHost: true }), true);
    assert.equal(normalizeHost('a.example.:8443.'), undefined);
    assert.equal(normalizeHost('app.example.:'), undefined);
  });
});
