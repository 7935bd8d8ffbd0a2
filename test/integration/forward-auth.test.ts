import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpsRequest, testCertificate, testConfig, type RequestOptions, type TestResponse } from '../helpers/harness.js';
import { addUser, claimsFor, randomSecret, ringToken, startAuthGateway, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { startEchoUpstream } from '../../src/demo/echo-upstream.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { createAuthService } from '../../src/auth/service.js';
import { IdentityAssertions } from '../../src/auth/assertion/service.js';
import { startGateway } from '../../src/server/start.js';
import { CADDY, NGINX, requestFrom, startCaddy, startNginx, type Edge, type EdgeTarget } from '../helpers/forward-auth-edges.js';
import { HTML_ACCEPT, SessionClient } from '../helpers/session-client.js';

/**
 * Forward-auth mode (issue 14, item 6) with the real edges: nginx built from the shipped
 * nginx/forward-auth.conf and Caddy from docs/forward-auth.Caddyfile, each in front of a stand-in
 * app (an echo server recording what it received) and asking the real gateway about every
 * request. Only names, ports and certificate paths are changed in the shipped files.
 */
const PASSWORD = 'forward-auth-pw-0123';

const ROUTES = `
  - name: app-secure
    host: app.test.local
    path: /secure
    upstream: UPSTREAM
    auth: session
    roles: [staff]
    mfa: required
  - name: app-office
    host: app.test.local
    path: /office
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [10.0.0.0/8]
  - name: app-limited
    host: app.test.local
    path: /limited
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 1 }
  - name: app-admin
    host: app.test.local
    path: /admin
    upstream: UPSTREAM
    auth: session
    roles: [admin]
  - name: app
    host: app.test.local
    upstream: UPSTREAM
    auth: jwt-or-session
    roles: [staff]
`;
const FORWARD_AUTH = 'forwardAuth:\n  host: auth.test.local\n  edges: [127.0.0.1/32]\n';

test('nginx and Caddy are installed (Debian packages: apt-get install -y nginx caddy)', () => {
  assert.ok(NGINX, 'nginx not found on PATH');
  assert.ok(CADDY, 'caddy not found on PATH');
});

describe('forward-auth with real edges in front of a stand-in app', () => {
  let gw: AuthTestGateway;
  let ca: string;

  before(async () => {
    gw = await startAuthGateway({ routes: ROUTES, env: { TRUSTED_PROXIES: '127.0.0.1/32' }, extraYaml: FORWARD_AUTH });
    ca = gw.ca;
    await addUser(gw.auth, 'ana', PASSWORD, ['staff']);
  });
  after(async () => {
    await gw?.close();
  });

  const edges: [string, (t: EdgeTarget) => Promise<Edge>][] = [
    ['nginx', startNginx],
    ['Caddy', startCaddy],
  ];
  for (const [name, start] of edges) {
    describe(name, () => {
      let edge: Edge;
      const send = (o: RequestOptions): Promise<TestResponse> => httpsRequest(edge.port, ca, { host: 'app.test.local', ...o });
      const app = (): number => gw.upstream.seen.length;

      before(async () => {
        edge = await start({ gatewayPort: gw.port, appPort: gw.upstream.port, appHost: 'app.test.local', authHost: 'auth.test.local' });
      });
      after(() => edge?.stop());

      test('no credentials: an API client gets 401 with the code, a browser a redirect to sign in; the app receives nothing', async () => {
        const seen = app();
        const api = await send({ path: '/page?x=1', headers: { accept: 'application/json' } });
        assert.equal(api.status, 401, api.body);
        assert.equal(api.json<{ error: { code: string } }>().error.code, 'AUTH_REQUIRED');
        const browser = await send({ path: '/page?x=1', headers: { accept: HTML_ACCEPT } });
        assert.equal(browser.status, 302, browser.body);
        assert.match(String(browser.headers.location), /\/auth\/login\?rd=%2Fpage%3Fx%3D1$/);
        assert.equal(app(), seen, 'the app received nothing');
      });

      test('a browser signed in on the app host passes; the app gets the identity headers, not the forged ones', async () => {
        const client = new SessionClient({ request: (o) => send(o) }, 'app.test.local');
        await client.login('ana', PASSWORD);
        const seen = app();
        const res = await client.send({ path: '/page?x=1', html: true, headers: { 'x-gateway-user': 'admin', 'x-gateway-roles': 'admin', 'x-gateway-assertion': 'forged' } });
        assert.equal(res.status, 200, res.body);
        assert.equal(app(), seen + 1);
        const got = gw.upstream.seen.at(-1);
        assert.equal(got?.url, '/page?x=1');
        assert.equal(got?.headers["x-gateway-user"], "ana", JSON.stringify(got?.headers));
        assert.equal(got?.headers['x-gateway-roles'], 'staff');
        assert.equal(got?.headers['x-gateway-auth'], 'session');
        assert.notEqual(got?.headers['x-gateway-assertion'], 'forged');
        // The decision is on the audit trail as the request itself: route, user, outcome.
        const line = gw.log.accessEntries.findLast((e) => e.forwardAuth !== undefined && e.path === '/page');
        assert.equal(line?.route, 'app');
        assert.equal(line?.user, 'ana');
        assert.equal(line?.status, 200);
        assert.equal(line?.host, 'app.test.local');

        // A role the route does not give: 403 with the code, and nothing reaches the app.
        const before = app();
        const denied = await client.send({ path: '/admin/users' });
        assert.equal(denied.status, 403, denied.body);
        assert.equal(denied.json<{ error: { code: string } }>().error.code, 'ROLE_FORBIDDEN');
        assert.equal(app(), before, 'the app received nothing');
        const event = gw.log.securityEvents.findLast((e) => e.event === 'request.denied' && e.path === '/admin/users');
        assert.equal(event?.code, 'ROLE_FORBIDDEN');
        assert.equal(event?.user, 'ana');
      });

      test('an expired access cookie: the browser renews on the gateway (307 to /auth/renew, 307 back) and passes', async () => {
        const client = new SessionClient({ request: (o) => send(o) }, 'app.test.local');
        await client.login('ana', PASSWORD);
        const now = Math.floor(Date.now() / 1000);
        client.jar.cookies.set('__Host-crmgw_at', ringToken(gw.secret, claimsFor('ana', { typ: 'session', roles: ['staff'], iat: now - 4000, exp: now - 3000 })));
        const seen = app();
        const first = await client.send({ path: '/page?y=2', html: true });
        assert.equal(first.status, 307, first.body);
        // The check rotated nothing: a 2xx to the edge would have lost the new refresh cookie.
        assert.equal(first.headers['set-cookie'], undefined);
        const renew = new URL(String(first.headers.location), 'https://app.test.local');
        assert.equal(renew.pathname, '/auth/renew');
        assert.equal(renew.searchParams.get('rd'), '/page?y=2');
        assert.equal(app(), seen, 'the app received nothing yet');
        const renewed = await client.send({ path: `${renew.pathname}${renew.search}`, html: true });
        assert.equal(renewed.status, 307, renewed.body);
        assert.equal(renewed.headers.location, '/page?y=2');
        const set = (renewed.headers['set-cookie'] ?? []).join('\n');
        assert.match(set, /__Host-crmgw_at=[^;]+;/);
        assert.match(set, /__Host-crmgw_rt=[^;]+;/);
        const back = await client.send({ path: '/page?y=2', html: true });
        assert.equal(back.status, 200, back.body);
        assert.equal(app(), seen + 1);
        assert.equal(gw.upstream.seen.at(-1)?.headers['x-gateway-user'], 'ana');
      });

      test("a client's own X-Forwarded-Uri / X-Original-URI do not change what is checked", async () => {
        const seen = app();
        const res = await send({ path: '/admin/users', headers: { accept: 'application/json', 'x-forwarded-uri': '/page', 'x-original-uri': '/page', 'x-forwarded-host': 'app.test.local', 'x-forwarded-method': 'GET' } });
        assert.equal(res.status, 401, res.body);
        assert.equal(app(), seen, 'the app received nothing');
      });
    });
  }

  test('a check from a peer that is not an edge is refused, whatever it forwards; the app receives nothing', async () => {
    const client = new SessionClient(gw, 'app.test.local');
    await client.login('ana', PASSWORD);
    const seen = gw.upstream.seen.length;
    const res = await requestFrom('127.0.0.2', gw.port, ca, {
      path: '/auth/verify',
      headers: { accept: 'application/json', cookie: client.jar.header(), 'x-forwarded-host': 'app.test.local', 'x-forwarded-uri': '/page', 'x-forwarded-method': 'GET', 'x-forwarded-for': '127.0.0.1' },
    });
    assert.equal(res.status, 403, res.body);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'FORWARD_AUTH_UNTRUSTED');
    assert.equal(res.headers['x-gateway-user'], undefined, 'no identity told');
    assert.equal(gw.upstream.seen.length, seen);
    const event = gw.log.securityEvents.findLast((e) => e.event === 'auth.forward_auth_untrusted');
    assert.equal(event?.peerIp, '127.0.0.2');
  });

  /** A check as an edge sends it (from 127.0.0.1), about `uri` on app.test.local from client `ip`. */
  const check = (uri: string, ip: string, kind: 'caddy' | 'nginx' = 'caddy'): Promise<TestResponse> =>
    requestFrom('127.0.0.1', gw.port, ca, {
      path: '/auth/verify',
      headers: { accept: 'application/json', 'x-forwarded-host': 'app.test.local', 'x-forwarded-for': ip, ...(kind === 'caddy' ? { 'x-forwarded-uri': uri, 'x-forwarded-method': 'GET' } : { 'x-original-uri': uri }) },
    });

  test("the route's IP allowlist applies to the client the edge names in X-Forwarded-For, not to the edge", async () => {
    const inside = await check('/office/a', '10.1.2.3');
    assert.equal(inside.status, 200, inside.body);
    assert.equal(inside.headers['x-gateway-user'], undefined, 'auth: none names nobody');
    const outside = await check('/office/a', '192.0.2.7');
    assert.equal(outside.status, 403, outside.body);
    assert.equal(outside.json<{ error: { code: string } }>().error.code, 'IP_DENIED');
    const line = gw.log.accessEntries.findLast((e) => e.route === 'app-office' && e.status === 403);
    assert.equal(line?.clientIp, '192.0.2.7');
    assert.deepEqual(line?.forwardAuth, { edge: '127.0.0.1', method: 'GET' });
  });

  test('the route\'s rate limit counts checks; nginx gets 403 with the real status and code in headers', async () => {
    assert.equal((await check('/limited', '198.51.100.9')).status, 200);
    const over = await check('/limited', '198.51.100.9');
    assert.equal(over.status, 429, over.body);
    assert.equal(over.json<{ error: { code: string } }>().error.code, 'RATE_LIMITED');
    const nginx = await check('/limited', '198.51.100.9', 'nginx');
    assert.equal(nginx.status, 403, nginx.body);
    assert.equal(nginx.headers['x-gateway-status'], '429');
    assert.equal(nginx.headers['x-gateway-error'], 'RATE_LIMITED');
    const unknown = await requestFrom('127.0.0.1', gw.port, ca, { path: '/auth/verify', headers: { accept: 'application/json', 'x-forwarded-host': 'elsewhere.test.local', 'x-original-uri': '/' } });
    assert.equal(unknown.status, 403, unknown.body);
    assert.equal(unknown.headers['x-gateway-error'], 'ROUTE_NOT_FOUND');
  });

  test('a websocket handshake (Sec-WebSocket-Key, which edges pass) meets the same-origin check a session upgrade does', async () => {
    const client = new SessionClient(gw, 'app.test.local');
    await client.login('ana', PASSWORD);
    const ws = (origin: string): Promise<TestResponse> =>
      requestFrom('127.0.0.1', gw.port, ca, {
        path: '/auth/verify',
        headers: { 'x-forwarded-host': 'app.test.local', 'x-forwarded-uri': '/socket', 'x-forwarded-method': 'GET', cookie: client.jar.header(), origin, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
      });
    const foreign = await ws('https://evil.test.local');
    assert.equal(foreign.status, 403, foreign.body);
    assert.equal(foreign.json<{ error: { code: string } }>().error.code, 'CSRF_REJECTED');
    assert.equal((await ws('https://app.test.local')).status, 200);
  });

  test('a route with `mfa: required` refuses a password-only session (the authorize step runs in the check)', async () => {
    const client = new SessionClient(gw, 'app.test.local');
    await client.login('ana', PASSWORD);
    const res = await requestFrom('127.0.0.1', gw.port, ca, {
      path: '/auth/verify',
      headers: { accept: 'application/json', 'x-forwarded-host': 'app.test.local', 'x-forwarded-uri': '/secure/x', 'x-forwarded-method': 'GET', cookie: client.jar.header() },
    });
    assert.equal(res.status, 403, res.body);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'MFA_REQUIRED');
    assert.equal(res.headers['x-gateway-user'], undefined);
  });

  test('a check from an edge that names no original request is refused 400', async () => {
    const res = await requestFrom('127.0.0.1', gw.port, ca, { path: '/auth/verify', headers: { accept: 'application/json', 'x-forwarded-host': 'app.test.local' } });
    assert.equal(res.status, 400, res.body);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'FORWARD_AUTH_BAD_REQUEST');
    const both = await requestFrom('127.0.0.1', gw.port, ca, { path: '/auth/verify', headers: { accept: 'application/json', 'x-forwarded-host': 'app.test.local', 'x-forwarded-uri': '/page', 'x-original-uri': '/admin' } });
    assert.equal(both.json<{ error: { code: string } }>().error.code, 'FORWARD_AUTH_BAD_REQUEST');
  });
});

