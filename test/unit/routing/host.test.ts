import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeHost } from '../../../src/routing/host.js';

describe('normalizeHost: one comparable form', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['api.localhost', 'api.localhost'],
    ['API.LocalHost', 'api.localhost'],
    ['api.localhost.', 'api.localhost'],
    ['api.localhost:8443', 'api.localhost'],
    ['API.localhost.:443', 'api.localhost'],
    ['  api.localhost  ', 'api.localhost'],
    ['localhost', 'localhost'],
    ['xn--exmple-cua.com', 'xn--exmple-cua.com'],
    ['_dmarc.example.com', '_dmarc.example.com'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.1:8443', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[::1]:8443', '[::1]'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['[::ffff:10.0.0.1]:80', '[::ffff:10.0.0.1]'],
  ];
  for (const [raw, expected] of cases) {
    test(`${JSON.stringify(raw)} → ${expected}`, () => {
      assert.equal(normalizeHost(raw), expected);
    });
  }
});

describe('normalizeHost: garbage is undefined', () => {
  const garbage: readonly (readonly [string | undefined, string])[] = [
    [undefined, 'absent'],
    ['', 'empty'],
    ['   ', 'blank'],
    ['.', 'only a dot'],
    ['api.localhost..', 'two trailing dots'],
    ['a..b', 'empty label'],
    ['.a', 'leading dot'],
    ['-a.com', 'label starts with -'],
    ['a-.com', 'label ends with -'],
    ['a b', 'space inside'],
    ['a\tb', 'tab inside'],
    ['evil.com@api.localhost', 'userinfo'],
    ['user:pass@api.localhost', 'userinfo with colon'],
    ['x/y', 'slash'],
    ['api.localhost/admin', 'path'],
    ['api.localhost?x', 'query'],
    ['api.localhost#x', 'fragment'],
    ['api.localhost\\x', 'backslash'],
    ['api.localhost%2f', 'percent-encoding'],
    ['api.localhost:', 'empty port'],
    [':8443', 'port only'],
    ['api.localhost:abc', 'non-numeric port'],
    ['api.localhost:123456', 'port with six digits'],
    ['api.localhost:80:80', 'two ports'],
    ['::1', 'IPv6 without brackets'],
    ['fe80::1', 'IPv6 without brackets, last group read as a port'],
    ['[::1', 'unclosed bracket'],
    ['[]', 'empty brackets'],
    ['[::1]x', 'junk after bracket'],
    ['[::1]:', 'empty port after bracket'],
    ['[::1]:abc', 'bad port after bracket'],
    ['[fe80::1%25eth0]', 'zone id'],
    ['[evil.com]', 'name in brackets'],
    ['[:::]', 'regression: bracketed garbage made of IPv6 characters'],
    ['[1.2.3.4]', 'regression: IPv4 in brackets is not an IP literal'],
    ['[....]', 'regression: dots in brackets'],
    ['\u212Aey.com', 'regression: Kelvin sign lower-cases to ASCII k'],
    ['caf\u00e9.com', 'non-ASCII (IDN must arrive as punycode)'],
    ['api.localhost\u0000', 'NUL'],
    [`${'a'.repeat(250)}.com`, 'longer than 253'],
  ];
  for (const [raw, why] of garbage) {
    test(`${JSON.stringify(raw)?.slice(0, 40)} → undefined (${why})`, () => {
      assert.equal(normalizeHost(raw), undefined);
    });
  }

  test('253 characters is the longest accepted name', () => {
    const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    assert.equal(name.length, 253);
    assert.equal(normalizeHost(name), name);
    assert.equal(normalizeHost(`${name}.`), name, 'a trailing dot does not count');
    assert.equal(normalizeHost(`${name}e`), undefined);
  });

  test('a very long header does not hang the parser', () => {
    const long = `${'a-'.repeat(50_000)}a`;
    const started = performance.now();
    assert.equal(normalizeHost(long), undefined);
    assert.equal(normalizeHost(`${'a.'.repeat(50_000)}!`), undefined);
    assert.ok(performance.now() - started < 500);
  });
});
