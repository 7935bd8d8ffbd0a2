// Findings of the adversarial review of src/auth (each test failed before its fix).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/cookies.js';
import { addClient, addUser, claimsFor, expectRefused, ringToken, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { SessionClient, formField, setCookieLine } from '../helpers/session-client.js';
import type { TestResponse } from '../helpers/harness.js';

const ROUTES = `
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
    cors: { origins: ["https://other.test.local", "localhost"], credentials: true }
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
`;
const ENV = { TRUSTED_PROXIES: '127.0.0.1' };
const PASSWORD = 'correct horse battery staple';
/** Long enough for the racing steps below, short enough to wait out in the reuse test. */
const GRACE_MS = 1_500;

let gw: AuthTestGateway;

before(async () => {
  gw = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV, extraYaml: `auth: { refreshReuseGrace: ${GRACE_MS}ms }` });
});

after(async () => {
  await gw?.close();
});

function code(res: TestResponse): string {
  return res.json<{ error: { code: string } }>().error.code;
}

async function loggedIn(): Promise<SessionClient & { user: string }> {
  const user = uniq('review');
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const c = Object.assign(new SessionClient(gw, 'nocodb.test.local'), { user });
  await c.login(user, PASSWORD);
  return c;
}

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
  await new Promise((r) => setTimeout(r, GRACE_MS + 200));
  // The old refresh token comes back after the grace: reuse, the family is revoked.
  await expectRefused(gw, { path: '/replay', host: 'nocodb.test.local', headers: { cookie: `${REFRESH_COOKIE}=${r1}`, accept: 'application/json' } }, 401, 'AUTH_REVOKED');
  for (const access of [thief, legit.access]) {
    await expectRefused(gw, { path: '/after-reuse', host: 'nocodb.test.local', headers: { cookie: `${ACCESS_COOKIE}=${access}`, accept: 'application/json' } }, 401, 'AUTH_REVOKED');
  }
});

/** Opens a websocket; resolves on the upstream's greeting, rejects with the refusal's status and body. */
function connect(headers: Record<string, string>, host: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const options: WebSocket.ClientOptions & { servername: string } = { headers: { host, ...headers }, servername: host, ca: gw.ca };
    const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/ws`, options);
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body: Buffer.concat(chunks).toString() })));
    });
    ws.once('error', reject);
    ws.once('message', () => resolve(ws));
  });
}

test('cross-site websocket hijacking: a session websocket from a CORS-listed foreign origin is 403 CSRF_REJECTED, upstream untouched', async () => {
  const c = await loggedIn();
  const cookie = c.jar.header();
  // The route's own host opens it.
  const own = await connect({ cookie, origin: 'https://nocodb.test.local' }, 'nocodb.test.local');
  own.close();
  // CORS lists these origins (an exact one, and a bare host on any port and scheme), but a
  // websocket is not bound by CORS: with the session cookie it must come from the route's host.
  for (const origin of ['https://other.test.local', 'http://localhost:5173', undefined]) {
    const before = gw.upstream.seen.length;
    await assert.rejects(connect({ cookie, ...(origin ? { origin } : {}) }, 'nocodb.test.local'), (err: Error & { status?: number; body?: string }) => {
      assert.equal(err.status, 403, `${String(origin)}: ${err.message}`);
      assert.equal((JSON.parse(err.body ?? '{}') as { error?: { code?: string } }).error?.code, 'CSRF_REJECTED', String(origin));
      return true;
    });
    assert.equal(gw.upstream.seen.length, before, `${String(origin)}: nothing reached the upstream`);
  }
});

test('a bearer websocket needs no Origin (bearer tokens are not sent by browsers on their own)', async () => {
  const client = uniq('review-client');
  await addClient(gw.auth, client, ['api']);
  const { token } = gw.auth.tokens.issue({ sub: `client:${client}`, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const ws = await connect({ authorization: `Bearer ${token}` }, 'api.test.local');
  ws.close();
});

test('a JWT whose crit header names an extension the gateway does not implement is refused (RFC 7515 §4.1.11)', async () => {
  const client = uniq('review-crit');
  await addClient(gw.auth, client, ['api']);
  const sub = `client:${client}`;
  for (const header of [{ crit: ['exp'] }, { crit: ['b64'], b64: false }, { crit: [] }, { crit: 'exp' }]) {
    const token = ringToken(gw.secret, claimsFor(sub), header);
    await expectRefused(gw, { path: '/v1/x', host: 'api.test.local', headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }, 401, 'AUTH_INVALID');
  }
  // The same token without crit passes.
  const before = gw.upstream.seen.length;
  const ok = await gw.request({ path: '/v1/x', host: 'api.test.local', headers: { authorization: `Bearer ${ringToken(gw.secret, claimsFor(sub))}`, accept: 'application/json' } });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(gw.upstream.seen.length, before + 1);
});
