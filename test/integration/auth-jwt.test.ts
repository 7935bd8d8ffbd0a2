import { after, before, test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { generateKeyPairSync, randomBytes, sign as rsaSign } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { kidOf } from '../../src/auth/keyring.js';
import { ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE } from '../../src/auth/cookies.js';
import type { SeenRequest } from '../../src/demo/echo-upstream.js';
import { addClient, b64url, claimsFor, expectRefused, handToken, randomSecret, ringToken, startAuthGateway, uniq, waitFor, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { startReviewedAuthGateway } from '../helpers/reviewed-auth-gateway.js';
import { startTestGateway } from '../helpers/harness.js';

const ROUTES = `
  - name: api-admin
    host: api.test.local
    path: /admin
    upstream: UPSTREAM
    auth: jwt
    roles: [admin]
  - name: api-pass
    host: api.test.local
    path: /pass
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    passCredentials: true
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api, admin]
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: public
    host: public.test.local
    upstream: UPSTREAM
    auth: none
`;
/** JWT_MAX_TTL of these gateways. */
const MAX_TTL_S = 3600;
const ENV = { JWT_MAX_TTL: '1h' };

let gw: AuthTestGateway;
let client: string;
let sub: string;

before(async () => {
  gw = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV });
  client = uniq('jwt-client');
  sub = `client:${client}`;
  await addClient(gw.auth, client, ['api']);
});

after(async () => {
  await gw?.close();
});

const bearer = (token: string, extra: Record<string, string> = {}): Record<string, string> => ({ authorization: `Bearer ${token}`, accept: 'application/json', ...extra });

/** A token exactly like the gateway's own, with overrides (undefined removes a claim). */
function token(overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  return ringToken(gw.secret, claimsFor(sub, overrides), header);
}

function lastSeen(g: { upstream: { seen: SeenRequest[] } }): SeenRequest {
  const s = g.upstream.seen.at(-1);
  assert.ok(s, 'the upstream got a request');
  return s;
}

async function expectForwarded(g: AuthTestGateway, req: Parameters<AuthTestGateway['request']>[0]): Promise<SeenRequest> {
  const before = g.upstream.seen.length;
  const res = await g.request(req);
  assert.equal(res.status, 200, `${req.path}: ${res.body.slice(0, 300)}`);
  assert.equal(g.upstream.seen.length, before + 1, 'exactly one request reached the upstream');
  return lastSeen(g);
}

test('an API client without credentials gets 401 JSON AUTH_REQUIRED with WWW-Authenticate: Bearer', async () => {
  const res = await expectRefused(gw, { path: '/v1/contacts', headers: { accept: 'application/json' } }, 401, 'AUTH_REQUIRED');
  assert.match(String(res.headers['www-authenticate']), /^Bearer\b/);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json<{ error: { code: string; message: string; requestId: string } }>();
  assert.equal(body.error.requestId, res.headers['x-request-id']);
  // No detail leaks to the client.
  assert.doesNotMatch(res.body, /route api|no credentials/);
});

test('a valid token reaches the upstream with x-gateway-user/roles/token-id; Authorization is stripped', async () => {
  const claims = claimsFor(sub, { roles: ['api', 'reports'] });
  const seen = await expectForwarded(gw, { path: '/v1/contacts', headers: bearer(ringToken(gw.secret, claims)) });
  assert.equal(seen.headers['x-gateway-user'], sub);
  assert.equal(seen.headers['x-gateway-roles'], 'api,reports');
  assert.equal(seen.headers['x-gateway-token-id'], claims.jti);
  assert.equal(seen.headers['x-gateway-auth'], 'jwt');
  assert.equal(seen.headers.authorization, undefined, 'the gateway bearer token is not for the upstream');
});

