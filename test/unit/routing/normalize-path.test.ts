import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, type NormalizeOptions } from '../../../src/routing/normalize-path.js';
import { GatewayError } from '../../../src/errors.js';

function assertRejected(raw: string, detail: string, opts?: NormalizeOptions): void {
  assert.throws(
    () => normalizePath(raw, opts),
    (err: unknown) => {
      assert.ok(err instanceof GatewayError, `expected a GatewayError for ${JSON.stringify(raw)}, got ${String(err)}`);
      assert.equal(err.code, 'PATH_REJECTED');
      assert.equal(err.status, 400);
      assert.equal(err.detail, detail, `detail for ${JSON.stringify(raw)}`);
      return true;
    },
  );
}

type Case = readonly [raw: string, expected: string, why: string];
type Rejection = readonly [raw: string, detail: string, why: string];

/** Accepted shapes and their one canonical form. */
const ACCEPTED: readonly Case[] = [
  ['/', '/', 'root'],
  ['/admin', '/admin', 'plain path'],
  ['/admin/', '/admin/', 'trailing slash kept'],
  ['/ADMIN', '/ADMIN', 'case is kept (routing is case-sensitive)'],
  ['/%61dmin', '/admin', 'encoded unreserved letter decoded, so policy sees /admin'],
  ['/%61%64%6D%69%6E', '/admin', 'fully encoded unreserved, mixed-case hex'],
  ['/%41DMIN', '/ADMIN', 'encoded capital letter decoded'],
  ['/file%2Etxt', '/file.txt', 'encoded dot inside a name decoded'],
  ['/a%2d%5f%7e', '/a-_~', 'encoded - _ ~ decoded'],
  ['//admin', '/admin', 'merge-slashes: leading double slash'],
  ['///admin//x///', '/admin/x/', 'merge-slashes: every run'],
  ['/secret//files/file.txt', '/secret/files/file.txt', 'Caddy #1859 double slash inside'],
  ['/.well-known/acme-challenge/x', '/.well-known/acme-challenge/x', 'dot-led name is not a dot segment'],
  ['/a/...', '/a/...', 'three dots is a name'],
  ['/..a/a..', '/..a/a..', 'dots inside names'],
  ['/.%2e%2e', '/...', 'encoded three dots is a name'],
  ['/a%3fb', '/a%3Fb', 'encoded ? kept encoded, hex upper-cased'],
  ['/a%23b', '/a%23b', 'encoded # kept encoded'],
  ['/a%3bb', '/a%3Bb', 'encoded ; kept encoded'],
  ['/..%3b/admin', '/..%3B/admin', 'encoded ; after dots: segment is "..;" only after a second decode (see report)'],
  ['/a%20b', '/a%20b', 'encoded space kept'],
  ['/a%3a%40', '/a%3A%40', 'encoded reserved kept, upper-cased'],
  ['/100%25', '/100%25', 'literal percent at the end'],
  ['/100%25off', '/100%25off', 'literal percent before non-hex'],
  ['/%25zz', '/%25zz', 'literal percent before non-hex letters'],
  ['/caf%c3%a9', '/caf%C3%A9', 'valid UTF-8 kept encoded, upper-cased'],
  ['/%c3%A9', '/%C3%A9', 'valid UTF-8 with mixed-case hex'],
  ['/%ef%bc%8f', '/%EF%BC%8F', 'fullwidth solidus U+FF0F stays encoded, never becomes /'],
  ['/%ef%bc%8e%ef%bc%8e/admin', '/%EF%BC%8E%EF%BC%8E/admin', 'fullwidth full stops are not dot segments'],
  ['/%ef%bc%bc', '/%EF%BC%BC', 'fullwidth reverse solidus stays encoded'],
  ['/%EF%BB%BF', '/%EF%BB%BF', 'BOM is valid UTF-8, kept'],
  ['/%f0%9f%98%80', '/%F0%9F%98%80', '4-byte UTF-8 kept'],
  ['/a"b', '/a%22b', 'raw " encoded'],
  ['/a<b>', '/a%3Cb%3E', 'raw < > encoded'],
  ['/{x}|^`', '/%7Bx%7D%7C%5E%60', 'raw { } | ^ ` encoded'],
  ['/[x]', '/%5Bx%5D', 'raw [ ] encoded'],
  ["/!$&'()*+,;=:@", "/!$&'()*+,;=:@", 'sub-delims, : and @ kept raw'],
  ['/a;b=c', '/a;b=c', '; parameters on a normal segment kept (see report)'],
  ['/;/admin', '/;/admin', 'lone ; segment kept (see report)'],
];

