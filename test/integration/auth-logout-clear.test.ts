import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE } from '../../src/auth/cookies.js';
import { addUser, startAuthGateway, uniq, waitFor, type AuthTestGateway } from '../helpers/auth-gateway.js';
import type { TestResponse } from '../helpers/harness.js';
import { HostBrowser, SessionClient, formField, setCookieLine } from '../helpers/session-client.js';

// Issue #12 item 3: logout leaves no application session behind on any session host, and a
// login clears the site data of the host it happens on. Hostile: the clearing hop is no open
// redirect and cannot be driven without a ticket of the gateway's own.

const PORT = 8443;
const ROUTES = `
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: metabase
    host: metabase.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
  - name: public
    host: public.test.local
    upstream: UPSTREAM
    auth: none
`;
const ENV = { TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: String(PORT) };
const PASSWORD = 'correct horse battery staple';
const APP_COOKIES = ['refresh_token', 'metabase.SESSION', 'metabase.EMBEDDED_SESSION', 'metabase.TIMEOUT'];

let gw: AuthTestGateway;
before(async () => {
  gw = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV });
});
after(async () => {
  await gw?.close();
});

async function user(): Promise<string> {
  const name = uniq('clear');
  await addUser(gw.auth, name, PASSWORD, ['staff']);
  return name;
}

const code = (res: TestResponse): string => res.json<{ error: { code: string } }>().error.code;

async function logout(c: SessionClient): Promise<TestResponse> {
  const page = await c.send({ path: '/auth/logout', html: true });
  return c.send({
    method: 'POST',
    path: '/auth/logout',
    html: true,
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: `https://${c.host}` },
    body: new URLSearchParams({ csrf: formField(page.body, 'csrf') as string }).toString(),
  });
}

/** Follows the 303s of the chain like a browser (each host with its own jar); returns every hop's answer. */
async function follow(b: HostBrowser, first: TestResponse): Promise<TestResponse[]> {
  const hops: TestResponse[] = [];
  let location = String(first.headers.location);
  while (location.includes('/auth/clear')) {
    const url = new URL(location);
    assert.equal(url.port, String(PORT));
    const res = await b.on(url.hostname).send({ path: `${url.pathname}${url.search}`, html: true });
    hops.push(res);
    assert.equal(res.status, 303, res.body.slice(0, 200));
    location = String(res.headers.location);
  }
  assert.equal(location, `https://nocodb.test.local:${PORT}/auth/login`, 'the chain ends on the login page of the host it began on');
  return hops;
}

test('logout clears site data on every session host, this one last, then lands on its login page; nothing reaches an upstream', async () => {
  const b = new HostBrowser(gw);
  const name = await user();
  const nocodb = b.on('nocodb.test.local');
  await nocodb.login(name, PASSWORD);
  nocodb.jar.cookies.set('refresh_token', 'nocodb-own-session');
  const before = gw.upstream.seen.length;

  const res = await logout(nocodb);
  assert.equal(res.status, 303);
  assert.equal(res.headers['clear-site-data'], '"storage"', 'cookies wait for the chain: the other hosts still need theirs');
  for (const n of [ACCESS_COOKIE, REFRESH_COOKIE, ...APP_COOKIES]) assert.equal(setCookieLine(res, n)?.attrs.get('max-age'), '0', `${n} expired`);
  assert.equal(setCookieLine(res, 'refresh_token')?.attrs.get('path'), '/');

  const hops = await follow(b, res);
  assert.equal(hops.length, 2, 'metabase, then nocodb itself (api is a jwt host: no browser session there)');
  for (const h of hops) {
    assert.equal(h.headers['clear-site-data'], '"cookies", "storage"');
    assert.equal(h.headers['cache-control'], 'no-store');
    assert.equal(h.headers['referrer-policy'], 'no-referrer');
    for (const n of [ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE, ...APP_COOKIES]) assert.equal(setCookieLine(h, n)?.attrs.get('max-age'), '0', `${n} expired on the hop`);
  }
  assert.equal(gw.upstream.seen.length, before, 'nothing reached an upstream');
  await waitFor(() => gw.log.securityEvents.filter((e) => e.event === 'auth.site_data_cleared').length >= 2, 1_000, 10);
  assert.deepEqual(
    gw.log.securityEvents.filter((e) => e.event === 'auth.site_data_cleared' && (hops.map((h) => h.headers['x-request-id']) as unknown[]).includes(e.requestId)).map((e) => e.host),
    ['metabase.test.local', 'nocodb.test.local'],
  );
});

test('each hop ends the session that host carries: a Metabase session of the same browser is revoked too', async () => {
  const b = new HostBrowser(gw);
  const name = await user();
  await b.on('nocodb.test.local').login(name, PASSWORD);
  const metabase = b.on('metabase.test.local');
  await metabase.login(name, PASSWORD);
  const metabaseAccess = metabase.jar.get(ACCESS_COOKIE) as string;
  assert.equal((await metabase.send({ path: '/dash' })).status, 200);

  await follow(b, await logout(b.on('nocodb.test.local')));
  assert.equal(metabase.jar.get(ACCESS_COOKIE), undefined, 'the hop cleared the Metabase host cookies');
  const before = gw.upstream.seen.length;
  const replay = await metabase.send({ path: '/dash', headers: { cookie: `${ACCESS_COOKIE}=${metabaseAccess}` } });
  assert.equal(replay.status, 401);
  assert.equal(code(replay), 'AUTH_REVOKED', 'a copy of the Metabase session is dead as well');
  assert.equal(gw.upstream.seen.length, before);
});

