import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamOrigin, rewriteRefresh, rewriteUpstreamUrl, type PublicView } from '../../../src/proxy/upstream-urls.js';
import { scopeUpstreamCookie } from '../../../src/proxy/upstream-cookies.js';

const PUBLIC: PublicView = { scheme: 'https', authority: 'api.example.com:8443', prefix: '' };

describe('Location naming the upstream is rewritten to the public origin (nginx proxy_redirect default)', () => {
  const up = new UpstreamOrigin(new URL('http://127.0.0.1:8000'));
  const rw = (v: string, connected?: string, view: PublicView = PUBLIC): string => rewriteUpstreamUrl(v, up, connected, view);

  test('FastAPI trailing-slash redirect, with either scheme uvicorn may use', () => {
    assert.equal(rw('http://127.0.0.1:8000/v1/companies/'), 'https://api.example.com:8443/v1/companies/');
    assert.equal(rw('https://127.0.0.1:8000/v1/companies/?page=2#x'), 'https://api.example.com:8443/v1/companies/?page=2#x');
  });
  test('localhost, ::1 and the address connected to name the upstream too', () => {
    assert.equal(rw('http://localhost:8000/a'), 'https://api.example.com:8443/a');
    assert.equal(rw('http://[::1]:8000/a'), 'https://api.example.com:8443/a');
    const named = new UpstreamOrigin(new URL('http://crm-api:8000'));
    assert.equal(rewriteUpstreamUrl('http://10.1.2.3:8000/a', named, '::ffff:10.1.2.3', PUBLIC), 'https://api.example.com:8443/a');
    assert.equal(rewriteUpstreamUrl('http://crm-api:8000/a', named, undefined, PUBLIC), 'https://api.example.com:8443/a');
    assert.equal(rewriteUpstreamUrl('http://CRM-API.:8000/a', named, undefined, PUBLIC), 'https://api.example.com:8443/a');
  });
  test('default and explicit ports mean the same port', () => {
    const p80 = new UpstreamOrigin(new URL('http://crm-api'));
    assert.equal(rewriteUpstreamUrl('http://crm-api/a', p80, undefined, PUBLIC), 'https://api.example.com:8443/a');
    assert.equal(rewriteUpstreamUrl('http://crm-api:80/a', p80, undefined, PUBLIC), 'https://api.example.com:8443/a');
    // uvicorn trusting X-Forwarded-Proto builds https:// with the Host it got (no port).
    assert.equal(rewriteUpstreamUrl('https://crm-api/a', p80, undefined, PUBLIC), 'https://api.example.com:8443/a');
  });
  test('the public host named with the wrong scheme gets the client scheme', () => {
    assert.equal(rw('http://api.example.com:8443/v1/companies/'), 'https://api.example.com:8443/v1/companies/');
    assert.equal(rewriteUpstreamUrl('http://api.example.com/x', up, undefined, { ...PUBLIC, authority: 'api.example.com' }), 'https://api.example.com/x');
  });
  test('other origins, look-alike hosts and relative URLs pass untouched', () => {
    for (const v of [
      'https://accounts.example.org/login',
      'http://127.0.0.1.evil.test:8000/x',
      'http://127.0.0.1:9000/x',
      'http://evil.test/?u=http://127.0.0.1:8000/',
      'http://user@evil.test@127.0.0.1.evil:8000/',
      '/v1/companies/',
      'companies/',
      '?page=2',
      'javascript:alert(1)',
      'http://[not-an-ip/x',
    ]) {
      assert.equal(rw(v, '127.0.0.1'), v, v);
    }
  });
  test('protocol-relative URLs naming the upstream are absolute and rewritten', () => {
    assert.equal(rw('//127.0.0.1:8000/x'), 'https://api.example.com:8443/x');
  });
  test('regression (review): forms a browser reads as the upstream are rewritten too (backslashes, tabs, no slashes, mapped IPv6)', () => {
    for (const v of ['http:\\\\127.0.0.1:8000/a', '\\\\127.0.0.1:8000/a', '/\\127.0.0.1:8000/a', 'http:/127.0.0.1:8000/a', 'http:127.0.0.1:8000/a', 'ht\ttp://127.0.0.1:8000/a', '/\t/127.0.0.1:8000/a', 'http://[::ffff:127.0.0.1]:8000/a']) {
      assert.equal(rw(v), 'https://api.example.com:8443/a', JSON.stringify(v));
    }
    assert.equal(rw('/a\\b'), '/a\\b', 'a relative path keeps its spelling');
  });
  test('regression (review): Refresh without a separator, with an unclosed quote or a dotted delay', () => {
    for (const v of ["0; URL='http://127.0.0.1:8000/x", '0 url=http://127.0.0.1:8000/x', '0.5.1;url=http://127.0.0.1:8000/x']) {
      assert.match(rewriteRefresh(v, up, undefined, PUBLIC), /https:\/\/api\.example\.com:8443\/x/, v);
    }
  });
  test('a stripped path prefix is put back', () => {
    const view = { ...PUBLIC, prefix: '/crm' };
    assert.equal(rw('http://127.0.0.1:8000/v1/', undefined, view), 'https://api.example.com:8443/crm/v1/');
    assert.equal(rw('http://127.0.0.1:8000/', undefined, view), 'https://api.example.com:8443/crm');
  });
  test('Refresh keeps its delay and quoting', () => {
    assert.equal(rewriteRefresh('5; url=http://127.0.0.1:8000/next', up, undefined, PUBLIC), '5; url=https://api.example.com:8443/next');
    assert.equal(rewriteRefresh("0;URL='http://localhost:8000/n'", up, undefined, PUBLIC), "0;URL='https://api.example.com:8443/n'");
    assert.equal(rewriteRefresh('5; url=https://other.example/', up, undefined, PUBLIC), '5; url=https://other.example/');
    assert.equal(rewriteRefresh('30', up, undefined, PUBLIC), '30');
  });
});

describe('upstream Set-Cookie is host-only on the public host', () => {
  test('Domain is dropped, whatever it names; Secure is added over HTTPS', () => {
    assert.equal(scopeUpstreamCookie('refresh_token=abc; Path=/; HttpOnly; Domain=127.0.0.1', { secure: true, prefix: '' }), 'refresh_token=abc; Path=/; HttpOnly; Secure');
    assert.equal(scopeUpstreamCookie('s=1; domain=.example.com; Path=/', { secure: true, prefix: '' }), 's=1; Path=/; Secure');
    assert.equal(scopeUpstreamCookie('s=1; Secure; SameSite=None', { secure: true, prefix: '' }), 's=1; Secure; SameSite=None');
    assert.equal(scopeUpstreamCookie('s=1; Path=/', { secure: false, prefix: '' }), 's=1; Path=/');
  });
  test('a cookie named like the gateway session never reaches the client', () => {
    assert.equal(scopeUpstreamCookie('__Host-crmgw_at=forged; Path=/; Secure', { secure: true, prefix: '' }), undefined);
    assert.equal(scopeUpstreamCookie('__Host-crmgw_rt=x', { secure: true, prefix: '' }), undefined);
    assert.equal(scopeUpstreamCookie('__host-CRMGW_csrf=x', { secure: true, prefix: '' }), undefined);
  });
  test('a stripped prefix goes back on Path', () => {
    assert.equal(scopeUpstreamCookie('s=1; Path=/', { secure: true, prefix: '/crm' }), 's=1; Path=/crm; Secure');
    assert.equal(scopeUpstreamCookie('s=1; Path=/a', { secure: true, prefix: '/crm' }), 's=1; Path=/crm/a; Secure');
  });
});