/** Known bypass shapes and the reason each is refused. */
const REJECTED: readonly Rejection[] = [
  // Envoy CVE-2019-9901 and friends: escaped slashes and backslashes.
  ['/%2F', 'encoded slash', 'Envoy: %2F'],
  ['/admin%2f', 'encoded slash', 'Traefik GHSA-gm3x: /admin%2F'],
  ['/public/..%2Fadmin', 'encoded slash', 'Envoy: ..%2F'],
  ['/public/..%2fadmin/secret', 'encoded slash', 'Caddy GHSA-m8m5: ..%2f'],
  ['/public%5c..%5cadmin', 'encoded backslash', 'Envoy: %5C'],
  ['/private%5csecret.txt', 'encoded backslash', 'Caddy GHSA-qrp7: %5c'],
  ['/%5C', 'encoded backslash', 'upper-case %5C'],
  // Dot segments, raw and encoded, any case.
  ['/public/../admin', 'dot segment', 'raw ..'],
  ['/public/%2e%2e/admin', 'dot segment', 'Traefik #11746 / oauth2-proxy: %2e%2e'],
  ['/public/%2E%2e/admin', 'dot segment', 'mixed-case hex %2E%2e'],
  ['/public/.%2e/admin', 'dot segment', 'half encoded .%2e'],
  ['/public/%2e./admin', 'dot segment', 'half encoded %2e.'],
  ['/%2e%2e/admin', 'dot segment', 'oauth2-proxy: /%2e%2e/'],
  ['/%2e/WEB-INF/web.xml', 'dot segment', 'Jetty CVE-2021-28164: /%2e/'],
  ['/a/./b', 'dot segment', '/./ inside'],
  ['/./admin', 'dot segment', 'leading /./'],
  ['/admin/..', 'dot segment', 'trailing /..'],
  ['/admin/.', 'dot segment', 'trailing /.'],
  ['/.', 'dot segment', 'just /.'],
  ['/..', 'dot segment', 'just /..'],
  ['/%2e', 'dot segment', 'just encoded dot'],
  ['//..//admin', 'dot segment', 'dot segment hidden between merged slashes'],
  // Tomcat / Spring path parameters on dot segments.
  ['/public/..;/admin', 'dot segment', 'Tomcat ..;/'],
  ['/public/..;jsessionid=x/admin', 'dot segment', 'Tomcat ..;param/'],
  ['/.;/admin', 'dot segment', 'Spring /.;/'],
  ['/public/%2e%2e;/admin', 'dot segment', 'encoded dots with ;'],
  ['/public/..;', 'dot segment', 'trailing ..;'],
  // Query and fragment tricks: the caller passes the path alone.
  ['/public?/../admin', 'query or fragment inside path', 'oauth2-proxy: query tricks'],
  ['/public#/../admin', 'query or fragment inside path', 'oauth2-proxy GHSA-pxq7: # as delimiter'],
  // Double encoding.
  ['/%252e%252e/admin', 'double percent-encoding', '%252e%252e'],
  ['/admin%252f', 'double percent-encoding', '%252f'],
  ['/admin%255c', 'double percent-encoding', '%255c'],
  ['/%2500', 'double percent-encoding', '%2500'],
  ['/%2525', 'double percent-encoding', '%2525'],
  ['/%25%32%65%25%32%65/admin', 'double percent-encoding', 'regression: %25 before escaped hex digits became %252e'],
  ['/%25%32e', 'double percent-encoding', 'regression: %25 before one escaped hex digit'],
  ['/x%25%34%31', 'double percent-encoding', 'regression: %25%34%31 became %2541'],
  // Overlong, truncated and out-of-range UTF-8.
  ['/%c0%ae%c0%ae/admin', 'invalid UTF-8 in percent-encoding', 'overlong 2-byte dot %c0%ae'],
  ['/%c0%af', 'invalid UTF-8 in percent-encoding', 'overlong 2-byte slash'],
  ['/%e0%80%ae', 'invalid UTF-8 in percent-encoding', 'overlong 3-byte dot'],
  ['/%e0%80%af', 'invalid UTF-8 in percent-encoding', 'overlong 3-byte slash'],
  ['/%f0%80%80%ae', 'invalid UTF-8 in percent-encoding', 'overlong 4-byte dot'],
  ['/%c1%9c', 'invalid UTF-8 in percent-encoding', 'overlong backslash (IIS)'],
  ['/%c1%1c', 'invalid UTF-8 in percent-encoding', 'lead byte followed by an ASCII escape'],
  ['/%c3', 'invalid UTF-8 in percent-encoding', 'truncated sequence'],
  ['/%c3x', 'invalid UTF-8 in percent-encoding', 'truncated sequence before a raw char'],
  ['/%80', 'invalid UTF-8 in percent-encoding', 'lone continuation byte'],
  ['/%ed%a0%80', 'invalid UTF-8 in percent-encoding', 'UTF-16 surrogate'],
  ['/%f4%90%80%80', 'invalid UTF-8 in percent-encoding', 'beyond U+10FFFF'],
  ['/%ff', 'invalid UTF-8 in percent-encoding', '0xFF never appears in UTF-8'],
  // NUL and control characters, encoded.
  ['/%00', 'encoded control character', 'NUL'],
  ['/admin%00.json', 'encoded control character', 'NUL truncation'],
  ['/.%00/WEB-INF/web.xml', 'encoded control character', 'Jetty CVE-2021-34429 .%00'],
  ['/a/..%00/admin', 'encoded control character', 'Jetty CVE-2021-34429 ..%00'],
  ['/a%0d%0aSet-Cookie:x', 'encoded control character', 'CRLF injection'],
  ['/a%09', 'encoded control character', 'tab'],
  ['/a%1f', 'encoded control character', 'unit separator'],
  ['/a%7f', 'encoded control character', 'DEL'],
  // Raw control, space, non-ASCII.
  ['/a\u0000b', 'control, space or non-ASCII character', 'raw NUL'],
  ['/a\nb', 'control, space or non-ASCII character', 'raw LF'],
  ['/a\rb', 'control, space or non-ASCII character', 'raw CR'],
  ['/a\tb', 'control, space or non-ASCII character', 'raw tab'],
  ['/a b', 'control, space or non-ASCII character', 'raw space'],
  ['/a\u007fb', 'control, space or non-ASCII character', 'raw DEL'],
  ['/caf\u00e9', 'control, space or non-ASCII character', 'raw non-ASCII'],
  ['/a\uff0fb', 'control, space or non-ASCII character', 'raw fullwidth solidus'],
  ['/\u2024\u2024/admin', 'control, space or non-ASCII character', 'raw one-dot leaders'],
  // Backslash, raw.
  ['/\\admin', 'backslash', 'raw backslash'],
  ['/public\\..\\admin', 'backslash', 'Windows-style traversal'],
  // Malformed escapes.
  ['/%', 'malformed percent-encoding', 'lone %'],
  ['/%2', 'malformed percent-encoding', 'one hex digit'],
  ['/%zz', 'malformed percent-encoding', 'not hex'],
  ['/%u002e/WEB-INF/web.xml', 'malformed percent-encoding', 'Jetty CVE-2021-34429 %u002e (IIS %u)'],
  ['/%%32%65', 'malformed percent-encoding', 'nested escape'],
  ['/% 2e', 'malformed percent-encoding', 'space inside escape'],
  // Not origin-form.
  ['', 'path does not start with /', 'empty'],
  ['admin', 'path does not start with /', 'relative'],
  ['*', 'path does not start with /', 'asterisk'],
  ['http://x/admin', 'path does not start with /', 'absolute URL'],
  ['%2Fadmin', 'path does not start with /', 'encoded leading slash'],
];