test('hostile hops: no ticket, a forged, replayed or other-host ticket, or POST is a 4xx that clears nothing and redirects nowhere', async () => {
  const b = new HostBrowser(gw);
  await b.on('nocodb.test.local').login(await user(), PASSWORD);
  const first = new URL(String((await logout(b.on('nocodb.test.local'))).headers.location));
  const ticket = first.searchParams.get('token') as string;
  const before = gw.upstream.seen.length;
  const probe = new SessionClient(gw, 'metabase.test.local');
  const expectInvalid = async (res: TestResponse, what: string, status = 400, errorCode = 'SITE_CLEAR_INVALID'): Promise<void> => {
    assert.equal(res.status, status, what);
    assert.equal(code(res), errorCode, what);
    assert.equal(res.headers['clear-site-data'], undefined, `${what}: nothing cleared`);
    assert.equal(res.headers.location, undefined, `${what}: no redirect`);
    assert.equal(res.headers['set-cookie'], undefined, `${what}: no cookie touched`);
  };
  await expectInvalid(await probe.send({ path: '/auth/clear' }), 'no ticket');
  await expectInvalid(await probe.send({ path: '/auth/clear?token=' }), 'empty ticket');
  await expectInvalid(await probe.send({ path: `/auth/clear?token=${'A'.repeat(32)}` }), 'forged ticket');
  await expectInvalid(await probe.send({ path: `/auth/clear?token=${ticket}x` }), 'malformed ticket');
  await expectInvalid(await probe.send({ method: 'POST', path: `/auth/clear?token=${ticket}` }), 'POST', 405, 'METHOD_NOT_ALLOWED');
  // The ticket names metabase: on another host it is refused (and spent).
  await expectInvalid(await new SessionClient(gw, 'public.test.local').send({ path: `/auth/clear?token=${ticket}` }), 'other host');
  await expectInvalid(await probe.send({ path: `/auth/clear?token=${ticket}` }), 'spent by the other-host attempt');
  assert.equal(gw.upstream.seen.length, before, 'nothing reached an upstream');
});

test('the hop takes no destination from the link: extra parameters cannot send the browser off the gateway', async () => {
  const b = new HostBrowser(gw);
  await b.on('nocodb.test.local').login(await user(), PASSWORD);
  const first = new URL(String((await logout(b.on('nocodb.test.local'))).headers.location));
  const ticket = first.searchParams.get('token') as string;
  const res = await b.on('metabase.test.local').send({ path: `/auth/clear?rd=https%3A%2F%2Fevil.example%2F&next=//evil.example&token=${ticket}&done=https://evil.example` });
  assert.equal(res.status, 303);
  assert.match(String(res.headers.location), /^https:\/\/nocodb\.test\.local:8443\/auth\/clear\?token=[A-Za-z0-9_-]{32}$/);
  // A replay of the hop, the way a reload would: refused, the browser is not sent anywhere.
  const again = await b.on('metabase.test.local').send({ path: `/auth/clear?token=${ticket}` });
  assert.equal(again.status, 400);
});

test('the logout page lets its form lead through the other session hosts (CSP form-action), and only those', async () => {
  const page = await new SessionClient(gw, 'nocodb.test.local').send({ path: '/auth/logout', html: true });
  assert.match(String(page.headers['content-security-policy']), new RegExp(`form-action 'self' https://metabase\\.test\\.local:${PORT};`));
});

test('login clears the storage of its host and expires the applications session cookies, sent or not', async () => {
  const c = new SessionClient(gw, 'nocodb.test.local');
  c.jar.cookies.set('refresh_token', 'previous-user-nocodb');
  const res = await c.login(await user(), PASSWORD);
  assert.equal(res.headers['clear-site-data'], '"storage"', 'not "cookies": it would delete the session this answer sets');
  for (const n of APP_COOKIES) assert.equal(setCookieLine(res, n)?.attrs.get('max-age'), '0', n);
  assert.ok(setCookieLine(res, ACCESS_COOKIE)?.value, 'the new session is set');
  const before = gw.upstream.seen.length;
  assert.equal((await c.send({ path: '/grid' })).status, 200);
  assert.equal(gw.upstream.seen.length, before + 1);
  assert.doesNotMatch(String(gw.upstream.seen.at(-1)?.headers.cookie ?? ''), /previous-user/, 'the previous app cookie does not reach the upstream');
});

test('a login replacing another user records who was replaced', async () => {
  const c = new SessionClient(gw, 'nocodb.test.local');
  const first = await user();
  const second = await user();
  await c.login(first, PASSWORD);
  await c.login(second, PASSWORD);
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.session_replaced' && e.user === second && e.previousUser === first));
});