test('client-sent x-gateway-* and look-alike identity headers never reach the upstream', async () => {
  const spoof = {
    'x-gateway-user': 'admin',
    'x-gateway-roles': 'admin',
    'x-gateway-token-id': 'forged',
    'x-gateway-auth': 'session',
    'X-Gateway-Extra': 'x',
    X_Gateway_User: 'admin',
    'x-remote-user': 'admin',
    'x-forwarded-user': 'admin',
    'remote-user': 'admin',
  };
  const seen = await expectForwarded(gw, { path: '/v1/x', headers: bearer(token(), spoof) });
  assert.equal(seen.headers['x-gateway-user'], sub);
  assert.equal(seen.headers['x-gateway-roles'], 'api');
  assert.equal(seen.headers['x-gateway-auth'], 'jwt');
  for (const h of ['x-gateway-extra', 'x-remote-user', 'x-forwarded-user', 'remote-user']) assert.equal(seen.headers[h], undefined, h);
  const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.equal(names.filter((n) => n === 'x-gateway-user').length, 1);
  assert.ok(!names.some((n) => n.includes('_')), 'no underscore twins');

  // On a public route there is no principal: no identity header at all.
  const pub = await expectForwarded(gw, { path: '/p', host: 'public.test.local', headers: spoof });
  for (const h of Object.keys(spoof)) assert.equal(pub.headers[h.toLowerCase()], undefined, h);
});

test('passCredentials: true forwards the client Authorization header to that route only', async () => {
  const t = token();
  const seen = await expectForwarded(gw, { path: '/pass/x', headers: bearer(t) });
  assert.equal(seen.headers.authorization, `Bearer ${t}`);
  assert.equal(seen.headers['x-gateway-user'], sub);
});

test('gateway cookies never reach any upstream while other cookies do', async () => {
  const cookie = `${ACCESS_COOKIE}=a.b.c; nocodb_session=n1; ${REFRESH_COOKIE}=r; ${CSRF_COOKIE}=c; metabase.SESSION=m1`;
  const pub = await expectForwarded(gw, { path: '/p', host: 'public.test.local', headers: { cookie } });
  assert.equal(pub.headers.cookie, 'nocodb_session=n1; metabase.SESSION=m1');
  const only = await expectForwarded(gw, { path: '/p', host: 'public.test.local', headers: { cookie: `${ACCESS_COOKIE}=x` } });
  assert.equal(only.headers.cookie, undefined);
  const api = await expectForwarded(gw, { path: '/v1/x', headers: bearer(token(), { cookie: 'app=1' }) });
  assert.equal(api.headers.cookie, 'app=1');
});

test('a role the route does not allow is 403 ROLE_FORBIDDEN', async () => {
  await expectRefused(gw, { path: '/admin/users', headers: bearer(token()) }, 403, 'ROLE_FORBIDDEN');
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ roles: [] })) }, 403, 'ROLE_FORBIDDEN');
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ roles: undefined })) }, 403, 'ROLE_FORBIDDEN');
});

test('alg none / None / NONE (unsigned) tokens are refused', async () => {
  for (const alg of ['none', 'None', 'NONE']) {
    const unsigned = handToken({ alg, typ: 'JWT', kid: kidOf(gw.secret) }, claimsFor(sub), undefined);
    // Some libraries accept a trailing dot, others a junk signature: both are tried.
    await expectRefused(gw, { path: '/v1/x', headers: { authorization: `Bearer ${unsigned}`, accept: 'application/json' } }, 401, 'AUTH_INVALID');
    await expectRefused(gw, { path: '/v1/x', headers: bearer(`${unsigned}AAAA`) }, 401, 'AUTH_INVALID');
    await expectRefused(gw, { path: '/v1/x', headers: bearer(handToken({ alg }, claimsFor(sub), gw.secret)) }, 401, 'AUTH_INVALID');
  }
});

test('HS256 signed with the RSA public key PEM as the HMAC secret (key confusion) is refused', async () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  for (const pem of [publicKey.export({ type: 'spki', format: 'pem' }), publicKey.export({ type: 'pkcs1', format: 'pem' })]) {
    const forged = handToken({ alg: 'HS256', typ: 'JWT', kid: kidOf(gw.secret) }, claimsFor(sub), pem);
    await expectRefused(gw, { path: '/v1/x', headers: bearer(forged) }, 401, 'AUTH_INVALID');
  }
});

