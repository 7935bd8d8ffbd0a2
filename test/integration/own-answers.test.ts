import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { addUser, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { SessionClient } from '../helpers/session-client.js';

// Issue 13 item 2: every answer the gateway gives itself goes through the request's one reply,
// so each carries the same security headers and request id, and the access line records the
// status the client saw. Before, /auth/token, the sign-in redirects and the ticket endpoint
// wrote their own headers and went without the security set that error pages had.

const VERIFY_TOKEN = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const ROUTES = `
  - name: webhook
    host: api.test.local
    path: /webhook/whatsapp
    upstream: UPSTREAM
    auth: whatsapp
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    cors: { origins: ["https://app.test.local"] }
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;
const PASSWORD = 'a long enough password for staff';

let gw: AuthTestGateway;

before(async () => {
  gw = await startAuthGateway({ routes: ROUTES, env: { WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN, WHATSAPP_APP_SECRET: randomBytes(24).toString('hex'), WHATSAPP_QUEUE_KEY: randomBytes(32).toString('hex') } });
});

after(async () => {
  await gw?.close();
});

/** The headers every own answer over HTTPS carries, whatever it is. */
function assertOwnHeaders(what: string, headers: IncomingHttpHeaders, tls = true): void {
  assert.match(String(headers['x-request-id']), /^[0-9a-f-]{36}$/, `${what}: request id`);
  assert.equal(headers['cache-control'], 'no-store', `${what}: no-store`);
  assert.equal(headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  assert.ok(headers['content-security-policy']?.includes("default-src 'none'"), `${what}: a CSP of its own`);
  assert.equal(headers['cross-origin-opener-policy'], 'same-origin', `${what}: COOP`);
  assert.ok(headers['x-frame-options'], `${what}: frame options`);
  if (tls) assert.match(String(headers['strict-transport-security']), /^max-age=\d+/, `${what}: HSTS over TLS`);
  else assert.equal(headers['strict-transport-security'], undefined, `${what}: no HSTS over plain HTTP`);
}

/** The access line of a request, by the id its answer carried. */
function accessLine(id: unknown): Record<string, unknown> {
  const line = gw.log.accessEntries.find((e) => e.requestId === id);
  assert.ok(line, `an access line for ${String(id)}`);
  return line;
}

test('every own answer carries the security headers, and its access line the status sent', async () => {
  const seenBefore = gw.upstream.seen.length;
  const answers: [string, { status: number; headers: IncomingHttpHeaders }, number, string][] = [];
  const add = (what: string, res: { status: number; headers: IncomingHttpHeaders }, status: number, outcome: string): void => {
    answers.push([what, res, status, outcome]);
  };

  add('refusal (no route)', await gw.request({ path: '/x', host: 'nowhere.test.local', servername: false }), 404, 'denied');
  add('refusal (no token)', await gw.request({ path: '/data', host: 'api.test.local' }), 401, 'denied');
  add(
    'CORS preflight',
    await gw.request({ method: 'OPTIONS', path: '/data', host: 'api.test.local', headers: { Origin: 'https://app.test.local', 'Access-Control-Request-Method': 'POST' } }),
    204,
    'answered',
  );
  add('session redirect to sign-in', await gw.request({ path: '/', host: 'nocodb.test.local', headers: { Accept: 'text/html' } }), 302, 'answered');

  const client = new SessionClient(gw, 'nocodb.test.local');
  const { res: page } = await client.openLogin();
  add('sign-in page', page, 200, 'answered');
  const user = uniq('staff');
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const form = await client.openLogin();
  add('sign-in failure page', await client.postLogin({ csrf: form.csrf, rd: form.rd, username: user, password: 'wrong password' }), 401, 'denied');
  add('sign-in redirect', await client.login(user, PASSWORD), 303, 'answered');

  const secret = 'client-secret-for-the-own-answers-test';
  const clientName = uniq('client');
  await gw.auth.store.addClient({ name: clientName, secretHash: createHash('sha256').update(secret).digest('hex'), roles: ['api'], disabled: false, createdAt: new Date() });
  const token = await gw.request({
    method: 'POST',
    path: '/auth/token',
    host: 'api.test.local',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientName}:${secret}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  add('token endpoint', token, 200, 'answered');
  const accessToken = (JSON.parse(token.body) as { access_token: string }).access_token;
  add('websocket ticket', await gw.request({ method: 'POST', path: '/auth/ws-ticket', host: 'api.test.local', headers: { authorization: `Bearer ${accessToken}` } }), 200, 'answered');
  const hs = await gw.request({ path: `/webhook/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=77`, host: 'api.test.local' });
  add('webhook handshake', hs, 200, 'answered');

  for (const [what, res, status, outcome] of answers) {
    assert.equal(res.status, status, `${what}: status`);
    assertOwnHeaders(what, res.headers);
    const line = accessLine(res.headers['x-request-id']);
    assert.equal(line.status, status, `${what}: the access line's status is the one sent`);
    assert.equal(line.outcome, outcome, `${what}: outcome`);
  }
  // The pages keep their own policy over the defaults: the form posts to itself.
  assert.match(String(page.headers['content-security-policy']), /form-action 'self'/);
  assert.equal(page.headers['referrer-policy'], 'same-origin');
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.equal(gw.upstream.seen.length, seenBefore, 'none of these reached the upstream');
});

test("the plain-HTTP listener's 308 goes through the same reply (no HSTS over HTTP)", async () => {
  const port = gw.running.ports.http;
  assert.ok(port, 'the plain-HTTP listener is open');
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/a?b=1', headers: { host: 'api.test.local' } }, resolve).on('error', reject);
  });
  res.resume();
  assert.equal(res.statusCode, 308);
  assert.match(String(res.headers.location), /^https:\/\/api\.test\.local(:\d+)?\/a\?b=1$/);
  assertOwnHeaders('308', res.headers, false);
  const line = accessLine(res.headers['x-request-id']);
  assert.equal(line.status, 308);
  assert.equal(line.listener, 'http');
});
