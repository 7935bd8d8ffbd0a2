import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { ACCESS_COOKIE, REFRESH_COOKIE, SSO_STATE_COOKIE } from '../../src/auth/cookies.js';
import type { SeenRequest } from '../../src/demo/echo-upstream.js';
import { addUser, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import type { TestResponse } from '../helpers/harness.js';
import { HostBrowser, SessionClient, formField, setCookieLine } from '../helpers/session-client.js';

// Issue 14, item 1: one login for every session host, host-bound cookies handed over through a
// one-time code (src/auth/sso/handoff.ts), and one logout that ends the session on every host.

const PORT = 8443;
const S = 'nocodb.test.local';
const T = 'metabase.test.local';
const U = 'api.test.local';
const ROUTES = `
  - name: nocodb
    host: ${S}
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: metabase
    host: ${T}
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: api
    host: ${U}
    upstream: UPSTREAM
    auth: jwt-or-session
    roles: [staff]
  - name: public
    host: public.test.local
    upstream: UPSTREAM
    auth: none
`;
const ENV = { TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: String(PORT) };
const PASSWORD = 'correct horse battery staple';

let gw: AuthTestGateway;
before(async () => {
  gw = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV });
});
after(async () => {
  await gw?.close();
});

async function user(): Promise<string> {
  const name = uniq('sso');
  await addUser(gw.auth, name, PASSWORD, ['staff']);
  return name;
}

const errorCode = (res: TestResponse): string => res.json<{ error: { code: string } }>().error.code;
const claimsOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>;

const origin = (host: string): string => `https://${host}:${PORT}`;

async function loggedIn(b: HostBrowser, name: string, host = S): Promise<TestResponse> {
  return b.on(host).login(name, PASSWORD);
}

function lastSeen(path: string): SeenRequest | undefined {
  return [...gw.upstream.seen].reverse().find((r) => r.url === path || r.url.startsWith(`${path}?`));
}

test('signed in on the sign-in host, a second host gets its own session through the hand-off: one code, host-bound cookies, same session', async () => {
  const b = new HostBrowser(gw, PORT);
  const name = await user();
  await loggedIn(b, name);
  const sAccess = claimsOf(b.on(S).jar.get(ACCESS_COOKIE) as string);
  assert.match(String(sAccess.sid), /^[0-9a-f]{32}$/, 'the session token names its staff session');
  assert.deepEqual(sAccess.amr, ['password']);

  const t0 = performance.now();
  const hops = await b.navigate(`${origin(T)}/dash?x=1`);
  const handoffMs = performance.now() - t0;
  assert.deepEqual(
    hops.map((h) => `${new URL(h.url).hostname}${new URL(h.url).pathname} ${h.res.status}`),
    [`${T}/dash 302`, `${T}/auth/sso/begin 302`, `${S}/auth/sso/start 302`, `${T}/auth/sso/callback 302`, `${T}/dash 200`],
  );
  const [, begin, start, callback] = hops;
  // The state cookie: host-only, Secure, HttpOnly (the __Host- prefix), set before leaving T.
  const state = setCookieLine(begin?.res as TestResponse, SSO_STATE_COOKIE);
  assert.ok(state && state.attrs.has('httponly') && state.attrs.has('secure') && state.attrs.get('path') === '/' && !state.attrs.has('domain'));
  for (const h of [begin, start, callback]) {
    assert.equal(h?.res.headers['referrer-policy'], 'no-referrer');
    assert.equal(h?.res.headers['cache-control'], 'no-store');
  }
  const code = new URL(String(start?.res.headers.location)).searchParams.get('code') as string;
  assert.match(code, /^[A-Za-z0-9_-]{43}$/, '256-bit code');
  assert.equal(callback?.res.headers.location, '/dash?x=1', 'the callback sends the browser on without the code');
  assert.equal(setCookieLine(callback?.res as TestResponse, SSO_STATE_COOKIE)?.attrs.get('max-age'), '0', 'the state is used up');
  const tAccess = claimsOf(b.on(T).jar.get(ACCESS_COOKIE) as string);
  assert.equal(tAccess.sid, sAccess.sid, 'the same staff session on both hosts');
  assert.notEqual(tAccess.fam, sAccess.fam, 'each host its own refresh family');
  assert.equal(tAccess.auth_time, sAccess.auth_time, 'the session keeps the time of its sign-in');
  // The upstream got the page: no code in its URL, its Referer or its cookies.
  const seen = lastSeen('/dash?x=1') as SeenRequest;
  assert.ok(seen, 'the page reached the upstream');
  assert.ok(!JSON.stringify(seen).includes(code), 'the code never reaches the upstream');
  assert.ok(!String(seen.headers.cookie ?? '').includes('crmgw'), 'no gateway cookie upstream');
  const issued = gw.log.securityEvents.find((e) => e.event === 'auth.sso_code_issued' && e.user === name);
  const signedIn = gw.log.securityEvents.find((e) => e.event === 'auth.sso_signed_in' && e.user === name);
  assert.ok(issued && signedIn && signedIn.host === T && signedIn.sessionId === sAccess.sid);
  // The third host (jwt-or-session) the same way.
  const third = await b.navigate(`${origin(U)}/v1/me`);
  assert.equal(third.at(-1)?.res.status, 200);
  assert.equal(claimsOf(b.on(U).jar.get(ACCESS_COOKIE) as string).sid, sAccess.sid);
  const sessions = await gw.auth.sessions.registry.list({ subject: name });
  assert.equal(sessions.length, 1, 'one session');
  assert.equal((await gw.auth.sessions.registry.families(sessions[0]?.id as string)).length, 3, 'three hosts joined it');
  process.stdout.write(`# measured: SSO hand-off to a second host (5 answers, first page included) ${handoffMs.toFixed(1)} ms\n`);
});

