import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS, GatewayError, type ErrorCode } from '../../../src/errors.js';
import { renderError } from '../../../src/respond.js';
import { loginPage, logoutPage } from '../../../src/auth/pages.js';
import { waitText, retryText } from '../../../src/i18n/messages.js';
import { LANGUAGES } from '../../../src/i18n/language.js';

const VIEWPORT = '<meta name="viewport" content="width=device-width,initial-scale=1">';

test('error pages are in the chosen language, with lang, a viewport and the code', () => {
  const es = renderError(new GatewayError('ROUTE_NOT_FOUND', 'no route for evil.test'), 'req-1', true, 'es').body;
  assert.match(es, /^<!doctype html><html lang="es">/);
  assert.ok(es.includes(VIEWPORT), 'viewport');
  assert.ok(es.includes('<title>404 · No encontrado</title>'), es);
  assert.ok(es.includes('No se sirve nada en esta dirección.'), es);
  assert.ok(es.includes('Código <code>ROUTE_NOT_FOUND</code> · solicitud <code>req-1</code>'), es);
  assert.ok(!es.includes('evil.test'), 'the detail stays in the log');

  const en = renderError(new GatewayError('ROUTE_NOT_FOUND'), 'req-2', true, 'en').body;
  assert.match(en, /^<!doctype html><html lang="en">/);
  assert.ok(en.includes(VIEWPORT));
  assert.ok(en.includes('<h1>404 · Not found</h1>'), en);
  assert.ok(en.includes('Code <code>ROUTE_NOT_FOUND</code> · request <code>req-2</code>'), en);
});

test('every error code renders a page in each language with its own message', () => {
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    const pages = LANGUAGES.map((lang) => renderError(new GatewayError(code), 'r', true, lang).body);
    for (const [i, body] of pages.entries()) {
      assert.ok(body.includes(`<html lang="${LANGUAGES[i]}">`), code);
      assert.ok(body.includes(VIEWPORT), code);
      assert.ok(body.includes(`<code>${code}</code>`), code);
    }
    assert.notEqual(pages[0], pages[1], `${code}: the Spanish and English pages differ`);
  }
});

test('JSON errors keep the English registry message and the code, whatever the language', () => {
  for (const lang of LANGUAGES) {
    const res = renderError(new GatewayError('RATE_LIMITED', 'x', { 'retry-after': '30' }), 'req-3', false, lang);
    assert.equal(res.contentType, 'application/json; charset=utf-8');
    assert.deepEqual(JSON.parse(res.body), { error: { code: 'RATE_LIMITED', message: ERRORS.RATE_LIMITED.message, requestId: 'req-3' } });
  }
});

test('a page that knows Retry-After says when, instead of "later"', () => {
  const limited = (lang: 'es' | 'en'): string => renderError(new GatewayError('RATE_LIMITED', 'x', { 'retry-after': '30' }), 'r', true, lang).body;
  assert.ok(limited('es').includes('<p>Vuelva a intentarlo en 30 s.</p>'), limited('es'));
  assert.ok(limited('en').includes('<p>Try again in 30 s.</p>'), limited('en'));
  assert.ok(!/más tarde|later/.test(limited('es') + limited('en')));

  const down = (lang: 'es' | 'en'): string => renderError(new GatewayError('UPSTREAM_UNAVAILABLE'), 'r', true, lang).body;
  assert.ok(down('es').includes('La aplicación no está disponible en este momento.</p><p>Vuelva a intentarlo más tarde.</p>'), down('es'));
  assert.ok(down('en').includes('<p>Try again later.</p>'), down('en'));

  const store = renderError(new GatewayError('RATE_LIMIT_UNAVAILABLE', 'redis down', { 'retry-after': '2' }), 'r', true, 'es').body;
  assert.ok(store.includes('Vuelva a intentarlo en 2 s.'), store);
  const accounts = renderError(new GatewayError('AUTH_STORE_UNAVAILABLE', 'postgres down', { 'retry-after': '5' }), 'r', true, 'en').body;
  assert.ok(accounts.includes('<p>Sign-ins and sessions cannot be checked right now.</p><p>Try again in 5 s.</p>'), accounts);
  assert.ok(!renderError(new GatewayError('ROLE_FORBIDDEN'), 'r', true, 'en').body.includes('Try again'), 'a 403 does not pass with time');
  assert.ok(renderError(new GatewayError('RATE_LIMITED', 'x', { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }), 'r', true, 'en').body.includes('Try again later.'), 'an HTTP-date is not shown as seconds');
});

