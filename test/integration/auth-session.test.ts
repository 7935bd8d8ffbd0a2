import { after, before, test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE } from '../../src/auth/cookies.js';
import type { SeenRequest } from '../../src/demo/echo-upstream.js';
import { addUser, claimsFor, ringToken, startAuthGateway, uniq, waitFor, type AuthTestGateway, expectRefused } from '../helpers/auth-gateway.js';
import { startReviewedAuthGateway, signedInStaff, REVIEW_GRACE_MS } from '../helpers/reviewed-auth-gateway.js';
import { SessionClient, formField, setCookieLine } from '../helpers/session-client.js';
import type { TestResponse } from '../helpers/harness.js';

const PUBLIC_PORT = 8443;
const ROUTES = `
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
    cors: { origins: ["https://other.test.local"] }
  - name: metabase
    host: metabase.test.local
    upstream: UPSTREAM
    auth: session
    roles: [analyst]
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt-or-session
    roles: [staff]
`;
/** Client addresses come through a trusted hop, so each test client has its own address. */
const ENV = { TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: String(PUBLIC_PORT) };
const PASSWORD = 'correct horse battery staple';

let gw: AuthTestGateway;
let staff: string;

before(async () => {
  // A short reuse grace, so the reuse test need not wait the default 10 s.
  gw = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV, extraYaml: 'auth: { refreshReuseGrace: 500ms }' });
  staff = uniq('staff');
  await addUser(gw.auth, staff, PASSWORD, ['staff']);
});

after(async () => {
  await gw?.close();
});

const nocodb = (): SessionClient => new SessionClient(gw, 'nocodb.test.local');

/**
 * A new user, logged in. A fresh user each time: the login endpoint allows 10 attempts per
 * user name per 15 minutes, counted in Redis.
 */
async function loggedIn(): Promise<SessionClient & { user: string }> {
  const user = uniq('staff');
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const c = Object.assign(nocodb(), { user });
  await c.login(user, PASSWORD);
  assert.ok(c.jar.get(ACCESS_COOKIE) && c.jar.get(REFRESH_COOKIE), 'both session cookies are set');
  return c;
}

/** Runs `fn` and asserts the upstream received nothing meanwhile. */
async function nothingUpstream<T>(fn: () => Promise<T>): Promise<T> {
  const before = gw.upstream.seen.length;
  const out = await fn();
  assert.equal(gw.upstream.seen.length, before, 'nothing reached the upstream');
  return out;
}

async function forwarded(c: SessionClient, opts: Parameters<SessionClient['send']>[0]): Promise<SeenRequest> {
  const before = gw.upstream.seen.length;
  const res = await c.send(opts);
  assert.equal(res.status, 200, `${opts.method ?? 'GET'} ${opts.path}: ${res.status} ${res.body.slice(0, 300)}`);
  assert.equal(gw.upstream.seen.length, before + 1, 'exactly one request reached the upstream');
  return gw.upstream.seen.at(-1) as SeenRequest;
}

function code(res: { json<T>(): T }): string {
  return res.json<{ error: { code: string } }>().error.code;
}

/** The reason code the security log recorded for a refused login page (the page shows no code). */
async function deniedCode(res: TestResponse): Promise<string | undefined> {
  const id = res.headers['x-request-id'];
  const find = (): Record<string, unknown> | undefined => gw.log.securityEvents.find((e) => e.event === 'request.denied' && e.requestId === id);
  await waitFor(() => find() !== undefined, 1_000, 10);
  return find()?.code as string | undefined;
}

