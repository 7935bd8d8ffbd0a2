import { test } from 'node:test';
import assert from 'node:assert/strict';
import { safeReturnTo } from '../../../src/auth/return-to.js';

const OPTS = { host: 'api.test.local', hosts: new Set(['api.test.local', 'nocodb.test.local']), port: 8443 };

/**
 * Where a browser on https://api.test.local:8443 really goes with `Location: <result>`: the
 * WHATWG URL parser is what browsers use. Every result must stay on a gateway host and port.
 */
function landsOn(result: string): URL {
  return new URL(result, `https://${OPTS.host}:${OPTS.port}/auth/login`);
}

function assertSafe(input: string, result: string): void {
  const url = landsOn(result);
  assert.equal(url.protocol, 'https:', `${JSON.stringify(input)} → ${result}`);
  assert.ok(OPTS.hosts.has(url.hostname), `${JSON.stringify(input)} → ${result} leaves for ${url.hostname}`);
  assert.equal(url.port, String(OPTS.port), `${JSON.stringify(input)} → ${result} changes the port`);
  assert.equal(url.username + url.password, '', `${JSON.stringify(input)} → ${result} carries userinfo`);
  assert.ok(!result.startsWith('//') && !result.startsWith('/\\'), `${JSON.stringify(input)} → ${result} is protocol-relative`);
}

// Open redirects oauth2-proxy (CVE-2020-5233, CVE-2020-11053, CVE-2021-21291) and Pomerium fixed.
const CONTROL = { tab: '\t', cr: '\r', lf: '\n', vt: '\v', nul: '\0', space: ' ', ff: '\f' };

const PROTOCOL_RELATIVE = ['//evil.com', '///evil.com', '/\\evil.com', '\\/evil.com', '\\\\evil.com', '/\\/evil.com', '//evil.com/path', '//evil.com@api.test.local'];
const WHITESPACE_SMUGGLED = Object.entries(CONTROL).flatMap(([, c]) => [`/${c}/evil.com`, `${c}//evil.com`, `/${c}\\evil.com`, `//${c}evil.com`, `/${c}${c}/evil.com`, `https:${c}//evil.com`]);
const ABSOLUTE_ELSEWHERE = [
  'https://evil.com',
  'https://evil.com/',
  'https://api.test.local.evil.com',
  'https://api.test.local.evil.com:8443/x',
  'https://evil.com@api.test.local',
  'https://evil.com@api.test.local:8443/x',
  'https://api.test.local@evil.com',
  'https://api.test.local:8443@evil.com/',
  'https://evil.com\\@api.test.local:8443/',
  'https://evil.com#@api.test.local:8443/',
  'https://evil.com?@api.test.local:8443/',
  'https://api.test.local:9999/x',
  'https://nocodb.test.local:8444/x',
  'https://nocodb.test.local/x',
  'http://nocodb.test.local:8443/x',
  'http://evil.com',
  'HTTPS://evil.com',
  'https:evil.com',
  'https:/evil.com',
  'https:\\\\evil.com',
  'https:nocodb.test.local:8443/x',
  'https:/nocodb.test.local:8443/x',
  'ftp://nocodb.test.local:8443/x',
  'ws://nocodb.test.local:8443/x',
  'wss://nocodb.test.local:8443/x',
  'https://nocodb.test.local.:8443/x',
  'https://unknown.test.local:8443/x',
];
const SCHEMES = ['javascript:alert(1)', 'JavaScript:alert(1)', 'javascript://%0aalert(1)', 'java\tscript:alert(1)', 'data:text/html,<script>alert(1)</script>', 'data:,x', 'vbscript:msgbox(1)', 'blob:https://evil.com/x', 'file:///etc/passwd'];
const SCHEMELESS = ['evil.com', 'evil.com/path', 'evil.com:8443', 'api.test.local.evil.com/x', '@evil.com', 'nocodb.test.local:8443/x', '.evil.com'];
const LOOK_ALIKES = [
  '/\u2215\u2215evil.com', // division slash
  '/\u2044\u2044evil.com', // fraction slash
  '\uFF0F\uFF0Fevil.com', // fullwidth solidus
  '/\uFF3Cevil.com', // fullwidth reverse solidus
  '/\u3002evil.com',
  'https://api.test.lоcal:8443/x', // Cyrillic о
  'https://nocodb\u3002test\u3002local:8443/x', // ideographic full stops
  'https://xn--nocdb-7ve.test.local:8443/x',
  '/\u202e//evil.com', // right-to-left override
  '/\u00a0/evil.com', // no-break space
];

test('protocol-relative and backslash return paths are refused (become /)', () => {
  for (const rd of PROTOCOL_RELATIVE) assert.equal(safeReturnTo(rd, OPTS), '/', JSON.stringify(rd));
});

test('tab, CR, LF, VT, NUL, FF and space smuggled into a return path are refused (raw)', () => {
  for (const rd of WHITESPACE_SMUGGLED) assert.equal(safeReturnTo(rd, OPTS), '/', JSON.stringify(rd));
});