test('not signed in anywhere: a second host sends the browser to sign in on the sign-in host once, then back with a session', async () => {
  const b = new HostBrowser(gw, PORT);
  const name = await user();
  const hops = await b.navigate(`${origin(T)}/report`);
  const page = hops.at(-1) as { url: string; res: TestResponse };
  assert.equal(new URL(page.url).hostname, S, 'the sign-in form is on the sign-in host');
  assert.equal(new URL(page.url).pathname, '/auth/login');
  const rd = formField(page.res.body, 'rd') as string;
  assert.match(rd, /^\/auth\/sso\/start\?/, 'the form returns to the hand-off');
  const t0 = performance.now();
  const posted = await b.on(S).postLogin({ csrf: formField(page.res.body, 'csrf') as string, rd, username: name, password: PASSWORD });
  assert.equal(posted.status, 303);
  const rest = await b.navigate(new URL(String(posted.headers.location), origin(S)).href);
  const ms = performance.now() - t0;
  assert.equal(rest.at(-1)?.res.status, 200);
  assert.equal(new URL(rest.at(-1)?.url as string).hostname, T);
  assert.equal(lastSeen('/report')?.headers.host, T);
  process.stdout.write(`# measured: login POST → first proxied page on a second host ${ms.toFixed(1)} ms (${rest.length + 1} answers)\n`);
});

test('a direct login on another host than the sign-in host still works and also signs in the sign-in host', async () => {
  const b = new HostBrowser(gw, PORT);
  const name = await user();
  const t0 = performance.now();
  const posted = await loggedIn(b, name, T);
  assert.match(String(posted.headers.location), new RegExp(`^${origin(S)}/auth/sso/begin\\?`), 'chained through the sign-in host');
  const rest = await b.navigate(String(posted.headers.location));
  const ms = performance.now() - t0;
  const last = rest.at(-1) as { url: string; res: TestResponse };
  assert.equal(last.url, `${origin(T)}/`, 'back where the login asked to go');
  assert.equal(last.res.status, 200);
  const sid = claimsOf(b.on(T).jar.get(ACCESS_COOKIE) as string).sid;
  assert.equal(claimsOf(b.on(S).jar.get(ACCESS_COOKIE) as string).sid, sid, 'the sign-in host holds the same session');
  // And so a third host needs no second login.
  const third = await b.navigate(`${origin(U)}/v1/me`);
  assert.equal(third.at(-1)?.res.status, 200);
  assert.equal(claimsOf(b.on(U).jar.get(ACCESS_COOKIE) as string).sid, sid);
  process.stdout.write(`# measured: direct login POST on a second host → first proxied page ${ms.toFixed(1)} ms (${rest.length + 1} answers)\n`);
});

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