test('waits read in seconds, then minutes, then hours, rounded up', () => {
  assert.equal(waitText('es', 0), '1 s');
  assert.equal(waitText('es', 30), '30 s');
  assert.equal(waitText('en', 90), '90 s');
  assert.equal(waitText('en', 91), '2 min');
  assert.equal(waitText('es', 900), '15 min');
  assert.equal(waitText('es', 5400), '90 min');
  assert.equal(waitText('en', 5401), '2 h');
  assert.equal(retryText('es', 429, '  45 '), 'Vuelva a intentarlo en 45 s.');
  assert.equal(retryText('en', 401, undefined), undefined);
});

test('the sign-in page: Spanish and English labels, the refusal with its wait, escaped input', () => {
  const es = loginPage('es', { csrf: 'c"1', rd: '/x?a=<b>', user: '<img>' });
  assert.equal(es.language, 'es');
  assert.match(es.html, /^<!doctype html><html lang="es">/);
  assert.ok(es.html.includes(VIEWPORT));
  assert.ok(es.html.includes('<title>Iniciar sesión · crm-gateway</title>'));
  assert.ok(es.html.includes('<label for="username">Nombre de usuario</label>'));
  assert.ok(es.html.includes('<label for="password">Contraseña</label>'));
  assert.ok(es.html.includes('<button type="submit">Entrar</button>'));
  assert.ok(!es.html.includes('<img>') && !es.html.includes('c"1') && !es.html.includes('<b>'), 'escaped');
  assert.ok(!es.html.includes('role="alert"'), 'no refusal shown on a fresh form');

  const locked = loginPage('es', { csrf: 'c', rd: '/', error: new GatewayError('AUTH_LOCKED', 'k', { 'retry-after': '900' }) });
  assert.ok(locked.html.includes('<p class="err" role="alert">Demasiados inicios de sesión fallidos. Vuelva a intentarlo en 15 min.</p>'), locked.html);
  const limited = loginPage('en', { csrf: 'c', rd: '/', error: new GatewayError('RATE_LIMITED', 'k', { 'retry-after': '30' }) });
  assert.ok(limited.html.includes('role="alert">Too many sign-in attempts. Try again in 30 s.</p>'), limited.html);
  const failed = loginPage('es', { csrf: 'c', rd: '/', error: new GatewayError('AUTH_FAILED') });
  assert.ok(failed.html.includes('role="alert">Usuario o contraseña incorrectos.</p>'), failed.html);
  const expired = loginPage('en', { csrf: 'c', rd: '/', error: new GatewayError('CSRF_REJECTED') });
  assert.ok(expired.html.includes('role="alert">The form expired. Please sign in again.</p>'), expired.html);
  // A refusal without a sign-in wording of its own: the error page's message and wait.
  const store = loginPage('es', { csrf: 'c', rd: '/', error: new GatewayError('RATE_LIMIT_UNAVAILABLE', 'x', { 'retry-after': '2' }) });
  assert.ok(store.html.includes('role="alert">Ahora mismo no se pueden comprobar los límites de solicitudes. Vuelva a intentarlo en 2 s.</p>'), store.html);
});

test('the sign-out page in both languages', () => {
  const es = logoutPage('es', { csrf: 'c' });
  assert.match(es.html, /<html lang="es">/);
  assert.ok(es.html.includes('<h1>Cerrar sesión</h1>') && es.html.includes('<button type="submit">Cerrar sesión</button>'));
  assert.ok(es.html.includes(VIEWPORT));
  const en = logoutPage('en', { csrf: 'c' });
  assert.ok(en.html.includes('<title>Sign out · crm-gateway</title>') && en.html.includes('<button type="submit">Sign out</button>'));
});