test('percent-encoded control characters and slashes never yield an off-host redirect', () => {
  const encoded = ['%09', '%0d', '%0D', '%0a', '%0b', '%00', '%0c', '%20', '%5c', '%5C', '%2f', '%2F'];
  for (const e of encoded) {
    for (const rd of [`/${e}/evil.com`, `${e}//evil.com`, `/${e}${e}evil.com`, `//${e}evil.com`, `/${e}/${e}/evil.com`]) {
      const out = safeReturnTo(rd, OPTS);
      assertSafe(rd, out);
    }
  }
  // The forms that could be decoded into a second slash by an upstream: refused outright.
  for (const rd of ['/%2F%2Fevil.com', '/%2f%2fevil.com', '/%5Cevil.com', '/%5c%5cevil.com', '/%09/evil.com', '/%0a/evil.com', '/%00/evil.com']) {
    assert.equal(safeReturnTo(rd, OPTS), '/', rd);
  }
});

test('absolute URLs to foreign hosts, look-alike suffixes, userinfo tricks, other ports and http are refused', () => {
  for (const rd of ABSOLUTE_ELSEWHERE) assert.equal(safeReturnTo(rd, OPTS), '/', rd);
});

test('javascript:, data: and other schemes are refused', () => {
  for (const rd of SCHEMES) assert.equal(safeReturnTo(rd, OPTS), '/', rd);
});

test('schemeless host names are refused', () => {
  for (const rd of SCHEMELESS) assert.equal(safeReturnTo(rd, OPTS), '/', rd);
});

test('unicode look-alikes of slashes, dots and letters are refused', () => {
  for (const rd of LOOK_ALIKES) assert.equal(safeReturnTo(rd, OPTS), '/', JSON.stringify(rd));
});

test('dot segments cannot climb into a protocol-relative path: /..//evil.com stays on this host', () => {
  for (const rd of ['/..//evil.com', '/../..//evil.com', '/%2e%2e//evil.com', '/.%2e//evil.com', '/a/..//evil.com', '/./\u002f/evil.com']) {
    const out = safeReturnTo(rd, OPTS);
    assertSafe(rd, out);
    assert.equal(landsOn(out).host, 'api.test.local:8443', rd);
  }
});

test('empty, missing and over-long return paths become /', () => {
  assert.equal(safeReturnTo(undefined, OPTS), '/');
  assert.equal(safeReturnTo(null, OPTS), '/');
  assert.equal(safeReturnTo('', OPTS), '/');
  assert.equal(safeReturnTo(`/${'a'.repeat(5000)}`, OPTS), '/');
});

test('allowed: a relative path with its query on this host', () => {
  assert.equal(safeReturnTo('/path?q=1', OPTS), '/path?q=1');
  assert.equal(safeReturnTo('/some/page', OPTS), '/some/page');
  assert.equal(safeReturnTo('/', OPTS), '/');
  assert.equal(safeReturnTo('/a%20b/c?x=%2F', OPTS), '/a%20b/c?x=%2F');
  // The fragment never reaches a server; dropping it is harmless.
  assert.equal(safeReturnTo('/path#//evil.com', OPTS), '/path');
});

test('allowed: an https URL on a configured gateway host and the public port', () => {
  assert.equal(safeReturnTo('https://nocodb.test.local:8443/x', OPTS), 'https://nocodb.test.local:8443/x');
  assert.equal(safeReturnTo('https://nocodb.test.local:8443/x?y=1', OPTS), 'https://nocodb.test.local:8443/x?y=1');
  assert.equal(safeReturnTo('https://NOCODB.test.local:8443/x', OPTS), 'https://nocodb.test.local:8443/x');
  assert.equal(safeReturnTo('https://nocodb.test.local/x', { ...OPTS, port: 443 }), 'https://nocodb.test.local/x');
  assert.equal(safeReturnTo('https://nocodb.test.local:443/x', { ...OPTS, port: 443 }), 'https://nocodb.test.local/x');
});

test('every result of the whole corpus lands on a gateway host and port', () => {
  const all = [...PROTOCOL_RELATIVE, ...WHITESPACE_SMUGGLED, ...ABSOLUTE_ELSEWHERE, ...SCHEMES, ...SCHEMELESS, ...LOOK_ALIKES, '/..//evil.com', '/%2F%2Fevil.com'];
  for (const rd of all) assertSafe(rd, safeReturnTo(rd, OPTS));
});

// Regression (review of issue 14): an absolute URL on our own host whose path starts with `//`
// passed, and a hop that cut its origin off (the SSO callback) answered `Location: //evil.example/x`.
test('an https URL on a gateway host whose path starts with two slashes (or an encoded slash or backslash) becomes /', () => {
  for (const path of ['//evil.example/phish', '///evil.example/phish', '//evil.example', '/%2F%2Fevil.example/x', '/%2f/evil.example', '/%5Cevil.example', '/\\evil.example', '/\\/evil.example']) {
    for (const host of ['api.test.local:8443', 'nocodb.test.local:8443']) {
      const rd = `https://${host}${path}`;
      const out = safeReturnTo(rd, OPTS);
      assert.equal(out, '/', `${rd} → ${out}`);
    }
  }
  // A path on our host with a single slash still passes.
  assert.equal(safeReturnTo('https://nocodb.test.local:8443/evil.example/x', OPTS), 'https://nocodb.test.local:8443/evil.example/x');
});