test('GET /auth/login sets a __Host- CSRF cookie matching the form, with a strict CSP and no external assets', async () => {
  const c = nocodb();
  const { res, csrf } = await c.openLogin('/some/page');
  const cookie = setCookieLine(res, CSRF_COOKIE);
  assert.ok(cookie, 'a CSRF cookie is set');
  assert.equal(cookie.value, csrf);
  assert.ok(cookie.attrs.has('httponly') && cookie.attrs.has('secure'));
  assert.equal(cookie.attrs.get('path'), '/');
  assert.equal(cookie.attrs.get('samesite')?.toLowerCase(), 'strict');
  const csp = String(res.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /form-action 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(res.body, /\b(src|href)=/i, 'no external scripts, styles or images');
  assert.equal(res.headers['x-frame-options'], 'DENY');
  // Regression: under `no-referrer` browsers send `Origin: null` on the form's own POST, which the
  // CSRF check refuses, so no browser could sign in (test/e2e/login.test.ts).
  assert.equal(res.headers['referrer-policy'], 'same-origin');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(formField(res.body, 'rd'), '/some/page');
  // The login page answers on every routed host.
  for (const host of ['metabase.test.local', 'api.test.local']) {
    const other = await new SessionClient(gw, host).openLogin();
    assert.equal(other.res.status, 200);
  }
});

test('login POST without a CSRF token, with a wrong one, without the cookie, or from a foreign Origin is 403', async () => {
  const c = nocodb();
  const form = { username: staff, password: PASSWORD };
  const attempts: [string, (csrf: string) => Promise<TestResponse>][] = [
    ['no token', () => c.postLogin(form)],
    ['wrong token', (csrf) => c.postLogin({ ...form, csrf: `${csrf.slice(0, -2)}xx` })],
    ['token of another form', () => c.postLogin({ ...form, csrf: 'A'.repeat(32) })],
    [
      'no cookie',
      (csrf) =>
        c.send({ method: 'POST', path: '/auth/login', html: true, withCookies: false, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://nocodb.test.local' }, body: new URLSearchParams({ ...form, csrf }).toString() }),
    ],
    ['foreign Origin', (csrf) => c.postLogin({ ...form, csrf }, { origin: 'https://evil.example' })],
    ['another gateway host as Origin', (csrf) => c.postLogin({ ...form, csrf }, { origin: 'https://metabase.test.local' })],
    ['Origin null', (csrf) => c.postLogin({ ...form, csrf }, { origin: 'null' })],
  ];
  for (const [what, attempt] of attempts) {
    const { csrf } = await c.openLogin();
    const res = await nothingUpstream(() => attempt(csrf));
    assert.equal(res.status, 403, what);
    // No Accept-Language: the configured default language, Spanish (ui.defaultLanguage).
    assert.match(res.body, /El formulario ha caducado/, what);
    assert.equal(await deniedCode(res), 'CSRF_REJECTED', what);
    assert.equal(setCookieLine(res, ACCESS_COOKIE), undefined, `${what}: no session`);
  }
  // The same form with the token and the same-host Origin signs in.
  const { csrf } = await c.openLogin();
  assert.equal((await c.postLogin({ ...form, csrf })).status, 303);
});

test('a wrong password or an unknown user is a 401 login page with the same message and no session', async () => {
  const c = nocodb();
  const wrong = await nothingUpstream(() => c.openLogin().then((f) => c.postLogin({ csrf: f.csrf, rd: f.rd, username: staff, password: 'not the password!' })));
  assert.equal(wrong.status, 401);
  assert.match(String(wrong.headers['content-type']), /text\/html/);
  const unknown = await nothingUpstream(() => c.openLogin().then((f) => c.postLogin({ csrf: f.csrf, rd: f.rd, username: uniq('ghost'), password: 'whatever-long-enough' })));
  assert.equal(unknown.status, 401);
  assert.equal(await deniedCode(wrong), 'AUTH_FAILED');
  assert.equal(await deniedCode(unknown), 'AUTH_FAILED');
  const msg = (b: string): string => /class="err"[^>]*>([^<]*)</.exec(b)?.[1] ?? '';
  assert.equal(msg(wrong.body), msg(unknown.body), 'no user enumeration through the message');
  assert.equal(c.jar.get(ACCESS_COOKIE), undefined);
  const failed = gw.log.securityEvents.filter((e) => e.event === 'auth.login_failed' && e.clientIp === c.ip);
  assert.deepEqual(
    failed.map((e) => e.reason),
    ['wrong password', 'unknown user'],
  );
});

test('five failed logins lock the account: 429 with Retry-After and security events, even for the right password', async () => {
  const victim = uniq('victim');
  await addUser(gw.auth, victim, PASSWORD, ['staff']);
  const c = nocodb();
  for (let i = 0; i < 5; i++) {
    const f = await c.openLogin();
    const res = await c.postLogin({ csrf: f.csrf, rd: f.rd, username: victim, password: `wrong-password-${i}` });
    assert.equal(res.status, 401, `failure ${i + 1}`);
  }
  const f = await c.openLogin();
  const locked = await nothingUpstream(() => c.postLogin({ csrf: f.csrf, rd: f.rd, username: victim, password: PASSWORD }));
  assert.equal(locked.status, 429);
  assert.equal(await deniedCode(locked), 'AUTH_LOCKED');
  const retry = Number(locked.headers['retry-after']);
  assert.ok(retry > 0 && retry <= 30, `Retry-After ${String(locked.headers['retry-after'])}`);
  assert.equal(c.jar.get(ACCESS_COOKIE), undefined);
  // From another address too: the account itself is locked.
  const other = nocodb();
  const f2 = await other.openLogin();
  assert.equal((await other.postLogin({ csrf: f2.csrf, rd: f2.rd, username: victim, password: PASSWORD })).status, 429);
  const events = gw.log.securityEvents;
  assert.ok(events.some((e) => e.event === 'auth.lockout' && e.subject === `user:${victim}` && e.failures === 5));
  assert.ok(events.some((e) => e.event === 'auth.login_locked' && e.user === victim));
  assert.equal(events.filter((e) => e.event === 'auth.login_failed' && e.user === victim).length, 5);
  assert.ok(((await gw.redis?.pttl(`crmgw:lock:user:${victim.toLowerCase()}`)) ?? 0) > 0, 'the lock lives in Redis');
});

test('a successful login: 303 to the return path, __Host- cookies HttpOnly Secure SameSite=Lax Path=/, earlier cookies cleared', async () => {
  const c = nocodb();
  // Cookies from before the login: an upstream app session and a planted gateway cookie.
  c.jar.cookies.set('nocodb_refresh', 'previous-user');
  c.jar.cookies.set('__Host-other', 'x');
  const form = await c.openLogin('/some/page?q=1');
  c.jar.cookies.set(ACCESS_COOKIE, 'planted.by.attacker');
  const res = await c.postLogin({ csrf: form.csrf, rd: form.rd, username: staff, password: PASSWORD });
  assert.equal(res.status, 303);
  assert.equal(res.headers.location, '/some/page?q=1');
  assert.equal(res.headers['cache-control'], 'no-store');
  for (const name of [ACCESS_COOKIE, REFRESH_COOKIE]) {
    const line = setCookieLine(res, name);
    assert.ok(line && line.value.length > 20, name);
    assert.ok(name.startsWith('__Host-'));
    assert.ok(line.attrs.has('httponly'), `${name} HttpOnly`);
    assert.ok(line.attrs.has('secure'), `${name} Secure`);
    assert.equal(line.attrs.get('samesite')?.toLowerCase(), 'lax', `${name} SameSite`);
    assert.equal(line.attrs.get('path'), '/', `${name} Path`);
    assert.equal(line.attrs.has('domain'), false, `${name} host-only`);
  }
  assert.notEqual(c.jar.get(ACCESS_COOKIE), 'planted.by.attacker');
  for (const name of ['nocodb_refresh', '__Host-other', CSRF_COOKIE]) {
    assert.equal(setCookieLine(res, name)?.attrs.get('max-age'), '0', `${name} is cleared`);
  }
  assert.ok((await gw.auth.store.getUser(staff))?.lastLoginAt, 'last login time recorded');
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.login_succeeded' && e.user === staff));
});

test('a session request reaches the upstream with identity headers and without the gateway cookies', async () => {
  const c = await loggedIn();
  const seen = await forwarded(c, { path: '/some/page', html: true, headers: { cookie: `${c.jar.header()}; nocodb_session=abc` } });
  assert.equal(seen.headers['x-gateway-user'], c.user);
  assert.equal(seen.headers['x-gateway-roles'], 'staff');
  assert.equal(seen.headers['x-gateway-auth'], 'session');
  assert.ok(seen.headers['x-gateway-token-id']);
  assert.equal(seen.headers.cookie, 'nocodb_session=abc');
  assert.equal(seen.headers.authorization, undefined);
  // The same session works on the jwt-or-session API route.
  const api = await forwarded(c, { path: '/v1/me', host: 'api.test.local' });
  assert.equal(api.headers['x-gateway-user'], c.user);
});

test('a session whose roles do not fit the route is 403 ROLE_FORBIDDEN', async () => {
  const c = await loggedIn();
  const res = await nothingUpstream(() => c.send({ path: '/dash', host: 'metabase.test.local' }));
  assert.equal(res.status, 403);
  assert.equal(code(res), 'ROLE_FORBIDDEN');
});

test('CSRF: an unsafe method with the session cookie needs the route own host as Origin (or Referer)', async () => {
  const c = await loggedIn();
  const post = (headers: Record<string, string>) => c.send({ method: 'POST', path: '/api/v1/rows', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
  for (const [what, headers, expected] of [
    ['a CORS-listed foreign Origin', { origin: 'https://other.test.local' }, 'CSRF_REJECTED'],
    ['no Origin and no Referer', {}, 'CSRF_REJECTED'],
    ['a foreign Referer', { referer: 'https://evil.example/x' }, 'CSRF_REJECTED'],
    ['another gateway host as Referer', { referer: 'https://metabase.test.local/x' }, 'CSRF_REJECTED'],
    ['an unlisted foreign Origin (refused by CORS first)', { origin: 'https://evil.example' }, 'CORS_ORIGIN_DENIED'],
    ['Origin null', { origin: 'null' }, 'CORS_ORIGIN_DENIED'],
    ['the same host over http', { origin: 'http://nocodb.test.local' }, 'CORS_ORIGIN_DENIED'],
  ] as const) {
    const res = await nothingUpstream(() => post(headers));
    assert.equal(res.status, 403, what);
    assert.equal(code(res), expected, what);
  }
  await forwarded(c, { method: 'POST', path: '/api/v1/rows', headers: { 'content-type': 'application/json', origin: 'https://nocodb.test.local' }, body: '{}' });
  await forwarded(c, { method: 'DELETE', path: '/api/v1/rows/1', headers: { referer: 'https://nocodb.test.local/dashboard' } });
  // Safe methods need no Origin.
  await forwarded(c, { path: '/api/v1/rows' });
});

test('no session: a browser navigation gets 302 to /auth/login?rd=<path>, an API call 401 JSON', async () => {
  const c = nocodb();
  const nav = await nothingUpstream(() => c.send({ path: '/some/page?q=1&x=%2F', html: true }));
  assert.equal(nav.status, 302);
  assert.equal(nav.headers.location, `/auth/login?rd=${encodeURIComponent('/some/page?q=1&x=%2F')}`);
  const api = await nothingUpstream(() => c.send({ path: '/api/v1/rows' }));
  assert.equal(api.status, 401);
  assert.equal(code(api), 'AUTH_REQUIRED');
  // A POST from a browser is not a navigation to redirect.
  const form = await nothingUpstream(() => c.send({ method: 'POST', path: '/x', html: true, headers: { 'content-type': 'text/plain', origin: 'https://nocodb.test.local' }, body: 'x' }));
  assert.equal(form.status, 401);
  // The jwt-or-session API route challenges for a bearer token.
  const mixed = await nothingUpstream(() => c.send({ path: '/v1/me', host: 'api.test.local' }));
  assert.equal(mixed.status, 401);
  assert.match(String(mixed.headers['www-authenticate']), /^Bearer/);
});

test('the session cookie sent twice (cookie tossing) is AUTH_AMBIGUOUS', async () => {
  const c = await loggedIn();
  const at = c.jar.get(ACCESS_COOKIE) as string;
  const res = await nothingUpstream(() => c.send({ path: '/x', headers: { cookie: `${ACCESS_COOKIE}=${at}; ${ACCESS_COOKIE}=${at}` } }));
  assert.equal(res.status, 401);
  assert.equal(code(res), 'AUTH_AMBIGUOUS');
});

test('refresh: without the access cookie the refresh token renews the session and rotates', async () => {
  const c = await loggedIn();
  const oldAccess = c.jar.get(ACCESS_COOKIE) as string;
  const oldRefresh = c.jar.get(REFRESH_COOKIE) as string;
  c.jar.cookies.delete(ACCESS_COOKIE); // the browser dropped it at its Max-Age
  const before = gw.upstream.seen.length;
  const res = await c.send({ path: '/after-expiry' });
  assert.equal(res.status, 200, res.body.slice(0, 200));
  assert.equal(gw.upstream.seen.length, before + 1);
  assert.equal(gw.upstream.seen.at(-1)?.headers['x-gateway-user'], c.user);
  const newAccess = c.jar.get(ACCESS_COOKIE);
  const newRefresh = c.jar.get(REFRESH_COOKIE);
  assert.ok(newAccess && newAccess !== oldAccess, 'a new access cookie');
  assert.ok(newRefresh && newRefresh !== oldRefresh, 'a new refresh cookie');
  assert.equal(setCookieLine(res, REFRESH_COOKIE)?.attrs.get('samesite')?.toLowerCase(), 'lax');
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.session_renewed' && e.user === c.user));
});

test('refresh: an expired access token (past the skew) is renewed with the refresh token', async () => {
  const c = await loggedIn();
  const family = (await gw.auth.tokens.verify(c.jar.get(ACCESS_COOKIE) as string)).fam;
  const now = Math.floor(Date.now() / 1000);
  const expired = ringToken(gw.secret, claimsFor(c.user, { typ: 'session', roles: ['staff'], fam: family, iat: now - 120, exp: now - 60 }));
  const res = await c.send({ path: '/renewed', headers: { cookie: `${ACCESS_COOKIE}=${expired}; ${REFRESH_COOKIE}=${c.jar.get(REFRESH_COOKIE) as string}` } });
  assert.equal(res.status, 200);
  assert.notEqual(c.jar.get(ACCESS_COOKIE), expired);
});

test('refresh: reusing an old refresh token revokes the family and the current access token (AUTH_REVOKED)', async () => {
  const c = await loggedIn();
  const stolen = c.jar.get(REFRESH_COOKIE) as string;
  c.jar.cookies.delete(ACCESS_COOKIE);
  assert.equal((await c.send({ path: '/rotate' })).status, 200);
  const current = c.jar.get(ACCESS_COOKIE) as string;
  const currentRefresh = c.jar.get(REFRESH_COOKIE) as string;
  assert.notEqual(currentRefresh, stolen);
  await new Promise((r) => setTimeout(r, 700)); // past the reuse grace
  // The thief replays the old refresh token.
  const replay = await nothingUpstream(() => c.send({ path: '/replay', headers: { cookie: `${REFRESH_COOKIE}=${stolen}` } }));
  assert.equal(replay.status, 401);
  assert.equal(code(replay), 'AUTH_REVOKED');
  // The legitimate user's live access token dies with the family…
  const after1 = await nothingUpstream(() => c.send({ path: '/x', headers: { cookie: `${ACCESS_COOKIE}=${current}` } }));
  assert.equal(code(after1), 'AUTH_REVOKED');
  // …and so does the newest refresh token.
  const after2 = await nothingUpstream(() => c.send({ path: '/x', headers: { cookie: `${REFRESH_COOKIE}=${currentRefresh}` } }));
  assert.equal(code(after2), 'AUTH_REVOKED');
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.session_family_revoked'));
  // A browser with the revoked session is cleared and sent to the login page.
  const nav = await nothingUpstream(() => c.send({ path: '/x', html: true, headers: { cookie: `${ACCESS_COOKIE}=${current}` } }));
  assert.equal(nav.status, 302);
  assert.match(String(nav.headers.location), /^\/auth\/login\?rd=/);
  assert.equal(setCookieLine(nav, ACCESS_COOKIE)?.attrs.get('max-age'), '0');
});

test('refresh: parallel requests racing with the same refresh token within the grace all pass, and only the first sets a new refresh cookie', async () => {
  const c = await loggedIn();
  const refresh = c.jar.get(REFRESH_COOKIE) as string;
  const cookie = `${REFRESH_COOKIE}=${refresh}`;
  const answers = await Promise.all([1, 2, 3].map((i) => c.send({ path: `/race${i}`, headers: { cookie } })));
  assert.deepEqual(answers.map((r) => r.status), [200, 200, 200]);
  assert.equal(answers.filter((r) => setCookieLine(r, REFRESH_COOKIE)).length, 1);
  assert.ok(answers.every((r) => setCookieLine(r, ACCESS_COOKIE)));
});

test('a short sessionTtl: the access cookie lives that long, then the refresh cookie renews the session', async () => {
  const short = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV, extraYaml: 'auth: { sessionTtl: 2s }', secret: gw.secret, dataDir: gw.dataDir, upstream: gw.upstream });
  try {
    const c = new SessionClient(short, 'nocodb.test.local');
    const res = await c.login(staff, PASSWORD);
    assert.equal(setCookieLine(res, ACCESS_COOKIE)?.attrs.get('max-age'), '2');
    const at = c.jar.get(ACCESS_COOKIE) as string;
    const claims = await short.auth.tokens.verify(at);
    assert.equal(claims.exp - claims.iat, 2);
    await new Promise((r) => setTimeout(r, 2_100));
    c.jar.cookies.delete(ACCESS_COOKIE); // what the browser does at Max-Age
    const renewed = await c.send({ path: '/later' });
    assert.equal(renewed.status, 200);
    assert.notEqual(c.jar.get(ACCESS_COOKIE), at);
  } finally {
    await short.close();
  }
});

test('logout revokes the access token and the refresh family, and clears the cookies', async () => {
  const c = await loggedIn();
  const access = c.jar.get(ACCESS_COOKIE) as string;
  const refresh = c.jar.get(REFRESH_COOKIE) as string;
  const page = await c.send({ path: '/auth/logout', html: true });
  assert.equal(page.status, 200);
  const csrf = formField(page.body, 'csrf') as string;
  // Without the CSRF token logout is refused (no forced logout from another site).
  const forced = await c.send({ method: 'POST', path: '/auth/logout', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://nocodb.test.local' }, body: '' });
  assert.equal(forced.status, 403);
  assert.equal(code(forced), 'CSRF_REJECTED');
  const res = await c.send({
    method: 'POST',
    path: '/auth/logout',
    html: true,
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://nocodb.test.local' },
    body: new URLSearchParams({ csrf }).toString(),
  });
  assert.equal(res.status, 303);
  // On through the other session hosts' site-data clearing (test/integration/auth-logout-clear.test.ts).
  assert.match(String(res.headers.location), /^https:\/\/metabase\.test\.local:8443\/auth\/clear\?token=/);
  for (const name of [ACCESS_COOKIE, REFRESH_COOKIE]) assert.equal(setCookieLine(res, name)?.attrs.get('max-age'), '0', `${name} cleared`);
  assert.equal(c.jar.get(ACCESS_COOKIE), undefined);
  const withAccess = await nothingUpstream(() => c.send({ path: '/x', headers: { cookie: `${ACCESS_COOKIE}=${access}` } }));
  assert.equal(code(withAccess), 'AUTH_REVOKED');
  const withRefresh = await nothingUpstream(() => c.send({ path: '/x', headers: { cookie: `${REFRESH_COOKIE}=${refresh}` } }));
  assert.equal(code(withRefresh), 'AUTH_REVOKED');
  // A browser with the old cookies is turned away to the login page.
  const nav = await nothingUpstream(() => c.send({ path: '/x', html: true, headers: { cookie: `${ACCESS_COOKIE}=${access}; ${REFRESH_COOKIE}=${refresh}` } }));
  assert.equal(nav.status, 302);
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.logout' && e.user === c.user));
});

test('a disabled user cannot log in', async () => {
  const name = uniq('disabled');
  await addUser(gw.auth, name, PASSWORD, ['staff'], true);
  const c = nocodb();
  const f = await c.openLogin();
  const res = await nothingUpstream(() => c.postLogin({ csrf: f.csrf, rd: f.rd, username: name, password: PASSWORD }));
  assert.equal(res.status, 401);
  assert.equal(await deniedCode(res), 'AUTH_FAILED');
  assert.equal(c.jar.get(ACCESS_COOKIE), undefined);
});

// Open redirects through `rd`: the login form (GET) and the redirect after login (POST).
const CORPUS = [
  '//evil.com',
  '/\\evil.com',
  '\\/evil.com',
  '/\t/evil.com',
  '/\r/evil.com',
  '/\n/evil.com',
  '/\v/evil.com',
  '/\0/evil.com',
  '/ /evil.com',
  '/%09/evil.com',
  '/%0d/evil.com',
  '/%0a/evil.com',
  '/%0b/evil.com',
  '/%00/evil.com',
  '/%2F%2Fevil.com',
  '/..//evil.com',
  'https://evil.com',
  'https://api.test.local.evil.com',
  'https://evil.com@api.test.local',
  'https://api.test.local@evil.com',
  `https://nocodb.test.local:${PUBLIC_PORT + 1}/x`,
  `http://nocodb.test.local:${PUBLIC_PORT}/x`,
  'javascript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'evil.com',
  '/\u2215\u2215evil.com',
  '\uFF0F\uFF0Fevil.com',
  `https://n\u043Ecodb.test.local:${PUBLIC_PORT}/x`,
];

function landsOnGateway(location: string, host: string): boolean {
  const u = new URL(location, `https://${host}:${PUBLIC_PORT}/auth/login`);
  return u.protocol === 'https:' && u.hostname.endsWith('.test.local') && ['nocodb', 'metabase', 'api'].includes(u.hostname.split('.')[0] as string) && u.port === String(PUBLIC_PORT) && !location.startsWith('//');
}

test('open-redirect corpus through rd: the login form never carries an off-site return path', async () => {
  const c = nocodb();
  for (const rd of CORPUS) {
    const { rd: field } = await c.openLogin(rd);
    assert.ok(landsOnGateway(field, c.host), `${JSON.stringify(rd)} → ${field}`);
    assert.ok(field === '/' || field === '/evil.com', `${JSON.stringify(rd)} → ${field}`);
  }
  // Percent-encoded once more than the query decoding: the same answer.
  for (const rd of ['/%2509/evil.com', '/%252F%252Fevil.com', '%2F%2Fevil.com']) {
    const res = await c.send({ path: `/auth/login?rd=${rd}`, html: true });
    const field = formField(res.body, 'rd') as string;
    assert.ok(landsOnGateway(field, c.host), `${rd} → ${field}`);
  }
});

test('the login page CSP allows the form to lead to a validated return origin only', async () => {
  const c = nocodb();
  const cross = await c.openLogin(`https://metabase.test.local:${PUBLIC_PORT}/x`);
  assert.match(String(cross.res.headers['content-security-policy']), new RegExp(`form-action 'self' https://metabase\\.test\\.local:${PUBLIC_PORT};`));
  for (const rd of ['https://evil.com/x', `https://metabase.test.local:${PUBLIC_PORT}@evil.com/`, '/local/path']) {
    const res = (await c.openLogin(rd)).res;
    assert.match(String(res.headers['content-security-policy']), /form-action 'self';/, rd);
  }
});

test('open-redirect corpus through rd: after login the 303 stays on the gateway; allowed paths and hosts are kept', async () => {
  const user = uniq('redirect');
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const cases: [string, string][] = [
    ['//evil.com', '/'],
    ['/\\evil.com', '/'],
    ['/\t/evil.com', '/'],
    ['https://api.test.local@evil.com', '/'],
    ['javascript:alert(1)', '/'],
    ['/path?q=1', '/path?q=1'],
    [`https://metabase.test.local:${PUBLIC_PORT}/x`, `https://metabase.test.local:${PUBLIC_PORT}/x`],
  ];
  for (const [rd, expected] of cases) {
    // The form's hidden field is what a browser posts back; an attacker can post any value.
    const c = nocodb();
    const f = await c.openLogin();
    const res = await c.postLogin({ csrf: f.csrf, rd, username: user, password: PASSWORD });
    assert.equal(res.status, 303, rd);
    assert.equal(res.headers.location, expected, JSON.stringify(rd));
  }
});

test('a password change ends the sessions begun before it: the access cookie, and the refresh cookie at renewal', async () => {
  const c = await loggedIn();
  const renewing = Object.assign(nocodb(), { user: c.user });
  // A second browser of the same user (or a thief's copy): it only holds the refresh cookie.
  await renewing.login(c.user, PASSWORD);
  renewing.jar.cookies.delete(ACCESS_COOKIE);
  assert.equal((await c.send({ path: '/before' })).status, 200);
  // As `users set-password` does from another process.
  await gw.auth.store.updateUser(c.user, { sessionsValidFrom: new Date() });
  gw.auth.forget(c.user); // the CLI's process is another; here the 5 s cache is skipped
  const refused = await nothingUpstream(() => c.send({ path: '/after', headers: { accept: 'application/json' } }));
  assert.equal(refused.status, 401, refused.body);
  assert.equal(code(refused), 'AUTH_REVOKED');
  const renewal = await nothingUpstream(() => renewing.send({ path: '/renew', headers: { accept: 'application/json' } }));
  assert.equal(renewal.status, 401, renewal.body);
  assert.equal(code(renewal), 'AUTH_REVOKED');
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.session_family_revoked'), 'the renewing family was revoked');
  // A login after the change works.
  const fresh = Object.assign(nocodb(), { user: c.user });
  await fresh.login(c.user, PASSWORD);
  assert.equal((await fresh.send({ path: '/fresh' })).status, 200);
});

test('a new login in the same browser ends the session its cookies carried: a copied refresh token dies with it', async () => {
  const c = await loggedIn();
  const copiedRefresh = c.jar.get(REFRESH_COOKIE) as string;
  const copiedAccess = c.jar.get(ACCESS_COOKIE) as string;
  await c.login(c.user, PASSWORD); // signs in again with the old cookies still in the jar
  assert.notEqual(c.jar.get(REFRESH_COOKIE), copiedRefresh);
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.session_replaced' && e.user === c.user));
  const thief = Object.assign(nocodb(), { user: c.user });
  const withAccess = await nothingUpstream(() => thief.send({ path: '/x', headers: { accept: 'application/json', cookie: `${ACCESS_COOKIE}=${copiedAccess}` } }));
  assert.equal(withAccess.status, 401);
  assert.equal(code(withAccess), 'AUTH_REVOKED');
  const withRefresh = await nothingUpstream(() => thief.send({ path: '/x', headers: { accept: 'application/json', cookie: `${REFRESH_COOKIE}=${copiedRefresh}` } }));
  assert.equal(withRefresh.status, 401);
  assert.equal(code(withRefresh), 'AUTH_REVOKED');
  assert.equal((await c.send({ path: '/mine' })).status, 200, 'the new session works');
});

// Review of issue 14: tokens from before staff sessions carry no `sid`; they would renew for ever,
// unseen by "your sessions", `sessions list` and revoke. Refused: one sign-in after upgrading.
test('a session token or a refresh family from before staff sessions (no sid) is refused (AUTH_REVOKED), the family revoked, nothing forwarded', async () => {
  const user = uniq('pre14');
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const now = Math.floor(Date.now() / 1000);
  // A still-valid session token as the gateway issued them before issue 14: no sid, no amr.
  const old = gw.auth.tokens.issue({ sub: user, roles: ['staff'], ttlMs: 60_000, typ: 'session', authTime: now }).token;
  assert.equal((await gw.auth.tokens.verify(old)).sid, undefined);
  const c = nocodb();
  const refused = await nothingUpstream(() => c.send({ path: '/old-access', headers: { cookie: `${ACCESS_COOKIE}=${old}` } }));
  assert.equal(refused.status, 401);
  assert.equal(code(refused), 'AUTH_REVOKED');
  const event = gw.log.securityEvents.find((e) => e.event === 'request.denied' && String(e.detail).includes(user));
  assert.equal(event?.code, 'AUTH_REVOKED', JSON.stringify(gw.log.securityEvents.slice(-3)));
  assert.match(String(event?.detail), /no sid/);
  // A browser is sent to sign in again.
  const navigating = await nothingUpstream(() => c.send({ path: '/old-access', html: true, headers: { cookie: `${ACCESS_COOKIE}=${old}` } }));
  assert.equal(navigating.status, 302);
  assert.match(String(navigating.headers.location), /^\/auth\/login\?/);

  // A refresh family from then: no renewal, and the family is revoked.
  const family = await gw.auth.refresh.start(user, ['staff'], { authTime: now });
  const renew = await nothingUpstream(() => c.send({ path: '/old-refresh', headers: { cookie: `${REFRESH_COOKIE}=${family.token}` } }));
  assert.equal(renew.status, 401);
  assert.equal(code(renew), 'AUTH_REVOKED');
  assert.equal(renew.headers['set-cookie']?.some((l) => l.startsWith(`${ACCESS_COOKIE}=ey`)) ?? false, false, 'no new access cookie');
  await assert.rejects(gw.auth.refresh.rotate(family.token), /revoked|reuse|unknown/i, 'the family is gone');
  assert.ok(!gw.log.securityEvents.some((e) => e.event === 'auth.session_renewed' && e.user === user));

  // Signing in once gives a session with a sid, listed and working.
  const fresh = nocodb();
  await fresh.login(user, PASSWORD);
  assert.match(String((await gw.auth.tokens.verify(fresh.jar.get(ACCESS_COOKIE) as string)).sid), /^[0-9a-f]{32}$/);
  assert.equal((await fresh.send({ path: '/after-upgrade' })).status, 200);
});

// A gateway of its own (session and bearer routes, a short refresh reuse grace): from the
// adversarial review of src/auth, where each test failed before its fix.
describe('session families: logout and refresh reuse revoke every token (from the adversarial review)', () => {
  let gw: AuthTestGateway;

  before(async () => {
    gw = await startReviewedAuthGateway();
  });

  after(async () => {
    await gw?.close();
  });

  function code(res: TestResponse): string {
    return res.json<{ error: { code: string } }>().error.code;
  }

  const loggedIn = (): Promise<SessionClient & { user: string }> => signedInStaff(gw);

  /** A request carried by the refresh cookie alone (the access cookie expired): a renewal. */
  async function renew(c: SessionClient, refresh: string): Promise<{ access: string; refresh: string | undefined }> {
    const res = await c.send({ path: '/renew', withCookies: false, headers: { cookie: `${REFRESH_COOKIE}=${refresh}` } });
    assert.equal(res.status, 200, res.body.slice(0, 200));
    const access = setCookieLine(res, ACCESS_COOKIE)?.value;
    assert.ok(access, 'a renewal sets a new access cookie');
    return { access, refresh: setCookieLine(res, REFRESH_COOKIE)?.value };
  }

  /**
   * A browser renewing with its refresh token R1 (→ A1, R2) and a thief presenting the same R1
   * within the reuse grace (→ A2, no refresh token), then the browser renewing again (→ A3, R3).
   * A2 is never "the family's current access token", which was all a family revocation revoked.
   */
  async function raceWithThief(c: SessionClient): Promise<{ thief: string; legit: { access: string; refresh: string } }> {
    const r1 = c.jar.get(REFRESH_COOKIE) as string;
    const first = await renew(c, r1);
    const thief = await renew(c, r1);
    assert.equal(thief.refresh, undefined, 'inside the grace: an access token, no refresh token');
    const again = await renew(c, first.refresh as string);
    assert.ok(again.refresh);
    return { thief: thief.access, legit: { access: again.access, refresh: again.refresh } };
  }

  async function logout(c: SessionClient, cookie: string): Promise<void> {
    const page = await c.send({ path: '/auth/logout', html: true, withCookies: false, headers: { cookie } });
    const csrf = formField(page.body, 'csrf') as string;
    const csrfCookie = setCookieLine(page, '__Host-crmgw_csrf')?.value as string;
    const res = await c.send({
      method: 'POST',
      path: '/auth/logout',
      html: true,
      withCookies: false,
      headers: { cookie: `${cookie}; __Host-crmgw_csrf=${csrfCookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://nocodb.test.local' },
      body: new URLSearchParams({ csrf }).toString(),
    });
    assert.equal(res.status, 303);
  }

  test('logout revokes every session token of the family, also one issued inside the refresh reuse grace', async () => {
    const c = await loggedIn();
    const { thief, legit } = await raceWithThief(c);
    await logout(c, `${ACCESS_COOKIE}=${legit.access}; ${REFRESH_COOKIE}=${legit.refresh}`);
    const res = await expectRefused(gw, { path: '/after-logout', host: 'nocodb.test.local', headers: { cookie: `${ACCESS_COOKIE}=${thief}`, accept: 'application/json' } }, 401, 'AUTH_REVOKED');
    assert.equal(code(res), 'AUTH_REVOKED');
  });

  test('refresh reuse detection revokes every session token of the family, also one issued inside the grace', async () => {
    const c = await loggedIn();
    const r1 = c.jar.get(REFRESH_COOKIE) as string;
    const { thief, legit } = await raceWithThief(c);
    await new Promise((r) => setTimeout(r, REVIEW_GRACE_MS + 200));
    // The old refresh token comes back after the grace: reuse, the family is revoked.
    await expectRefused(gw, { path: '/replay', host: 'nocodb.test.local', headers: { cookie: `${REFRESH_COOKIE}=${r1}`, accept: 'application/json' } }, 401, 'AUTH_REVOKED');
    for (const access of [thief, legit.access]) {
      await expectRefused(gw, { path: '/after-reuse', host: 'nocodb.test.local', headers: { cookie: `${ACCESS_COOKIE}=${access}`, accept: 'application/json' } }, 401, 'AUTH_REVOKED');
    }
  });
});