test('one logout ends the session on every host: copies of all three hosts\' cookies are refused afterwards, even before the chain clears them', async () => {
  const b = new HostBrowser(gw, PORT);
  const name = await user();
  await loggedIn(b, name);
  await b.navigate(`${origin(T)}/`);
  await b.navigate(`${origin(U)}/`);
  const copies = [S, T, U].map((h) => ({ host: h, cookie: b.on(h).jar.header() }));
  for (const c of copies) assert.match(c.cookie, new RegExp(ACCESS_COOKIE));
  const res = await logout(b.on(T));
  assert.equal(res.status, 303);
  const ended = gw.log.securityEvents.find((e) => e.event === 'auth.session_revoked' && e.user === name);
  assert.ok(ended && ended.reason === 'logout' && ended.hosts === 3, JSON.stringify(ended));
  const before = gw.upstream.seen.length;
  for (const c of copies) {
    const r = await gw.request({ host: c.host, path: '/after', headers: { cookie: c.cookie, accept: 'application/json', 'x-forwarded-for': b.on(S).ip } });
    assert.equal(r.status, 401, `${c.host}: ${r.body}`);
    assert.equal(errorCode(r), 'AUTH_REVOKED', c.host);
    // The refresh cookie alone renews nothing either.
    const refresh = c.cookie.split('; ').find((p) => p.startsWith(`${REFRESH_COOKIE}=`)) as string;
    const r2 = await gw.request({ host: c.host, path: '/after', headers: { cookie: refresh, accept: 'application/json', 'x-forwarded-for': b.on(S).ip } });
    assert.equal(r2.status, 401, `${c.host} refresh: ${r2.body}`);
  }
  assert.equal(gw.upstream.seen.length, before, 'nothing reached an upstream');
  assert.equal(await gw.auth.sessions.registry.get(String(claimsOf(copies[0]?.cookie.match(/__Host-crmgw_at=([^;]+)/)?.[1] as string).sid)), undefined, 'the registry forgot it');
});

/** Runs the hand-off up to the code for T and returns the callback URL, without following it. */
async function codeFor(b: HostBrowser, host = T): Promise<string> {
  const begin = await b.on(host).send({ path: '/auth/sso/begin?rd=%2Fhere', html: true });
  assert.equal(begin.status, 302);
  const start = new URL(String(begin.headers.location));
  const res = await b.on(start.hostname).send({ path: `${start.pathname}${start.search}`, html: true });
  const location = String(res.headers.location);
  assert.match(location, new RegExp(`^${origin(host)}/auth/sso/callback\\?code=`));
  return location;
}

async function refused(b: HostBrowser, url: string, status: number, code: string, cookie?: string): Promise<TestResponse> {
  const u = new URL(url);
  const before = gw.upstream.seen.length;
  const events = gw.log.securityEvents.length;
  const c = b.on(u.hostname);
  const res = await c.send({ path: `${u.pathname}${u.search}`, ...(cookie === undefined ? {} : { headers: { cookie } }) });
  assert.equal(res.status, status, `${url}: ${res.body}`);
  assert.equal(errorCode(res), code, url);
  assert.equal(gw.upstream.seen.length, before, 'nothing reached an upstream');
  assert.ok(gw.log.securityEvents.slice(events).some((e) => e.event === 'auth.sso_refused' && e.code === code), `auth.sso_refused ${code}`);
  assert.equal(res.headers['referrer-policy'], 'no-referrer');
  assert.equal(setCookieLine(res, ACCESS_COOKIE), undefined, 'no session set');
  return res;
}

test('a code replayed: the second use is refused (AUTH_SSO_CODE_INVALID), even with the right state cookie', async () => {
  const b = new HostBrowser(gw, PORT);
  await loggedIn(b, await user());
  const callback = await codeFor(b);
  const state = b.on(T).jar.get(SSO_STATE_COOKIE) as string;
  const first = await b.navigate(callback);
  assert.equal(first.at(-1)?.res.status, 200);
  // An attacker who saw the URL, with the state cookie too.
  const other = new HostBrowser(gw, PORT);
  await refused(other, callback, 400, 'AUTH_SSO_CODE_INVALID', `${SSO_STATE_COOKIE}=${state}`);
});

test('a code redeemed on another host than it was minted for is refused, and is gone for its own host too', async () => {
  const b = new HostBrowser(gw, PORT);
  await loggedIn(b, await user());
  const callback = await codeFor(b, T);
  // The api host has its own state cookie: it began a flow of its own.
  await b.on(U).send({ path: '/auth/sso/begin?rd=%2F', html: true });
  const moved = callback.replace(origin(T), origin(U));
  await refused(b, moved, 400, 'AUTH_SSO_CODE_INVALID');
  await refused(b, callback, 400, 'AUTH_SSO_CODE_INVALID');
});

