import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as rsaSign } from 'node:crypto';
import { KeyRing, kidOf, parsePreviousKeys } from '../../../src/auth/keyring.js';
import { TokenService, type TokenPolicy } from '../../../src/auth/tokens.js';
import { isGatewayError } from '../../../src/errors.js';
import { b64url, claimsFor, handToken, randomSecret, ringToken } from '../../helpers/auth-gateway.js';

const POLICY: TokenPolicy = { issuer: 'crm-gateway', audience: 'crm', maxTokenTtl: 3_600_000, clockSkew: 30_000 };
/**
 * The injected clock reaches the gateway's own checks (iat, cache, key retirement) but not
 * jsonwebtoken's exp check, which reads the real clock: so T0 is now.
 */
const T0 = Date.now();

function service(now: () => number, ring = new KeyRing(SECRET)): TokenService {
  return new TokenService(ring, POLICY, now);
}
const SECRET = randomSecret();

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(isGatewayError(err), `a GatewayError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('the token was accepted');
}

/** Claims at the injected clock T0 (claimsFor reads the real clock). */
function at(t: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const s = Math.floor(t / 1000);
  return claimsFor('client:unit', { iat: s, exp: s + 600, ...overrides });
}

test('a token the service issued verifies, with its claims', async () => {
  const s = service(() => T0);
  const { token, claims } = s.issue({ sub: 'client:a', roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const header = JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()) as Record<string, unknown>;
  assert.deepEqual(header, { alg: 'HS256', typ: 'JWT', kid: kidOf(SECRET) });
  assert.deepEqual(await s.verify(token), claims);
  for (const k of ['sub', 'iss', 'aud', 'iat', 'exp', 'jti']) assert.ok(k in claims, k);
});

test('issuing a token longer than the maximum lifetime throws', () => {
  assert.throws(() => service(() => T0).issue({ sub: 'client:a', roles: [], ttlMs: POLICY.maxTokenTtl + 1000, typ: 'access' }), /maximum/);
});

test('clock skew: expired 29 s ago is accepted, 31 s ago is AUTH_EXPIRED', async () => {
  const s = service(() => T0);
  const now = Math.floor(T0 / 1000);
  await s.verify(ringToken(SECRET, at(T0, { iat: now - 100, exp: now - 29 })));
  assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0, { iat: now - 100, exp: now - 31 })))), 'AUTH_EXPIRED');
});

test('a cached token stops verifying once its expiry plus skew passes', async () => {
  let now = T0;
  const s = service(() => now);
  const sec = Math.floor(T0 / 1000);
  const token = ringToken(SECRET, at(T0, { exp: sec + 10 }));
  await s.verify(token);
  now = T0 + 39_000;
  await s.verify(token);
  now = T0 + 41_000;
  assert.equal(await refusal(s.verify(token)), 'AUTH_EXPIRED');
});

test('iat more than 30 s in the future is refused; within the skew it is accepted', async () => {
  const s = service(() => T0);
  const sec = Math.floor(T0 / 1000);
  assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0, { iat: sec + 31, exp: sec + 600 })))), 'AUTH_INVALID');
  await s.verify(ringToken(SECRET, at(T0, { iat: sec + 20, exp: sec + 600 })));
});

test('a lifetime over the maximum is refused even when signed by the ring', async () => {
  const s = service(() => T0);
  const sec = Math.floor(T0 / 1000);
  assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0, { iat: sec, exp: sec + 3601 })))), 'AUTH_INVALID');
  await s.verify(ringToken(SECRET, at(T0, { iat: sec, exp: sec + 3600 })));
});

test('each required claim missing is refused: sub, exp, iat, iss, aud, jti', async () => {
  const s = service(() => T0);
  for (const claim of ['sub', 'exp', 'iat', 'iss', 'aud', 'jti']) {
    assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0, { [claim]: undefined })))), 'AUTH_INVALID', claim);
  }
});

test('wrong types of claims are refused (exp as string, roles not a list, typ unknown, short jti)', async () => {
  const s = service(() => T0);
  for (const bad of [{ exp: String(Math.floor(T0 / 1000) + 60) }, { roles: 'admin' }, { typ: 'refresh' }, { jti: 'short' }, { sub: '' }, { fam: 7 }]) {
    assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0, bad)))), 'AUTH_INVALID', JSON.stringify(bad));
  }
});

test('alg none/None/NONE, RS256 and HS512 headers are refused whatever the signature', async () => {
  const s = service(() => T0);
  const claims = at(T0);
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    assert.equal(await refusal(s.verify(handToken({ alg, typ: 'JWT', kid: kidOf(SECRET) }, claims, undefined))), 'AUTH_INVALID', alg);
    assert.equal(await refusal(s.verify(`${handToken({ alg, kid: kidOf(SECRET) }, claims, undefined)}sig`)), 'AUTH_INVALID', alg);
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const input = `${b64url({ alg: 'RS256', typ: 'JWT', kid: kidOf(SECRET) })}.${b64url(claims)}`;
  const rs = `${input}.${rsaSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  assert.equal(await refusal(s.verify(rs)), 'AUTH_INVALID');
  assert.equal(await refusal(s.verify(handToken({ alg: 'HS512', kid: kidOf(SECRET) }, claims, SECRET))), 'AUTH_INVALID');
});

