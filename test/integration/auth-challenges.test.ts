import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ACCESS_COOKIE } from '../../src/auth/cookies.js';
import { addClient, addUser, claimsFor, expectRefused, ringToken, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { firstStatus, rawTlsExchange, startTestGateway } from '../helpers/harness.js';
import { SessionClient } from '../helpers/session-client.js';

// Issue #12 item 4: every 401 says how to authenticate (RFC 9110 §15.5.2), bearer routes in
// RFC 6750 §3 terms, and no challenge carries more than the public message.

const ROUTES = `
  - name: api-admin
    host: api.test.local
    path: /admin
    upstream: UPSTREAM
    auth: jwt
    roles: [admin]
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    websocket: true
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: mixed
    host: mixed.test.local
    upstream: UPSTREAM
    auth: jwt-or-session
    roles: [staff, api]
`;
const ENV = { TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: '8443' };

const BEARER = 'Bearer realm="crm-gateway"';
const COOKIE = `Cookie realm="crm-gateway", form-action="/auth/login", cookie-name="${ACCESS_COOKIE}"`;
const invalidToken = (description: string): string => `${BEARER}, error="invalid_token", error_description="${description}"`;
const JSON_ACCEPT = { accept: 'application/json' };

let gw: AuthTestGateway;
let sub: string;

before(async () => {
  gw = await startAuthGateway({ routes: ROUTES, env: ENV });
  const client = uniq('chal-client');
  sub = `client:${client}`;
  await addClient(gw.auth, client, ['api']);
});
after(async () => {
  await gw?.close();
});

const token = (overrides: Record<string, unknown> = {}): string => ringToken(gw.secret, claimsFor(sub, overrides));
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}`, ...JSON_ACCEPT });

async function challenge(req: Parameters<AuthTestGateway['request']>[0], status: number, code: string): Promise<string> {
  const res = await expectRefused(gw, req, status, code);
  return String(res.headers['www-authenticate']);
}

test('bearer route: no token is a bare challenge; a malformed, forged, expired, revoked or disabled token is invalid_token', async () => {
  const now = Math.floor(Date.now() / 1000);
  assert.equal(await challenge({ path: '/v1/x', headers: JSON_ACCEPT }, 401, 'AUTH_REQUIRED'), BEARER);
  assert.equal(await challenge({ path: '/v1/x', headers: { authorization: 'Bearer not-a-jwt', ...JSON_ACCEPT } }, 401, 'AUTH_INVALID'), invalidToken('The credentials are not valid.'));
  assert.equal(await challenge({ path: '/v1/x', headers: bearer(`${token().slice(0, -4)}AAAA`) }, 401, 'AUTH_INVALID'), invalidToken('The credentials are not valid.'));
  assert.equal(await challenge({ path: '/v1/x', headers: bearer(token({ iat: now - 120, exp: now - 60 })) }, 401, 'AUTH_EXPIRED'), invalidToken('The credentials have expired.'));
  const jti = randomBytes(16).toString('base64url');
  await gw.auth.revocations.revoke(jti, now + 600);
  assert.equal(await challenge({ path: '/v1/x', headers: bearer(token({ jti })) }, 401, 'AUTH_REVOKED'), invalidToken('The credentials have been revoked.'));
  const disabled = uniq('chal-disabled');
  await gw.auth.store.addClient({ name: disabled, secretHash: 'x'.repeat(64), roles: ['api'], disabled: true, createdAt: new Date() });
  const disabledToken = ringToken(gw.secret, claimsFor(`client:${disabled}`));
  assert.equal(await challenge({ path: '/v1/x', headers: bearer(disabledToken) }, 401, 'AUTH_DISABLED'), invalidToken('This account is disabled.'));
});

test('bearer route: two Authorization headers are invalid_request; a role refusal is 403 insufficient_scope without the roles', async () => {
  const t = token();
  const twice = await challenge({ path: '/v1/x', headers: { authorization: [`Bearer ${t}`, `Bearer ${t}`], ...JSON_ACCEPT } }, 401, 'AUTH_AMBIGUOUS');
  assert.equal(twice, `${BEARER}, error="invalid_request", error_description="Credentials were sent in more than one place."`);
  const scope = await challenge({ path: '/admin/x', headers: bearer(t) }, 403, 'ROLE_FORBIDDEN');
  assert.equal(scope, `${BEARER}, error="insufficient_scope", error_description="Your roles do not allow this route."`);
  assert.doesNotMatch(scope, /admin|api/, 'no route or role names');
});

test('session route: every 401 carries the Cookie challenge naming the login form', async () => {
  assert.equal(await challenge({ host: 'nocodb.test.local', path: '/x', headers: JSON_ACCEPT }, 401, 'AUTH_REQUIRED'), COOKIE);
  assert.equal(await challenge({ host: 'nocodb.test.local', path: '/x', headers: { cookie: `${ACCESS_COOKIE}=${token({ typ: 'session' })}x`, ...JSON_ACCEPT } }, 401, 'AUTH_INVALID'), COOKIE);
  // A bearer token on a session-only route: refused, and the challenge says what works here.
  assert.equal(await challenge({ host: 'nocodb.test.local', path: '/x', headers: bearer(token()) }, 401, 'AUTH_INVALID'), COOKIE);
  const at = token({ typ: 'session' });
  assert.equal(await challenge({ host: 'nocodb.test.local', path: '/x', headers: { cookie: `${ACCESS_COOKIE}=${at}; ${ACCESS_COOKIE}=${at}`, ...JSON_ACCEPT } }, 401, 'AUTH_AMBIGUOUS'), COOKIE);
});

test('jwt-or-session route: both challenges; the error sits on the scheme that was used', async () => {
  const now = Math.floor(Date.now() / 1000);
  const host = 'mixed.test.local';
  assert.equal(await challenge({ host, path: '/x', headers: JSON_ACCEPT }, 401, 'AUTH_REQUIRED'), `${BEARER}, ${COOKIE}`);
  assert.equal(await challenge({ host, path: '/x', headers: bearer(token({ iat: now - 120, exp: now - 60 })) }, 401, 'AUTH_EXPIRED'), `${invalidToken('The credentials have expired.')}, ${COOKIE}`);
  const expiredSession = ringToken(gw.secret, claimsFor(sub, { typ: 'session', iat: now - 120, exp: now - 60 }));
  assert.equal(await challenge({ host, path: '/x', headers: { cookie: `${ACCESS_COOKIE}=${expiredSession}`, ...JSON_ACCEPT } }, 401, 'AUTH_EXPIRED'), `${BEARER}, ${COOKIE}`);
});

test('a refused websocket upgrade carries the challenge too', async () => {
  const before = gw.upstream.seen.length;
  const raw = await rawTlsExchange(
    gw.port,
    gw.ca,
    `GET /ws HTTP/1.1\r\nHost: api.test.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    { servername: 'api.test.local' },
  );
  assert.equal(firstStatus(raw), 401);
  assert.match(raw, /\r\nWWW-Authenticate: Bearer realm="crm-gateway"\r\n/i);
  assert.equal(gw.upstream.seen.length, before, 'nothing reached the upstream');
});

