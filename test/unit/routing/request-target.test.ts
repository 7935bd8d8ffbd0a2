import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { readRequestTarget } from '../../../src/routing/request-target.js';
import { GatewayError, type ErrorCode } from '../../../src/errors.js';

const MAX = 8192;

/** The few IncomingMessage fields readRequestTarget reads, shaped as node's parser fills them. */
function fakeReq(url: string | undefined, rawHeaders: readonly string[] = ['Host', 'api.localhost'], method = 'GET'): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    // node keeps the first Host and drops later ones; rawHeaders still holds them all.
    if (name === 'host' && name in headers) continue;
    headers[name] = rawHeaders[i + 1] as string;
  }
  return { method, url, headers, rawHeaders: [...rawHeaders] } as unknown as IncomingMessage;
}

function assertRefused(req: IncomingMessage, code: ErrorCode, detail: string, max = MAX): void {
  assert.throws(
    () => readRequestTarget(req, max),
    (err: unknown) => {
      assert.ok(err instanceof GatewayError, String(err));
      assert.equal(err.code, code);
      assert.equal(err.detail, detail);
      return true;
    },
  );
}

describe('readRequestTarget: origin-form', () => {
  test('splits path and query at the first ?, query passed on unchanged', () => {
    assert.deepEqual(readRequestTarget(fakeReq('/a/b?x=1&y=%2F'), MAX), { host: 'api.localhost', rawPath: '/a/b', query: 'x=1&y=%2F' });
  });

  test('no query gives an empty query', () => {
    assert.deepEqual(readRequestTarget(fakeReq('/a'), MAX), { host: 'api.localhost', rawPath: '/a', query: '' });
  });

  test('a later ? belongs to the query', () => {
    assert.deepEqual(readRequestTarget(fakeReq('/a?b?c=/../d'), MAX), { host: 'api.localhost', rawPath: '/a', query: 'b?c=/../d' });
  });

  test('a bare trailing ? gives an empty query', () => {
    assert.equal(readRequestTarget(fakeReq('/a?'), MAX).query, '');
  });

  test('the raw path is returned unnormalized (normalization happens once, later)', () => {
    assert.equal(readRequestTarget(fakeReq('//x/%2e%2e/%61dmin'), MAX).rawPath, '//x/%2e%2e/%61dmin');
  });

  test('Host is normalized: case, port and trailing dot dropped', () => {
    assert.equal(readRequestTarget(fakeReq('/', ['HOST', 'API.LocalHost.:8443']), MAX).host, 'api.localhost');
    assert.equal(readRequestTarget(fakeReq('/', ['host', '[::1]:8443']), MAX).host, '[::1]');
  });
});

describe('readRequestTarget: absolute-form', () => {
  test('accepted when its authority is the Host', () => {
    assert.deepEqual(readRequestTarget(fakeReq('http://api.localhost/x?y=1'), MAX), { host: 'api.localhost', rawPath: '/x', query: 'y=1' });
  });

  test('authority compared in normal form: scheme and host case, port, trailing dot', () => {
    const t = readRequestTarget(fakeReq('HTTPS://API.LOCALHOST.:8443/x', ['Host', 'api.localhost']), MAX);
    assert.deepEqual(t, { host: 'api.localhost', rawPath: '/x', query: '' });
  });

  test('without a path it is /', () => {
    assert.deepEqual(readRequestTarget(fakeReq('https://api.localhost'), MAX), { host: 'api.localhost', rawPath: '/', query: '' });
  });

  test('with only a query the path is /', () => {
    assert.deepEqual(readRequestTarget(fakeReq('https://api.localhost?x=1'), MAX), { host: 'api.localhost', rawPath: '/', query: 'x=1' });
  });

  test('a foreign host is refused, not routed by either name', () => {
    assertRefused(fakeReq('http://evil.com/x'), 'BAD_REQUEST_TARGET', 'absolute-form host evil.com is not the Host');
    assertRefused(fakeReq('http://nocodb.localhost/x'), 'BAD_REQUEST_TARGET', 'absolute-form host nocodb.localhost is not the Host');
  });

  test('an empty authority is refused', () => {
    assertRefused(fakeReq('http:///x'), 'BAD_REQUEST_TARGET', 'absolute-form host  is not the Host');
  });

  test('userinfo is refused in every position', () => {
    for (const url of [
      'http://user@api.localhost/',
      'http://user:pass@api.localhost/x',
      'http://api.localhost@evil.com/',
      'http://evil.com\\@api.localhost/',
      'http://@api.localhost/',
    ]) {
      assertRefused(fakeReq(url), 'BAD_REQUEST_TARGET', 'userinfo in absolute-form target');
    }
  });

  test('an @ after the authority is path, not userinfo', () => {
    assert.equal(readRequestTarget(fakeReq('http://api.localhost/u@x'), MAX).rawPath, '/u@x');
    assert.equal(readRequestTarget(fakeReq('http://api.localhost?u@x'), MAX).query, 'u@x');
  });

  test('other schemes are refused', () => {
    assertRefused(fakeReq('ftp://api.localhost/'), 'BAD_REQUEST_TARGET', 'unsupported request-target form');
    assertRefused(fakeReq('ws://api.localhost/'), 'BAD_REQUEST_TARGET', 'unsupported request-target form');
  });
});