describe('normalizePath: canonical forms', () => {
  for (const [raw, expected, why] of ACCEPTED) {
    test(`${JSON.stringify(raw)} → ${JSON.stringify(expected)} (${why})`, () => {
      assert.equal(normalizePath(raw), expected);
    });
  }

  test('the canonical form is a fixed point: normalizing it again changes nothing', () => {
    for (const [raw] of ACCEPTED) {
      const once = normalizePath(raw);
      assert.equal(normalizePath(once), once, `not idempotent for ${JSON.stringify(raw)}`);
    }
  });
});

describe('normalizePath: bypass corpus is refused', () => {
  for (const [raw, detail, why] of REJECTED) {
    test(`${JSON.stringify(raw)} refused: ${detail} (${why})`, () => {
      assertRejected(raw, detail);
    });
  }
});

describe('normalizePath: every single-byte escape', () => {
  test('%00-%7F: controls refused, / and \\ refused, unreserved decoded, the rest kept upper-case', () => {
    for (let byte = 0; byte < 0x80; byte++) {
      const hex = byte.toString(16).padStart(2, '0');
      const ch = String.fromCharCode(byte);
      for (const escape of [`%${hex}`, `%${hex.toUpperCase()}`]) {
        const raw = `/a${escape}`;
        if (byte < 0x20 || byte === 0x7f) assertRejected(raw, 'encoded control character');
        else if (ch === '/') assertRejected(raw, 'encoded slash');
        else if (ch === '\\') assertRejected(raw, 'encoded backslash');
        else if (/[A-Za-z0-9\-._~]/.test(ch)) assert.equal(normalizePath(raw), `/a${ch}`, raw);
        else assert.equal(normalizePath(raw), `/a%${hex.toUpperCase()}`, raw);
      }
    }
  });

  test('%80-%FF alone are never valid UTF-8', () => {
    for (let byte = 0x80; byte <= 0xff; byte++) {
      assertRejected(`/a%${byte.toString(16)}`, 'invalid UTF-8 in percent-encoding');
    }
  });

  test('every printable ASCII character is either kept, encoded, or refused by name', () => {
    for (let code = 0x21; code <= 0x7e; code++) {
      const ch = String.fromCharCode(code);
      const raw = `/a${ch}b`;
      if (ch === '\\') assertRejected(raw, 'backslash');
      else if (ch === '?' || ch === '#') assertRejected(raw, 'query or fragment inside path');
      else if (ch === '%') assertRejected(raw, 'malformed percent-encoding');
      else if (ch === '/') assert.equal(normalizePath(raw), '/a/b');
      else {
        const out = normalizePath(raw);
        assert.ok(out === raw || out === `/a%${code.toString(16).toUpperCase()}b`, `${raw} → ${out}`);
      }
    }
  });
});

