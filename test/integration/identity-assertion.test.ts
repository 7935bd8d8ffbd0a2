import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { createMemoryLogger, type MemoryLogger } from '../../src/log/logger.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { IdentityAssertions } from '../../src/auth/assertion/service.js';
import { JWKS_PATH } from '../../src/auth/assertion/routes.js';
import { readKeyFile, rotateKeyFile, signingKey } from '../../src/auth/assertion/keys.js';
import { addClient, addUser, claimsFor, randomSecret, ringToken, startAuthGateway, uniq } from '../helpers/auth-gateway.js';
import { ACCESS_COOKIE } from '../../src/auth/cookies.js';
import { httpsRequest, testCertificate, testConfig, type RequestOptions, type TestResponse } from '../helpers/harness.js';
import { headersOf, startRealCrmApi, type RealCrmApi } from '../helpers/real-crm-api.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 14, item 5: the signed identity assertion, checked by the real FastAPI app (Debian's
 * fastapi, uvicorn and PyJWT) with docs/applications.md's lines (test/helpers/apps/assertion_api.py),
 * which fetch the keys from the gateway's JWKS. Every refusal here is the app's own.
 */

const ISSUER = 'https://test.local';
const HOST = 'api.test.local';

function routes(app: RealCrmApi): string {
  return `
  - name: crm-other
    host: ${HOST}
    path: /other
    stripPrefix: true
    upstream: ${app.url}
    auth: jwt
    roles: [api]
  - name: crm-api
    host: ${HOST}
    upstream: ${app.url}
    auth: jwt-or-session
    roles: [api, staff]
`;
}

interface Bed {
  app: RealCrmApi;
  running: RunningGateway;
  auth: AuthService;
  assertions: IdentityAssertions;
  log: MemoryLogger;
  dataDir: string;
  secret: string;
  adminPort: number;
  keyFile: string;
  request(opts: RequestOptions): Promise<TestResponse>;
  /** A fresh bearer token (its own jti) for an API client with role `api`. */
  token(sub: string): string;
  close(): Promise<void>;
}