test('login CSRF: a code without this browser\'s state cookie, or with another flow\'s, is refused (AUTH_SSO_STATE_INVALID)', async () => {
  // The attacker signs in and runs the hand-off up to the code...
  const attacker = new HostBrowser(gw, PORT);
  const mallory = await user();
  await loggedIn(attacker, mallory);
  const callback = await codeFor(attacker);
  // ...and lures the victim's browser to it: no state cookie there.
  const victim = new HostBrowser(gw, PORT);
  await refused(victim, callback, 400, 'AUTH_SSO_STATE_INVALID');
  // A victim who began a flow of their own has a state cookie, but not the attacker's.
  const callback2 = await codeFor(attacker);
  await victim.on(T).send({ path: '/auth/sso/begin?rd=%2F', html: true });
  assert.ok(victim.on(T).jar.get(SSO_STATE_COOKIE));
  await refused(victim, callback2, 400, 'AUTH_SSO_STATE_INVALID');
  assert.equal(victim.on(T).jar.get(ACCESS_COOKIE), undefined, 'the victim is not signed in as the attacker');
});

test('cookie tossing: a state cookie or a session cookie sent twice (a sibling subdomain planted one) is refused', async () => {
  const b = new HostBrowser(gw, PORT);
  await loggedIn(b, await user());
  const callback = await codeFor(b);
  const state = b.on(T).jar.get(SSO_STATE_COOKIE) as string;
  await refused(b, callback, 400, 'AUTH_SSO_STATE_INVALID', `${SSO_STATE_COOKIE}=${state}; ${SSO_STATE_COOKIE}=tossed`);
  // On the sign-in host, session cookies sent twice: no code is minted for either.
  const begin = await b.on(T).send({ path: '/auth/sso/begin?rd=%2F', html: true });
  const start = new URL(String(begin.headers.location));
  const before = gw.upstream.seen.length;
  const res = await b.on(S).send({ path: `${start.pathname}${start.search}`, headers: { cookie: `${b.on(S).jar.header()}; ${ACCESS_COOKIE}=tossed` } });
  assert.equal(res.status, 401);
  assert.equal(errorCode(res), 'AUTH_AMBIGUOUS');
  assert.equal(res.headers.location, undefined, 'no code handed out');
  assert.equal(gw.upstream.seen.length, before);
});

test('open redirects through the hand-off are refused: rd to a foreign host, to http:, to //evil; to= a host that is not a session host', async () => {
  const b = new HostBrowser(gw, PORT);
  await loggedIn(b, await user());
  for (const rd of ['https://evil.example/x', `http://${T}:${PORT}/x`, '//evil.example/x', `https://${T}.evil.example:${PORT}/`, `https://${T}:444/x`, '/\\evil.example']) {
    const hops = await b.navigate(`${origin(T)}/auth/sso/begin?rd=${encodeURIComponent(rd)}`);
    const last = hops.at(-1) as { url: string; res: TestResponse };
    assert.equal(last.url, `${origin(T)}/`, `${rd} → ${last.url}`);
    for (const h of hops) assert.ok(new URL(h.url).hostname.endsWith('.test.local') && !h.url.startsWith('http:'), h.url);
  }
  // start with a forged rd on the sign-in host (an attacker's link): the code's destination is checked there.
  const begin = await b.on(T).send({ path: '/auth/sso/begin?rd=%2F', html: true });
  const start = new URL(String(begin.headers.location));
  start.searchParams.set('rd', 'https://evil.example/');
  const fromStart = await b.navigate(start.href);
  assert.equal(fromStart.at(-1)?.url, `${origin(T)}/`);
  // to= a foreign host or the public (non-session) host: no code leaves.
  for (const to of ['evil.example', 'public.test.local', S]) {
    start.searchParams.set('to', to);
    await refused(b, start.href.replace(origin(T), origin(S)), 400, 'BAD_REQUEST');
  }
  // from= a foreign host.
  await refused(b, `${origin(T)}/auth/sso/begin?from=evil.example&rd=%2F`, 400, 'BAD_REQUEST');
});