describe('forward-auth with the signed identity assertion (issue 14, item 5)', () => {
  test('the app behind each edge gets X-Gateway-Assertion for the checked route, verifiable with the JWKS', async (t) => {
    const cert = await testCertificate();
    const app = await startEchoUpstream('fa-app');
    t.after(() => app.close());
    const dataDir = mkdtempSync(join(tmpdir(), 'crm-gw-fa-assert-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const config = testConfig(ROUTES, app.url, cert, { API_SECRET_KEY: randomSecret(), DATA_DIR: dataDir, TRUSTED_PROXIES: '127.0.0.1/32' }, FORWARD_AUTH);
    const log = createMemoryLogger();
    const auth = await createAuthService(config, { log });
    assert.ok(auth);
    const assertions = IdentityAssertions.open(config, log);
    const running = await startGateway(config, { log, auth, assertions });
    t.after(async () => {
      await running.shutdown();
      assertions.close();
      await auth.close();
    });
    await addUser(auth, 'ana', PASSWORD, ['staff']);
    const ca = readFileSync(cert.cert, 'utf8');
    const jwks = JSON.parse(assertions.jwks()) as { keys: (JsonWebKey & { kid: string })[] };
    for (const start of [startNginx, startCaddy]) {
      const edge = await start({ gatewayPort: running.ports.https, appPort: app.port, appHost: 'app.test.local', authHost: 'auth.test.local' });
      try {
        const client = new SessionClient({ request: (o) => httpsRequest(edge.port, ca, { host: 'app.test.local', ...o }) }, 'app.test.local');
        await client.login('ana', PASSWORD);
        const res = await client.send({ path: '/page', html: true, headers: { 'x-gateway-assertion': 'forged' } });
        assert.equal(res.status, 200, `${res.body} ${JSON.stringify(log.accessEntries.at(-1))} ${JSON.stringify(log.appMessages.filter((m) => m.level === 'error'))}`);
        const token = String(app.seen.at(-1)?.headers['x-gateway-assertion']);
        const [h = '', p = '', sig = ''] = token.split('.');
        const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg: string; kid: string };
        const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { sub: string; aud: string };
        assert.equal(header.alg, 'ES256');
        const jwk = jwks.keys.find((k) => k.kid === header.kid);
        assert.ok(jwk, 'signed with a published key');
        assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), { key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url')), 'the signature verifies');
        assert.equal(claims.sub, 'ana');
        assert.equal(claims.aud, 'app', 'the audience is the route checked');
      } finally {
        edge.stop();
      }
    }
  });
});
