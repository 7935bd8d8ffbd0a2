import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ERRORS } from '../../src/errors.js';
import { addUser, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { HTML_ACCEPT, SessionClient } from '../helpers/session-client.js';
import { freePort } from '../helpers/ports.js';
import type { TestResponse } from '../helpers/harness.js';

const PASSWORD = 'a long enough test password';

let gw: AuthTestGateway;
let english: AuthTestGateway;

async function routes(): Promise<string> {
  return `
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: dead
    host: dead.test.local
    upstream: http://127.0.0.1:${await freePort()}
    auth: none
  - name: limited
    host: limited.test.local
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 1, by: ip }
    cors: { origins: ["https://app.test.local"] }
`;
}

before(async () => {
  const r = await routes();
  const env = { TRUSTED_PROXIES: '127.0.0.1' };
  gw = await startAuthGateway({ routes: r, env });
  // The same routes with English as the configured default.
  english = await startAuthGateway({ routes: r, env, extraYaml: 'ui: { defaultLanguage: en }', upstream: gw.upstream });
});

after(async () => {
  await english?.close();
  await gw?.close();
});

/** The page's lang attribute, Content-Language and Vary, and that its CSP still allows its own style. */
function assertPage(res: TestResponse, lang: 'es' | 'en', what: string): void {
  assert.match(res.body, new RegExp(`^<!doctype html><html lang="${lang}">`), what);
  assert.ok(res.body.includes('<meta name="viewport" content="width=device-width,initial-scale=1">'), `${what}: viewport`);
  assert.equal(res.headers['content-language'], lang, what);
  assert.match(String(res.headers.vary), /(^|, )Accept-Language$/, what);
  const style = /<style>(.*?)<\/style>/s.exec(res.body)?.[1] ?? '';
  const hash = createHash('sha256').update(style).digest('base64');
  assert.ok(String(res.headers['content-security-policy']).includes(`style-src 'sha256-${hash}'`), `${what}: the style's hash is in the CSP`);
}

test('the sign-in page follows Accept-Language, else the configured default', async () => {
  const cases: [AuthTestGateway, string | undefined, 'es' | 'en'][] = [
    [gw, 'es-ES,es;q=0.9,en;q=0.8', 'es'],
    [gw, 'en-US,en;q=0.9', 'en'],
    [gw, 'en;q=0.4, es-419;q=0.6', 'es'],
    [gw, 'fr-FR,fr;q=0.9', 'es'],
    [gw, undefined, 'es'],
    [english, undefined, 'en'],
    [english, 'de', 'en'],
    [english, 'es-MX', 'es'],
  ];
  for (const [g, accept, lang] of cases) {
    const what = `${g === english ? 'default en' : 'default es'}, Accept-Language ${accept ?? '(none)'}`;
    const res = await g.request({ path: '/auth/login', host: 'nocodb.test.local', headers: { accept: HTML_ACCEPT, ...(accept ? { 'accept-language': accept } : {}) } });
    assert.equal(res.status, 200, what);
    assertPage(res, lang, what);
    assert.ok(res.body.includes(lang === 'es' ? '<h1>Iniciar sesión</h1>' : '<h1>Sign in</h1>'), what);
  }
});

test('the sign-out page is in the browser\'s language too', async () => {
  for (const [accept, lang, button] of [['es', 'es', 'Cerrar sesión'], ['en-GB', 'en', 'Sign out']] as const) {
    const res = await gw.request({ path: '/auth/logout', host: 'nocodb.test.local', headers: { accept: HTML_ACCEPT, 'accept-language': accept } });
    assert.equal(res.status, 200);
    assertPage(res, lang, `sign-out ${accept}`);
    assert.ok(res.body.includes(`<button type="submit">${button}</button>`), res.body);
  }
});

test('a failed sign-in and a lockout answer in Spanish, with the lockout\'s wait', async () => {
  const user = uniq('es-staff');
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const c = new SessionClient(gw, 'nocodb.test.local');
  const es = { 'accept-language': 'es-ES,es;q=0.9' };
  let res: TestResponse | undefined;
  for (let i = 0; i < 5; i++) {
    const { csrf, rd } = await c.openLogin();
    res = await c.postLogin({ csrf, rd, username: user, password: 'wrong password here' }, es);
    assert.equal(res.status, 401);
    assertPage(res, 'es', 'failed sign-in');
    assert.ok(res.body.includes('role="alert">Usuario o contraseña incorrectos.</p>'), res.body);
  }
  const { csrf, rd } = await c.openLogin();
  res = await c.postLogin({ csrf, rd, username: user, password: PASSWORD }, es);
  assert.equal(res.status, 429);
  assertPage(res, 'es', 'locked');
  const seconds = Number(res.headers['retry-after']);
  assert.ok(seconds > 0 && seconds <= 30, String(res.headers['retry-after']));
  assert.ok(res.body.includes(`role="alert">Demasiados inicios de sesión fallidos. Vuelva a intentarlo en ${seconds} s.</p>`), res.body);
  assert.ok(!res.body.includes('más tarde'), 'the known wait, not "later"');
});

test('error pages: Spanish or English by Accept-Language, JSON stays English with its code', async () => {
  const before = gw.upstream.seen.length;
  const notFound = await gw.request({ path: '/', host: 'unknown.test.local', headers: { accept: HTML_ACCEPT, 'accept-language': 'es' } });
  assert.equal(notFound.status, 404);
  assertPage(notFound, 'es', '404 es');
  assert.ok(notFound.body.includes('<h1>404 · No encontrado</h1>'), notFound.body);
  assert.ok(notFound.body.includes('<code>ROUTE_NOT_FOUND</code>'));

  const notFoundEn = await english.request({ path: '/', host: 'unknown.test.local', headers: { accept: HTML_ACCEPT } });
  assertPage(notFoundEn, 'en', '404 en by default');
  assert.ok(notFoundEn.body.includes('<h1>404 · Not found</h1>'), notFoundEn.body);

  const json = await gw.request({ path: '/', host: 'unknown.test.local', headers: { accept: 'application/json', 'accept-language': 'es' } });
  assert.equal(json.status, 404);
  assert.equal(json.headers['content-language'], undefined, 'the JSON message is English whatever is asked');
  assert.deepEqual(json.json<{ error: { code: string; message: string } }>().error.message, ERRORS.ROUTE_NOT_FOUND.message);
  assert.equal(json.json<{ error: { code: string } }>().error.code, 'ROUTE_NOT_FOUND');
  assert.equal(gw.upstream.seen.length, before, 'the upstream received nothing');
});

test('the upstream-down page: Spanish and English, telling to come back later', async () => {
  for (const [accept, lang, text] of [['es-ES', 'es', 'La aplicación no está disponible en este momento.</p><p>Vuelva a intentarlo más tarde.</p>'], ['en-US', 'en', 'The application is not available right now.</p><p>Try again later.</p>']] as const) {
    const res = await gw.request({ path: '/x', host: 'dead.test.local', headers: { accept: HTML_ACCEPT, 'accept-language': accept } });
    assert.equal(res.status, 502);
    assertPage(res, lang, `502 ${accept}`);
    assert.ok(res.body.includes(text), res.body);
  }
});

test('a rate-limited page shows its Retry-After; Vary keeps the CORS step\'s Origin', async () => {
  const headers = { accept: HTML_ACCEPT, 'accept-language': 'es', origin: 'https://app.test.local', 'x-forwarded-for': '198.51.100.7' };
  const first = await gw.request({ path: '/x', host: 'limited.test.local', headers });
  assert.equal(first.status, 200);
  const before = gw.upstream.seen.length;
  const res = await gw.request({ path: '/x', host: 'limited.test.local', headers });
  assert.equal(res.status, 429);
  assertPage(res, 'es', '429');
  assert.equal(res.headers.vary, 'Origin, Accept-Language');
  const seconds = Number(res.headers['retry-after']);
  assert.ok(seconds >= 1 && seconds <= 60, String(res.headers['retry-after']));
  assert.ok(res.body.includes(`<p>Demasiadas solicitudes.</p><p>Vuelva a intentarlo en ${seconds} s.</p>`), res.body);
  assert.equal(gw.upstream.seen.length, before, 'the refused request never reached the upstream');
});

test('a hostile Accept-Language changes nothing but the language', async () => {
  for (const accept of ['<script>alert(1)</script>', 'es;q=9', `${'x,'.repeat(4000)}en`, 'en\u00e9']) {
    const res = await gw.request({ path: '/', host: 'unknown.test.local', headers: { accept: HTML_ACCEPT, 'accept-language': accept } });
    assert.equal(res.status, 404, accept.slice(0, 20));
    assert.equal(res.headers['content-language'], 'es', accept.slice(0, 20));
    assert.ok(!res.body.includes('<script>'), 'nothing of the header is echoed');
  }
});