/** Every redirect of a chain: never a protocol-relative Location (`//host`, `/\\host`), always one of our hosts. */
function ownLocations(hops: { url: string; res: TestResponse }[]): void {
  for (const h of hops) {
    const location = h.res.headers.location;
    if (location === undefined) continue;
    assert.ok(!/^[/\\][/\\]/.test(String(location)), `${h.url} → Location ${String(location)}`);
    assert.ok(new URL(String(location), h.url).hostname.endsWith('.test.local'), `${h.url} → Location ${String(location)}`);
  }
}

// Regression (review of issue 14): an https rd on our own host with a path of `//evil.example/…`
// passed the return-URL check, and the callback cut the origin off: `Location: //evil.example/phish`.
test('open redirects through a path that starts with two slashes (//, ///, /%2F%2F, /\\): the hand-off and a sign-in end on our host', async () => {
  const name = await user();
  const b = new HostBrowser(gw, PORT);
  await loggedIn(b, name);
  for (const path of ['//evil.example/phish', '///evil.example/phish', '/%2F%2Fevil.example/phish', '/\\evil.example/phish', '/%5Cevil.example/phish']) {
    const hops = await b.navigate(`${origin(T)}/auth/sso/begin?rd=${encodeURIComponent(`${origin(T)}${path}`)}`);
    ownLocations(hops);
    assert.equal(hops.at(-1)?.url, `${origin(T)}/`, `${path}: back to T's root`);
    assert.equal(hops.at(-1)?.res.status, 200);
  }
  // A password sign-in on T with rd on S whose path is //evil: through S's hand-off, back on our hosts.
  for (const path of ['//evil.example/x', '///evil.example/x', '/%2F%2Fevil.example/x']) {
    const fresh = new HostBrowser(gw, PORT);
    const form = await fresh.on(T).openLogin();
    const posted = await fresh.on(T).postLogin({ csrf: form.csrf, rd: `${origin(S)}${path}`, username: name, password: PASSWORD });
    assert.equal(posted.status, 303, posted.body.slice(0, 200));
    const hops = [{ url: `${origin(T)}/auth/login`, res: posted }, ...(await fresh.navigate(new URL(String(posted.headers.location), origin(T)).href))];
    ownLocations(hops);
    assert.equal(new URL(hops.at(-1)?.url ?? '').pathname, '/', `${path}: a root of ours`);
    assert.equal(hops.at(-1)?.res.status, 200);
  }
});

test('malformed and unknown codes, and a code for a session ended meanwhile, are refused', async () => {
  const b = new HostBrowser(gw, PORT);
  await loggedIn(b, await user());
  await b.on(T).send({ path: '/auth/sso/begin?rd=%2F', html: true });
  await refused(b, `${origin(T)}/auth/sso/callback`, 400, 'AUTH_SSO_CODE_INVALID');
  await refused(b, `${origin(T)}/auth/sso/callback?code=short`, 400, 'AUTH_SSO_CODE_INVALID');
  await refused(b, `${origin(T)}/auth/sso/callback?code=${'A'.repeat(43)}`, 400, 'AUTH_SSO_CODE_INVALID');
  const callback = await codeFor(b);
  const sid = String(claimsOf(b.on(S).jar.get(ACCESS_COOKIE) as string).sid);
  await gw.auth.sessions.end(sid, { actor: 'test', reason: 'test' });
  await refused(b, callback, 400, 'AUTH_SSO_CODE_INVALID');
});

test('ending a session closes its websockets on every host (the session end is one revocation)', async () => {
  const b = new HostBrowser(gw, PORT);
  await loggedIn(b, await user());
  await b.navigate(`${origin(T)}/`);
  const sockets = await Promise.all(
    [S, T].map(
      (host) =>
        new Promise<{ ws: WebSocket; closed: Promise<number> }>((resolve, reject) => {
          const options: WebSocket.ClientOptions & { servername: string } = { headers: { host, cookie: b.on(host).jar.header(), origin: `https://${host}` }, servername: host, ca: gw.ca };
          const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/ws`, options);
          const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
          ws.once('error', reject);
          ws.once('message', () => resolve({ ws, closed }));
        }),
    ),
  );
  const sid = String(claimsOf(b.on(S).jar.get(ACCESS_COOKIE) as string).sid);
  await gw.auth.sessions.end(sid, { actor: 'test', reason: 'test' });
  const codes = await Promise.all(sockets.map((s) => Promise.race([s.closed, new Promise<number>((r) => setTimeout(() => r(-1), 3_000))])));
  for (const c of codes) assert.notEqual(c, -1, 'closed');
});