test('HS256 signed with a public key PEM as the secret (key confusion) is refused', async () => {
  const s = service(() => T0);
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  assert.equal(await refusal(s.verify(handToken({ alg: 'HS256', typ: 'JWT', kid: kidOf(SECRET) }, at(T0), pem))), 'AUTH_INVALID');
});

test('kid missing, unknown, path-like or SQL-like is refused before any key is used', async () => {
  const s = service(() => T0);
  for (const kid of [undefined, 'ffffffffffffffff', '../../etc/passwd', "x' OR '1'='1", '/dev/null', kidOf(SECRET).toUpperCase(), `${kidOf(SECRET)} `, 42, [kidOf(SECRET)]]) {
    const header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' };
    if (kid !== undefined) header.kid = kid;
    assert.equal(await refusal(s.verify(handToken(header, at(T0), SECRET))), 'AUTH_INVALID', JSON.stringify(kid));
  }
});

test('a typ header other than JWT is refused', async () => {
  const s = service(() => T0);
  assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0), { typ: 'at+jwt' }))), 'AUTH_INVALID');
});

test('wrong issuer and wrong audience are refused', async () => {
  const s = service(() => T0);
  assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0, { iss: 'someone-else' })))), 'AUTH_INVALID');
  assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0, { aud: 'other' })))), 'AUTH_INVALID');
});

test('a previous key verifies until its retire-after time, then never again', async () => {
  const old = randomSecret();
  let now = T0;
  const ring = new KeyRing(SECRET, [{ secret: old, retireAfter: new Date(T0 + 60_000) }]);
  const token = ringToken(old, at(T0));
  await service(() => now, ring).verify(token);
  now = T0 + 60_000;
  assert.equal(await refusal(service(() => now, ring).verify(token)), 'AUTH_INVALID');
  // The ring signs with the current key only.
  const issued = service(() => T0, ring).issue({ sub: 'client:x', roles: [], ttlMs: 1000, typ: 'access' });
  assert.equal(JSON.parse(Buffer.from(issued.token.split('.')[0] as string, 'base64url').toString()).kid, kidOf(SECRET));
});

test('API_SECRET_KEY_PREVIOUS parses secret@time entries and refuses malformed ones', () => {
  const parsed = parsePreviousKeys(' a1@2030-01-01T00:00:00Z , b2@2031-01-01T00:00:00Z');
  assert.deepEqual(
    parsed.map((p) => [p.secret, p.retireAfter.toISOString()]),
    [
      ['a1', '2030-01-01T00:00:00.000Z'],
      ['b2', '2031-01-01T00:00:00.000Z'],
    ],
  );
  assert.deepEqual(parsePreviousKeys(undefined), []);
  for (const bad of ['nosecret', '@2030-01-01', 'x@not-a-date']) assert.throws(() => parsePreviousKeys(bad), /API_SECRET_KEY_PREVIOUS/, bad);
});

test('a token over 8 KiB is refused before parsing', async () => {
  const s = service(() => T0);
  assert.equal(await refusal(s.verify(ringToken(SECRET, at(T0, { pad: 'x'.repeat(9000) })))), 'AUTH_INVALID');
});