test('an RS256 token (with or without an embedded jwk) is refused', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  for (const header of [{ alg: 'RS256', typ: 'JWT', kid: kidOf(gw.secret) }, { alg: 'RS256', typ: 'JWT', jwk }]) {
    const input = `${b64url(header)}.${b64url(claimsFor(sub))}`;
    const rs = `${input}.${rsaSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
    await expectRefused(gw, { path: '/v1/x', headers: bearer(rs) }, 401, 'AUTH_INVALID');
  }
});

test('a wrong signature, and a token signed by a key not in the ring, are refused', async () => {
  const good = token();
  const [h, p, s] = good.split('.') as [string, string, string];
  const flipped = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`;
  await expectRefused(gw, { path: '/v1/x', headers: bearer(flipped) }, 401, 'AUTH_INVALID');
  // Claims swapped under a valid signature.
  const tampered = `${h}.${b64url(claimsFor(sub, { roles: ['admin'] }))}.${s}`;
  await expectRefused(gw, { path: '/admin/x', headers: bearer(tampered) }, 401, 'AUTH_INVALID');
  const stranger = randomSecret();
  await expectRefused(gw, { path: '/v1/x', headers: bearer(ringToken(stranger, claimsFor(sub))) }, 401, 'AUTH_INVALID');
  await expectRefused(gw, { path: '/v1/x', headers: bearer(handToken({ alg: 'HS256', typ: 'JWT', kid: kidOf(gw.secret) }, claimsFor(sub), stranger)) }, 401, 'AUTH_INVALID');
});

test('kid missing, unknown, path-like (../../etc/passwd) or SQL-like is refused', async () => {
  const kids: unknown[] = [undefined, '0000000000000000', '../../etc/passwd', '/etc/passwd', "' OR 1=1 --", `${kidOf(gw.secret)}' OR '1'='1`, 'file:///dev/null', 12345, null];
  for (const kid of kids) {
    const header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' };
    if (kid !== undefined) header.kid = kid;
    await expectRefused(gw, { path: '/v1/x', headers: bearer(handToken(header, claimsFor(sub), Buffer.from(gw.secret, 'utf8'))) }, 401, 'AUTH_INVALID');
  }
});