test('the gateway endpoints: a wrong password is a 401 page with the Cookie challenge; /auth/token without credentials asks for Basic', async () => {
  const user = uniq('chal-user');
  await addUser(gw.auth, user, 'right password here', ['staff']);
  const c = new SessionClient(gw, 'nocodb.test.local');
  const form = await c.openLogin();
  const before = gw.upstream.seen.length;
  const res = await c.postLogin({ csrf: form.csrf, rd: form.rd, username: user, password: 'wrong' });
  assert.equal(res.status, 401);
  assert.equal(res.headers['www-authenticate'], COOKIE);
  const tokenEndpoint = await gw.request({ method: 'POST', path: '/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded', ...JSON_ACCEPT }, body: 'grant_type=client_credentials' });
  assert.equal(tokenEndpoint.status, 401);
  assert.equal(tokenEndpoint.headers['www-authenticate'], 'Basic realm="crm-gateway"');
  assert.equal(gw.upstream.seen.length, before, 'nothing reached the upstream');
});

test('without API_SECRET_KEY, the AUTH_UNAVAILABLE refusals carry the challenge of the route', async (t) => {
  const bare = await startTestGateway(ROUTES);
  t.after(() => bare.close());
  for (const [host, expected] of [
    ['api.test.local', BEARER],
    ['nocodb.test.local', COOKIE],
    ['mixed.test.local', `${BEARER}, ${COOKIE}`],
  ] as const) {
    const res = await expectRefused(bare, { host, path: '/x', headers: JSON_ACCEPT }, 401, 'AUTH_UNAVAILABLE');
    assert.equal(res.headers['www-authenticate'], expected, host);
  }
});