describe('readRequestTarget: refused forms and methods', () => {
  test('asterisk-form', () => {
    assertRefused(fakeReq('*', undefined, 'OPTIONS'), 'BAD_REQUEST_TARGET', 'asterisk-form target');
  });

  test('authority-form and relative targets', () => {
    assertRefused(fakeReq('api.localhost:443'), 'BAD_REQUEST_TARGET', 'unsupported request-target form');
    assertRefused(fakeReq('admin'), 'BAD_REQUEST_TARGET', 'unsupported request-target form');
    assertRefused(fakeReq(''), 'BAD_REQUEST_TARGET', 'unsupported request-target form');
    assertRefused(fakeReq(undefined), 'BAD_REQUEST_TARGET', 'unsupported request-target form');
  });

  for (const method of ['CONNECT', 'TRACE', 'TRACK']) {
    test(`${method} is 405 before anything else is looked at`, () => {
      const req = fakeReq('api.localhost:443', [], method);
      assertRefused(req, 'METHOD_NOT_ALLOWED', `method ${method}`);
      assert.throws(() => readRequestTarget(req, MAX), (err: unknown) => err instanceof GatewayError && err.status === 405);
    });
  }

  test('a fragment is refused', () => {
    assertRefused(fakeReq('/a#b'), 'BAD_REQUEST_TARGET', 'fragment in request target');
    assertRefused(fakeReq('/a?x#b'), 'BAD_REQUEST_TARGET', 'fragment in request target');
    assertRefused(fakeReq('http://api.localhost#@evil.com/'), 'BAD_REQUEST_TARGET', 'fragment in request target');
  });

  test('raw control, space and non-ASCII characters are refused', () => {
    for (const url of ['/a b', '/a\tb', '/a\u0000', '/a\r\nX: y', '/a\u007f', '/caf\u00e9', '/a\uff0f', '/?q=\u{1F600}']) {
      assertRefused(fakeReq(url), 'BAD_REQUEST_TARGET', 'control, space or non-ASCII character');
    }
  });
});

describe('readRequestTarget: Host', () => {
  test('missing Host', () => {
    assertRefused(fakeReq('/', ['Accept', '*/*']), 'HOST_INVALID', '0 Host headers');
  });

  test('duplicate Host in rawHeaders is refused even when node kept only the first', () => {
    assertRefused(fakeReq('/', ['Host', 'api.localhost', 'host', 'nocodb.localhost']), 'HOST_INVALID', '2 Host headers');
    assertRefused(fakeReq('/', ['Host', 'api.localhost', 'HOST', 'api.localhost']), 'HOST_INVALID', '2 Host headers');
  });

  test('malformed Host values', () => {
    for (const host of ['', 'a b', 'evil.com@api.localhost', 'x/y', 'api.localhost:abc', '[:::]']) {
      assertRefused(fakeReq('/', ['Host', host]), 'HOST_INVALID', `malformed Host ${JSON.stringify(host)}`);
    }
  });
});

describe('readRequestTarget: length', () => {
  test('one byte over the limit is URI_TOO_LONG (414)', () => {
    const url = `/${'a'.repeat(299)}`;
    assertRefused(fakeReq(`${url}b`), 'URI_TOO_LONG', '301 bytes', 300);
    assert.throws(() => readRequestTarget(fakeReq(`${url}b`), 300), (err: unknown) => err instanceof GatewayError && err.status === 414);
  });

  test('exactly the limit is accepted', () => {
    const url = `/${'a'.repeat(299)}`;
    assert.equal(readRequestTarget(fakeReq(url), 300).rawPath, url);
  });

  test('the query counts toward the limit', () => {
    assertRefused(fakeReq(`/?${'q'.repeat(400)}`), 'URI_TOO_LONG', '402 bytes', 300);
  });

  test('length is checked before content, so a huge malformed target costs no scan', () => {
    assertRefused(fakeReq(`/${' '.repeat(MAX)}`), 'URI_TOO_LONG', `${MAX + 1} bytes`);
  });
});