test('jku, x5u and jwk headers are ignored: never fetched, and a token signed by its own embedded jwk fails', async () => {
  let fetched = 0;
  const keyServer = http.createServer((_req, res) => {
    fetched++;
    res.end('{"keys":[]}');
  });
  await new Promise<void>((r) => keyServer.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks.json`;
    // Signed by the ring key: still valid, the extra headers change nothing.
    const seen = await expectForwarded(gw, { path: '/v1/x', headers: bearer(token({}, { jku: url, x5u: url })) });
    assert.equal(seen.headers['x-gateway-user'], sub);
    // Signed by the attacker's own key, published in the header or at the URL.
    const attacker = randomBytes(32);
    const jwk = { kty: 'oct', k: attacker.toString('base64url'), alg: 'HS256' };
    for (const header of [
      { alg: 'HS256', typ: 'JWT', jwk },
      { alg: 'HS256', typ: 'JWT', kid: kidOf(gw.secret), jwk },
      { alg: 'HS256', typ: 'JWT', kid: 'attacker', jku: url },
      { alg: 'HS256', typ: 'JWT', kid: kidOf(gw.secret), jku: url, x5u: url },
    ]) {
      await expectRefused(gw, { path: '/v1/x', headers: bearer(handToken(header, claimsFor(sub), attacker)) }, 401, 'AUTH_INVALID');
    }
    assert.equal(fetched, 0, 'the gateway never fetched a key URL');
  } finally {
    keyServer.close();
  }
});

test('each required claim missing is refused: sub, exp, iat, iss, aud, jti', async () => {
  for (const claim of ['sub', 'exp', 'iat', 'iss', 'aud', 'jti']) {
    await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ [claim]: undefined })) }, 401, 'AUTH_INVALID');
  }
});

test('a wrong issuer or a wrong audience is refused', async () => {
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ iss: 'https://evil.example' })) }, 401, 'AUTH_INVALID');
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ aud: 'metabase' })) }, 401, 'AUTH_INVALID');
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ aud: ['metabase', 'nocodb'] })) }, 401, 'AUTH_INVALID');
});

test('clock skew: exp 29 s in the past is accepted, 31 s in the past is AUTH_EXPIRED', async () => {
  const now = Math.floor(Date.now() / 1000);
  await expectForwarded(gw, { path: '/v1/x', headers: bearer(token({ iat: now - 600, exp: now - 29 })) });
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ iat: now - 600, exp: now - 31 })) }, 401, 'AUTH_EXPIRED');
});

test('iat more than 30 s in the future is refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ iat: now + 45, exp: now + 600 })) }, 401, 'AUTH_INVALID');
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ iat: now + 86_400, exp: now + 87_000 })) }, 401, 'AUTH_INVALID');
});

test('a lifetime over JWT_MAX_TTL is refused even though the ring signed it', async () => {
  const now = Math.floor(Date.now() / 1000);
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ iat: now, exp: now + MAX_TTL_S + 1 })) }, 401, 'AUTH_INVALID');
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ iat: now - 10, exp: now + 10 * 365 * 86_400 })) }, 401, 'AUTH_INVALID');
  await expectForwarded(gw, { path: '/v1/x', headers: bearer(token({ iat: now, exp: now + MAX_TTL_S })) });
});

test('a token in both Authorization and the session cookie is AUTH_AMBIGUOUS, on jwt and session routes', async () => {
  const t = token();
  await expectRefused(gw, { path: '/v1/x', headers: bearer(t, { cookie: `${ACCESS_COOKIE}=${t}` }) }, 401, 'AUTH_AMBIGUOUS');
  await expectRefused(gw, { path: '/v1/x', headers: bearer(t, { cookie: `${REFRESH_COOKIE}=abc` }) }, 401, 'AUTH_AMBIGUOUS');
  await expectRefused(gw, { path: '/ui', host: 'nocodb.test.local', headers: bearer(t, { cookie: `${ACCESS_COOKIE}=${t}` }) }, 401, 'AUTH_AMBIGUOUS');
});

test('two Authorization headers are AUTH_AMBIGUOUS', async () => {
  const t = token();
  await expectRefused(gw, { path: '/v1/x', headers: { authorization: [`Bearer ${t}`, `Bearer ${t}`], accept: 'application/json' } }, 401, 'AUTH_AMBIGUOUS');
  await expectRefused(gw, { path: '/v1/x', headers: { authorization: [`Bearer ${t}`, 'Basic eDp5'], accept: 'application/json' } }, 401, 'AUTH_AMBIGUOUS');
});

test('a session-typ token used as a bearer token is refused; a bearer token on a session route too', async () => {
  await expectRefused(gw, { path: '/v1/x', headers: bearer(token({ typ: 'session' })) }, 401, 'AUTH_INVALID');
  await expectRefused(gw, { path: '/ui', host: 'nocodb.test.local', headers: bearer(token({ roles: ['staff'] })) }, 401, 'AUTH_INVALID');
  // And an access token in the session cookie.
  await expectRefused(gw, { path: '/ui', host: 'nocodb.test.local', headers: { cookie: `${ACCESS_COOKIE}=${token({ roles: ['staff'] })}`, accept: 'application/json' } }, 401, 'AUTH_INVALID');
});

test('a token of an unknown subject is refused', async () => {
  await expectRefused(gw, { path: '/v1/x', headers: bearer(ringToken(gw.secret, claimsFor(`client:${uniq('nobody')}`))) }, 401, 'AUTH_INVALID');
});

test('a revoked jti is refused at once here and, through Redis pub/sub, on a second instance', async () => {
  const second = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV, secret: gw.secret, dataDir: gw.dataDir, upstream: gw.upstream });
  try {
    const claims = claimsFor(sub);
    const t = ringToken(gw.secret, claims);
    // Both instances have verified (and cached) the token before it is revoked.
    await expectForwarded(gw, { path: '/v1/x', headers: bearer(t) });
    await expectForwarded(second, { path: '/v1/x', headers: bearer(t) });
    const started = Date.now();
    await gw.auth.revocations.revoke(claims.jti as string, claims.exp as number);
    await expectRefused(gw, { path: '/v1/x', headers: bearer(t) }, 401, 'AUTH_REVOKED');
    assert.ok(await waitFor(() => second.auth.revocations.isRevoked(claims.jti as string), 2_000), 'the second instance learnt of the revocation within 2 s');
    await expectRefused(second, { path: '/v1/x', headers: bearer(t) }, 401, 'AUTH_REVOKED');
    assert.ok(Date.now() - started < 2_000);
    // A third instance started later learns it from Redis itself (the denylist, not pub/sub).
    const third = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV, secret: gw.secret, dataDir: gw.dataDir, upstream: gw.upstream });
    try {
      await expectRefused(third, { path: '/v1/x', headers: bearer(t) }, 401, 'AUTH_REVOKED');
    } finally {
      await third.close();
    }
    const ttl = await gw.redis?.pttl(`crmgw:revoked:${String(claims.jti)}`);
    assert.ok(ttl !== undefined && ttl > 0 && ttl <= 601_000, `the denylist entry lives as long as the token (${String(ttl)} ms)`);
  } finally {
    await second.close();
  }
});

test('a disabled client is refused by a fresh instance at once and by a running one after the 5 s status cache', async () => {
  const name = uniq('jwt-disabled');
  await addClient(gw.auth, name, ['api']);
  const t = ringToken(gw.secret, claimsFor(`client:${name}`));
  await expectForwarded(gw, { path: '/v1/x', headers: bearer(t) });
  await gw.auth.store.updateClient(name, { disabled: true });
  const fresh = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV, secret: gw.secret, dataDir: gw.dataDir, upstream: gw.upstream });
  try {
    await expectRefused(fresh, { path: '/v1/x', headers: bearer(t) }, 401, 'AUTH_DISABLED');
  } finally {
    await fresh.close();
  }
  await new Promise((r) => setTimeout(r, 5_200));
  await expectRefused(gw, { path: '/v1/x', headers: bearer(t) }, 401, 'AUTH_DISABLED');
});

test('key rotation: tokens of the previous key keep working (nobody is logged out); a retired key is refused', async () => {
  const old = ringToken(gw.secret, claimsFor(sub));
  const next = randomSecret();
  const retireLater = new Date(Date.now() + 3_600_000).toISOString();
  const rotated = await startAuthGateway({
    routes: ROUTES,
    redis: true,
    env: { ...ENV, API_SECRET_KEY_PREVIOUS: `${gw.secret}@${retireLater}` },
    secret: next,
    dataDir: gw.dataDir,
    upstream: gw.upstream,
  });
  try {
    await expectForwarded(rotated, { path: '/v1/x', headers: bearer(old) });
    const issued = rotated.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' });
    assert.equal(JSON.parse(Buffer.from(issued.token.split('.')[0] as string, 'base64url').toString()).kid, kidOf(next), 'new tokens are signed with the new key');
    await expectForwarded(rotated, { path: '/v1/x', headers: bearer(issued.token) });
    // The old instance does not know the new key.
    await expectRefused(gw, { path: '/v1/x', headers: bearer(issued.token) }, 401, 'AUTH_INVALID');
  } finally {
    await rotated.close();
  }
  const retired = await startAuthGateway({
    routes: ROUTES,
    redis: true,
    env: { ...ENV, API_SECRET_KEY_PREVIOUS: `${gw.secret}@${new Date(Date.now() - 1000).toISOString()}` },
    secret: next,
    dataDir: gw.dataDir,
    upstream: gw.upstream,
  });
  try {
    await expectRefused(retired, { path: '/v1/x', headers: bearer(old) }, 401, 'AUTH_INVALID');
  } finally {
    await retired.close();
  }
});

test('without API_SECRET_KEY every route that needs auth refuses (AUTH_UNAVAILABLE), and so do the login endpoints', async (t) => {
  const bare = await startTestGateway(ROUTES);
  t.after(() => bare.close());
  await expectRefused(bare, { path: '/v1/x', headers: bearer(token()) }, 401, 'AUTH_UNAVAILABLE');
  await expectRefused(bare, { path: '/ui', host: 'nocodb.test.local', headers: { accept: 'application/json' } }, 401, 'AUTH_UNAVAILABLE');
  await expectRefused(bare, { path: '/auth/login', host: 'nocodb.test.local', headers: { accept: 'application/json' } }, 401, 'AUTH_UNAVAILABLE');
  const pub = await bare.request({ path: '/p', host: 'public.test.local' });
  assert.equal(pub.status, 200, 'auth: none routes still work');
});

// A gateway of its own (session and bearer routes, a short refresh reuse grace): from the
// adversarial review of src/auth, where each test failed before its fix.
describe('JWT crit header (from the adversarial review)', () => {
  let gw: AuthTestGateway;

  before(async () => {
    gw = await startReviewedAuthGateway();
  });

  after(async () => {
    await gw?.close();
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
});