async function startBed(): Promise<Bed> {
  const adminPort = await freePort();
  const app = await startRealCrmApi({
    app: 'assertion_api:app',
    env: { GATEWAY_JWKS_URL: `http://127.0.0.1:${adminPort}${JWKS_PATH}`, GATEWAY_ISSUER: ISSUER, GATEWAY_ROUTE: 'crm-api' },
  });
  const cert = await testCertificate();
  const dataDir = mkdtempSync(join(tmpdir(), 'crm-gw-assert-'));
  const secret = randomSecret();
  const config = testConfig(routes(app), app.url, cert, { API_SECRET_KEY: secret, DATA_DIR: dataDir, ADMIN_PORT: String(adminPort) });
  const log = createMemoryLogger();
  const auth = await createAuthService(config, { log });
  assert.ok(auth);
  // As src/main.ts builds it.
  const assertions = IdentityAssertions.open(config, log);
  const running = await startGateway(config, { log, auth, assertions });
  const ca = readFileSync(cert.cert, 'utf8');
  const port = running.ports.https;
  return {
    app,
    running,
    auth,
    assertions,
    log,
    dataDir,
    secret,
    adminPort,
    keyFile: assertions.file,
    request: (opts) => httpsRequest(port, ca, { host: `${HOST}:${port}`, servername: HOST, ...opts }),
    token: (sub) => ringToken(secret, claimsFor(sub)),
    close: async () => {
      await running.shutdown();
      assertions.close();
      await auth.close();
      await app.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Straight to the app, as anyone on the internal network could (never through the gateway). */
async function direct(app: RealCrmApi, path: string, assertion?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${app.url}${path}`, { headers: assertion === undefined ? {} : { 'x-gateway-assertion': assertion } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The assertions the app received with its last request. */
async function lastAssertions(app: RealCrmApi): Promise<string[]> {
  const seen = await app.requests();
  const last = seen.at(-1);
  assert.ok(last, 'the app received a request');
  return headersOf(last, 'x-gateway-assertion');
}

function decode(token: string): { header: jwt.JwtHeader; payload: jwt.JwtPayload } {
  const d = jwt.decode(token, { complete: true });
  assert.ok(d && typeof d.payload === 'object');
  return { header: d.header, payload: d.payload };
}

describe('identity assertion, verified by the real FastAPI app', () => {
  let bed: Bed;
  let client: string;
  before(async () => {
    bed = await startBed();
    client = uniq('assert-client');
    await addClient(bed.auth, client, ['api']);
  });
  after(async () => {
    await bed?.close();
  });

  test('the key file is created once in DATA_DIR, mode 0600', () => {
    assert.equal(bed.keyFile, join(bed.dataDir, 'assertion-keys.json'));
    assert.equal(statSync(bed.keyFile).mode & 0o777, 0o600);
    assert.ok(bed.log.securityEvents.some((e) => e.event === 'assertion.key_created'));
  });

  test('a signed-in request passes: the app sees who is calling, from the assertion alone', async () => {
    const res = await bed.request({ path: '/v1/me', headers: { authorization: `Bearer ${bed.token(`client:${client}`)}` } });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), { user: `client:${client}`, roles: ['api'], amr: null, sid: null });
    const [assertion, ...more] = await lastAssertions(bed.app);
    assert.equal(more.length, 0, 'one assertion header');
    const { header, payload } = decode(assertion as string);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, bed.assertions.signingKid());
    assert.equal(payload.iss, ISSUER);
    assert.equal(payload.aud, 'crm-api');
    assert.equal(payload.sub, `client:${client}`);
    assert.equal((payload.exp as number) - (payload.iat as number), 60);
    assert.match(String(payload.jti), /^[A-Za-z0-9_-]{16}$/);
  });

  test('a staff session: the app also sees the factors proved at sign-in (amr) and the session (sid)', async () => {
    const user = uniq('assert-staff');
    await addUser(bed.auth, user, 'correct horse battery staple', ['staff']);
    const sid = randomBytes(16).toString('base64url');
    const { token } = bed.auth.tokens.issue({ sub: user, roles: ['staff'], ttlMs: 15 * 60_000, typ: 'session', sid, amr: ['password', 'totp'], authTime: Date.now() / 1000 });
    const res = await bed.request({ path: '/v1/me', headers: { cookie: `${ACCESS_COOKIE}=${token}` } });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), { user, roles: ['staff'], amr: ['password', 'totp'], sid });
    const [assertion] = await lastAssertions(bed.app);
    assert.equal(decode(assertion as string).payload.auth, 'session');
  });

  test('the JWKS is answered by the gateway on the routed host and the admin listener, never forwarded', async () => {
    const before = (await bed.app.requests()).length;
    const pub = await bed.request({ path: JWKS_PATH });
    assert.equal(pub.status, 200);
    assert.equal(pub.headers['content-type'], 'application/jwk-set+json');
    assert.equal(pub.headers['cache-control'], 'public, max-age=30');
    const doc = pub.json<{ keys: { kid: string; kty: string; crv: string; alg: string; use: string; d?: string }[] }>();
    assert.deepEqual(doc.keys.map((k) => [k.kty, k.crv, k.alg, k.use, k.kid]), [['EC', 'P-256', 'ES256', 'sig', bed.assertions.signingKid()]]);
    assert.ok(doc.keys.every((k) => k.d === undefined), 'no private part');
    const admin = await fetch(`http://127.0.0.1:${bed.adminPort}${JWKS_PATH}`);
    assert.equal(admin.status, 200);
    assert.deepEqual(await admin.json(), doc);
    const post = await bed.request({ method: 'POST', path: JWKS_PATH, body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(post.status, 405);
    assert.equal(post.json<{ error: { code: string } }>().error.code, 'METHOD_NOT_ALLOWED');
    assert.ok(bed.log.securityEvents.some((e) => e.event === 'request.denied' && e.code === 'METHOD_NOT_ALLOWED'), 'the refusal is a security event');
    // Not even a websocket handshake on it goes upstream.
    const upgrade = await bed.request({ path: JWKS_PATH, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), authorization: `Bearer ${bed.token(`client:${client}`)}` } });
    assert.equal(upgrade.status, 400);
    assert.match(upgrade.body, /UPGRADE_NOT_ALLOWED/);
    assert.equal((await bed.app.requests()).length, before, 'the app received nothing');
  });

  test('a client cannot inject the header through the gateway: the app receives only the gateway\'s', async () => {
    const victim = uniq('assert-victim');
    await addClient(bed.auth, victim, ['api']);
    await bed.request({ path: '/v1/me', headers: { authorization: `Bearer ${bed.token(`client:${victim}`)}` } });
    const [stolen] = await lastAssertions(bed.app);
    const res = await bed.request({
      path: '/v1/me',
      headers: { authorization: `Bearer ${bed.token(`client:${client}`)}`, 'x-gateway-assertion': stolen as string, x_gateway_assertion: stolen as string },
    });
    assert.equal(res.status, 200);
    assert.equal(res.json<{ user: string }>().user, `client:${client}`, 'the caller, not the victim');
    const got = await lastAssertions(bed.app);
    assert.equal(got.length, 1);
    assert.notEqual(got[0], stolen);
    assert.equal(decode(got[0] as string).payload.sub, `client:${client}`);
  });

  test('without a valid token nothing reaches the app, assertion or not', async () => {
    const before = (await bed.app.requests()).length;
    const res = await bed.request({ path: '/v1/me', headers: { 'x-gateway-assertion': 'forged' } });
    assert.equal(res.status, 401);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'AUTH_REQUIRED');
    assert.equal((await bed.app.requests()).length, before);
  });

  test('the app refuses requests sent around the gateway: no header, garbage, forged, unsigned, expired', async () => {
    assert.equal((await direct(bed.app, '/v1/me')).status, 401, 'no header');
    assert.equal((await direct(bed.app, '/v1/me', 'not-a-jwt')).status, 401, 'garbage');
    const kid = bed.assertions.signingKid() as string;
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: ISSUER, aud: 'crm-api', sub: 'admin', roles: ['admin'], iat: now, exp: now + 60, jti: randomBytes(12).toString('base64url') };
    // Another key under the real kid: the signature fails.
    const { privateKey: other } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = jwt.sign(claims, other, { algorithm: 'ES256', keyid: kid });
    const refusedForged = await direct(bed.app, '/v1/me', forged);
    assert.equal(refusedForged.status, 401);
    assert.match(String(refusedForged.body.detail), /InvalidSignatureError/);
    // A kid the gateway never published.
    const unknown = jwt.sign(claims, other, { algorithm: 'ES256', keyid: 'not-a-gateway-key' });
    assert.equal((await direct(bed.app, '/v1/me', unknown)).status, 401, 'unknown kid');
    // alg none, with the real kid.
    const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    assert.equal((await direct(bed.app, '/v1/me', `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(claims)}.`)).status, 401, 'alg none');
    // The real key, but expired.
    const real = signingKey(readKeyFile(bed.keyFile), Date.now());
    assert.ok(real);
    const expired = jwt.sign({ ...claims, iat: now - 120, exp: now - 60 }, real.privateKey, { algorithm: 'ES256', keyid: real.kid });
    const refusedExpired = await direct(bed.app, '/v1/me', expired);
    assert.equal(refusedExpired.status, 401);
    assert.match(String(refusedExpired.body.detail), /ExpiredSignatureError/);
    // The same key and claims, unexpired: the only difference was the time.
    assert.equal((await direct(bed.app, '/v1/me', jwt.sign(claims, real.privateKey, { algorithm: 'ES256', keyid: real.kid }))).status, 200);
  });

  test('an assertion for another route is refused by the app, through the gateway and replayed', async () => {
    // Route crm-other forwards to the same app: the assertion is for crm-other, the app is crm-api.
    const through = await bed.request({ path: '/other/v1/me', headers: { authorization: `Bearer ${bed.token(`client:${client}`)}` } });
    assert.equal(through.status, 401);
    assert.match(through.json<{ detail: string }>().detail, /InvalidAudienceError/);
    const [forOther] = await lastAssertions(bed.app);
    assert.equal(decode(forOther as string).payload.aud, 'crm-other');
    const replayed = await direct(bed.app, '/v1/me', forOther);
    assert.equal(replayed.status, 401);
    assert.match(String(replayed.body.detail), /InvalidAudienceError/);
  });

  test('key rotation: the JWKS carries both kids, old assertions verify until they expire, new ones use the new key', async () => {
    await bed.request({ path: '/v1/me', headers: { authorization: `Bearer ${bed.token(`client:${client}`)}` } });
    const [old] = await lastAssertions(bed.app);
    const oldKid = decode(old as string).header.kid;
    const r = rotateKeyFile(bed.keyFile, { activationDelayMs: 0 });
    assert.deepEqual(r.retiring.map((k) => k.kid), [oldKid]);
    assert.ok(r.retiring[0] && r.retiring[0].retireAfter.getTime() - r.activeFrom.getTime() >= 120_000, 'published past every assertion it signed');
    // Picked up by the running gateway without a restart (file watch, else the 30 s timer).
    await waitFor(() => bed.assertions.signingKid() === r.newKid, 'the gateway reloaded the key file', 35_000);
    const doc = (await bed.request({ path: JWKS_PATH })).json<{ keys: { kid: string }[] }>();
    assert.deepEqual(doc.keys.map((k) => k.kid).sort(), [oldKid, r.newKid].sort());
    // A new token: a fresh assertion, signed with the new key, which the app finds by refetching the JWKS.
    const res = await bed.request({ path: '/v1/me', headers: { authorization: `Bearer ${bed.token(`client:${client}`)}` } });
    assert.equal(res.status, 200, res.body);
    const [fresh] = await lastAssertions(bed.app);
    assert.equal(decode(fresh as string).header.kid, r.newKid);
    // The assertion signed before the rotation still verifies at the app until its exp.
    assert.equal((await direct(bed.app, '/v1/me', old)).status, 200);
    assert.ok(bed.log.securityEvents.some((e) => e.event === 'assertion.keys_loaded'));
  });
});

test('a route that asks for an assertion the gateway cannot sign refuses (503 ASSERTION_UNAVAILABLE), nothing forwarded', async () => {
  const gw = await startAuthGateway({ routes: `
  - name: strict
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    identityAssertion: true
` });
  try {
    const name = uniq('strict-client');
    await addClient(gw.auth, name, ['api']);
    const res = await gw.request({ host: `api.test.local:${gw.port}`, servername: 'api.test.local', path: '/x', headers: { authorization: `Bearer ${ringToken(gw.secret, claimsFor(`client:${name}`))}` } });
    assert.equal(res.status, 503);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'ASSERTION_UNAVAILABLE');
    assert.equal(gw.upstream.seen.length, 0, 'nothing reached the upstream');
    assert.ok(gw.log.accessEntries.some((a) => a.code === 'ASSERTION_UNAVAILABLE' && a.status === 503), 'the refusal is recorded');
  } finally {
    await gw.close();
  }
});