describe('normalizePath: allowEncodedSlashes', () => {
  const allow = { allowEncodedSlashes: true };

  test('keeps %2F upper-cased and does not merge or decode it', () => {
    assert.equal(normalizePath('/%2f', allow), '/%2F');
    assert.equal(normalizePath('/api/v4/projects/group%2fproject', allow), '/api/v4/projects/group%2Fproject');
    assert.equal(normalizePath('/a%2F%2Fb', allow), '/a%2F%2Fb');
    assert.equal(normalizePath('//a%2Fb//c', allow), '/a%2Fb/c');
  });

  test('regression: ..%2F is a dot segment for an upstream that decodes %2F, so it is refused', () => {
    assertRejected('/public/..%2Fadmin', 'dot segment', allow);
    assertRejected('/public/x%2F..%2F..%2Fadmin', 'dot segment', allow);
    assertRejected('/public/%2e%2e%2fadmin', 'dot segment', allow);
    assertRejected('/public%2F.%2Fadmin', 'dot segment', allow);
    assertRejected('/public/..;%2Fadmin', 'dot segment', allow);
  });

  test('names that merely contain dots next to %2F are kept', () => {
    assert.equal(normalizePath('/a%2F...%2Fb', allow), '/a%2F...%2Fb');
    assert.equal(normalizePath('/a%2F.hidden', allow), '/a%2F.hidden');
  });

  test('still refuses encoded backslash, double-encoded slash and every other shape', () => {
    assertRejected('/a%5cb', 'encoded backslash', allow);
    assertRejected('/a%252fb', 'double percent-encoding', allow);
    assertRejected('/a/../b', 'dot segment', allow);
    assertRejected('/%c0%af', 'invalid UTF-8 in percent-encoding', allow);
  });

  test('is off by default and when false', () => {
    assertRejected('/a%2Fb', 'encoded slash');
    assertRejected('/a%2Fb', 'encoded slash', { allowEncodedSlashes: false });
  });
});

describe('normalizePath: error shape', () => {
  test('the detail is for the log; the client message is the generic registry one', () => {
    try {
      normalizePath('/%2e%2e/etc/passwd');
      assert.fail('expected a rejection');
    } catch (err) {
      assert.ok(err instanceof GatewayError);
      assert.equal(err.publicMessage, 'The request path is ambiguous or unsafe.');
      assert.ok(!err.publicMessage.includes('passwd'));
    }
  });
});
