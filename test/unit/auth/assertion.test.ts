import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import jwt from 'jsonwebtoken';
import { calculateJwkThumbprint } from 'jose';
import { ASSERTION_TTL_MS, KEY_ACTIVATION_DELAY_MS, KEY_CLOCK_SKEW_MS, KEY_RELOAD_MS, ensureKeyFile, jwkThumbprint, parseKeyFile, publishedKeys, readKeyFile, rotateKeyFile, signingKey, type AssertionKey } from '../../../src/auth/assertion/keys.js';
import { ASSERTION_REFRESH_BEFORE_MS, AssertionSigner } from '../../../src/auth/assertion/signer.js';
import { assertionIssuer, assertionKeyFile, IdentityAssertions } from '../../../src/auth/assertion/service.js';
import { ASSERTION_HEADER, routeAssertion, wantsAssertion } from '../../../src/auth/assertion/routes.js';
import { buildUpstreamHeaders } from '../../../src/proxy/request-headers.js';
import { parseConfig } from '../../../src/config/load.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { isGatewayError } from '../../../src/errors.js';
import type { Principal, RequestContext } from '../../../src/context.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'crm-gw-assert-unit-'));
}

const ROUTES = `
routes:
  - name: crm-api
    host: api.example.com
    upstream: http://127.0.0.1:8000
    auth: jwt
  - name: public
    host: www.example.com
    upstream: http://127.0.0.1:8000
    auth: none
  - name: hook
    host: api.example.com
    path: /webhook/whatsapp
    upstream: http://127.0.0.1:8000
    auth: whatsapp
`;

describe('assertion keys', () => {
  test('kid is the RFC 7638 thumbprint (as jose computes it)', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    assert.equal(jwkThumbprint(jwk), await calculateJwkThumbprint(jwk as Parameters<typeof calculateJwkThumbprint>[0], 'sha256'));
  });

  test('created once (0600, folder 0700), then read back the same; loose modes tightened', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'nested', 'assertion-keys.json');
      const first = ensureKeyFile(file);
      assert.equal(first.created, true);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'nested')).mode & 0o777, 0o700);
      assert.equal(first.keys.length, 1);
      assert.equal(first.keys[0]?.activeFrom, 0, 'active at once on every host, whatever its clock');
      const second = ensureKeyFile(file);
      assert.equal(second.created, false);
      assert.equal(second.keys[0]?.kid, first.keys[0]?.kid);
      chmodSync(file, 0o644);
      assert.equal(ensureKeyFile(file).tightened, true);
      assert.equal(statSync(file).mode & 0o777, 0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a PEM private key file is accepted; other keys and malformed files are refused by name, never by value', () => {
    const dir = tempDir();
    try {
      const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      const keys = parseKeyFile(pem, 'k.pem');
      assert.equal(keys.length, 1);
      assert.equal(keys[0]?.kid, jwkThumbprint(createPublicKey(pem).export({ format: 'jwk' })));
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      assert.throws(() => parseKeyFile(rsa, 'rsa.pem'), /rsa\.pem: not an EC P-256 key/);
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      assert.throws(() => parseKeyFile(p384, 'p384.pem'), /not an EC P-256 key/);
      assert.throws(() => parseKeyFile('{"version":1,"keys":[]}', 'f.json'), /at least one key/);
      assert.throws(() => parseKeyFile('{"version":1,"keys":[{"privateKey":"secret-value","activeFrom":"2026-01-01T00:00:00Z"}]}', 'f.json'), (err: Error) => /f\.json key 1: not a PEM private key/.test(err.message) && !err.message.includes('secret-value'));
      assert.throws(() => parseKeyFile(`{"version":1,"keys":[{"privateKey":${JSON.stringify(pem)},"activeFrom":"soon"}]}`, 'f.json'), /key 1 activeFrom: not an ISO-8601 time/);
      assert.throws(() => parseKeyFile('nonsense', 'f.json'), /neither JSON nor a PEM private key/);
      const file = join(dir, 'bad.json');
      writeFileSync(file, '{', { mode: 0o600 });
      assert.throws(() => ensureKeyFile(file), /bad\.json: neither JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('rotation: the new key is published at once and signs after the delay; the old one stays published until its assertions expired', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'assertion-keys.json');
      const [old] = ensureKeyFile(file).keys as [AssertionKey];
      const t0 = Date.parse('2026-12-06T12:00:00Z');
      const r = rotateKeyFile(file, { now: new Date(t0) });
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(r.activeFrom.getTime(), t0 + KEY_ACTIVATION_DELAY_MS);
      const retire = t0 + KEY_ACTIVATION_DELAY_MS + KEY_RELOAD_MS + ASSERTION_TTL_MS + KEY_CLOCK_SKEW_MS;
      assert.deepEqual(r.retiring, [{ kid: old.kid, retireAfter: new Date(retire) }]);
      const keys = readKeyFile(file);
      const kids = (t: number): string[] => publishedKeys(keys, t).map((k) => k.kid);
      assert.deepEqual(kids(t0), [old.kid, r.newKid], 'both published before the new one signs');
      assert.equal(signingKey(keys, t0)?.kid, old.kid);
      assert.equal(signingKey(keys, t0 + KEY_ACTIVATION_DELAY_MS - 1)?.kid, old.kid);
      assert.equal(signingKey(keys, t0 + KEY_ACTIVATION_DELAY_MS)?.kid, r.newKid);
      assert.deepEqual(kids(retire - 1), [old.kid, r.newKid]);
      assert.deepEqual(kids(retire), [r.newKid], 'retired');
      // A second rotation later drops the retired key and keeps the current one's schedule.
      const r2 = rotateKeyFile(file, { now: new Date(retire + 1) });
      assert.equal(r2.dropped, 1);
      assert.deepEqual(r2.retiring.map((k) => k.kid), [r.newKid]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('rotation without grace: every earlier key leaves the JWKS now and the new one signs at once', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'k.json');
      ensureKeyFile(file);
      const now = new Date();
      const r = rotateKeyFile(file, { now, grace: false });
      assert.equal(r.dropped, 1);
      assert.deepEqual(r.retiring, []);
      const keys = readKeyFile(file);
      assert.deepEqual(publishedKeys(keys, now.getTime()).map((k) => k.kid), [r.newKid]);
      assert.equal(signingKey(keys, now.getTime())?.kid, r.newKid);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a key not yet active anywhere (clocks apart) still signs rather than none', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'k.json');
      ensureKeyFile(file);
      const r = rotateKeyFile(file, { grace: false, now: new Date(Date.now() + 3_600_000) });
      assert.equal(signingKey(readKeyFile(file), Date.now())?.kid, r.newKid);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('assertion signer', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: AssertionKey = { kid: jwkThumbprint(publicKey.export({ format: 'jwk' })), privateKey, publicJwk: publicKey.export({ format: 'jwk' }), activeFrom: 0, retireAfter: undefined };
  const principal: Principal = { subject: 'ana', roles: ['staff', 'admin'], method: 'session', tokenId: 'tok-1234567890', expiresAt: Date.now() + 900_000, sessionId: 'sess-1', factors: ['password', 'totp'] };
  const verify = (token: string, aud: string, at: number): jwt.JwtPayload => jwt.verify(token, publicKey, { algorithms: ['ES256'], audience: aud, issuer: 'https://example.com', clockTimestamp: Math.floor(at / 1000) }) as jwt.JwtPayload;

  test('claims: iss, aud = route, sub, roles, amr, sid, exp = iat + 60 s, jti; header alg ES256 and kid', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    const signer = new AssertionSigner('https://example.com', () => key, () => now);
    const token = signer.sign(principal, 'nocodb');
    const header = jwt.decode(token, { complete: true })?.header;
    assert.deepEqual(header, { alg: 'ES256', typ: 'JWT', kid: key.kid });
    const p = verify(token, 'nocodb', now);
    assert.deepEqual({ ...p, jti: typeof p.jti }, { iss: 'https://example.com', aud: 'nocodb', sub: 'ana', roles: ['staff', 'admin'], amr: ['password', 'totp'], sid: 'sess-1', auth: 'session', iat: now / 1000, exp: now / 1000 + 60, jti: 'string' });
    assert.throws(() => verify(token, 'metabase', now), /audience invalid/);
  });

  test('no amr or sid when the principal has none; never outlives the credential', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    const signer = new AssertionSigner('https://example.com', () => key, () => now);
    const p = verify(signer.sign({ subject: 'client:etl', roles: ['api'], method: 'jwt', tokenId: 'tok-abcdefghij', expiresAt: now + 20_000 }, 'crm-api'), 'crm-api', now);
    assert.equal(p.amr, undefined);
    assert.equal(p.sid, undefined);
    assert.equal(p.exp, now / 1000 + 20);
  });

  test('cached per token, route and identity until 10 s before it expires', () => {
    let now = Date.parse('2026-12-06T12:00:00Z');
    let signed = 0;
    const signer = new AssertionSigner('https://example.com', () => (signed++, key), () => now);
    const a = signer.sign(principal, 'nocodb');
    assert.equal(signer.sign(principal, 'nocodb'), a, 'same assertion while fresh');
    assert.notEqual(signer.sign(principal, 'metabase'), a, 'another route, another assertion');
    assert.notEqual(signer.sign({ ...principal, roles: ['staff'] }, 'nocodb'), a, 'changed roles are never served from the cache');
    assert.notEqual(signer.sign({ ...principal, tokenId: 'tok-other-0001' }, 'nocodb'), a);
    assert.equal(signed, 4);
    now += ASSERTION_TTL_MS - ASSERTION_REFRESH_BEFORE_MS - 1;
    assert.equal(signer.sign(principal, 'nocodb'), a);
    now += 1;
    const b = signer.sign(principal, 'nocodb');
    assert.notEqual(b, a, 'renewed 10 s before exp');
    assert.ok(verify(b, 'nocodb', now));
    // Without a token id there is nothing to key a cache on: signed each time.
    const anon = { subject: 'x', roles: [], method: 'jwt' as const };
    assert.notEqual(signer.sign(anon, 'nocodb'), signer.sign(anon, 'nocodb'));
  });

  test('no key: ASSERTION_UNAVAILABLE (fail closed)', () => {
    const signer = new AssertionSigner('https://example.com', () => undefined);
    assert.throws(() => signer.sign(principal, 'nocodb'), (err: unknown) => isGatewayError(err) && err.code === 'ASSERTION_UNAVAILABLE' && err.status === 503);
  });
});

describe('assertion config and wiring', () => {
  test('on by default for authenticated routes only; the setting overrides', () => {
    const cfg = parseConfig(ROUTES, {}, 't.yaml');
    assert.deepEqual(cfg.routes.map((r) => wantsAssertion(r)), [true, false, false]);
    const off = parseConfig(ROUTES.replace('    auth: jwt\n', '    auth: jwt\n    identityAssertion: false\n'), {}, 't.yaml');
    assert.equal(wantsAssertion(off.routes[0] as (typeof off.routes)[number]), false);
    assert.throws(() => parseConfig(ROUTES.replace('    auth: none\n', '    auth: none\n    identityAssertion: true\n'), {}, 't.yaml'), /identityAssertion.*needs a jwt, session or jwt-or-session route/s);
  });

  test('key file and issuer: GATEWAY_ASSERTION_KEY_FILE / GATEWAY_ASSERTION_ISSUER, else DATA_DIR and https://<domain>[:public port]', () => {
    const plain = parseConfig(ROUTES, { DATA_DIR: '/srv/gw', GATEWAY_DOMAIN: 'example.com' }, 't.yaml');
    assert.equal(assertionKeyFile(plain), '/srv/gw/assertion-keys.json');
    assert.equal(assertionIssuer(plain), 'https://example.com');
    assert.equal(assertionIssuer(parseConfig(ROUTES, { GATEWAY_DOMAIN: 'example.com', PUBLIC_HTTPS_PORT: '8443' }, 't.yaml')), 'https://example.com:8443');
    assert.equal(assertionIssuer(parseConfig(ROUTES, { GATEWAY_DOMAIN: 'example.com', PUBLIC_HTTPS_PORT: '443' }, 't.yaml')), 'https://example.com');
    const set = parseConfig(ROUTES, { GATEWAY_ASSERTION_KEY_FILE: '/run/secrets/assertion.pem', GATEWAY_ASSERTION_ISSUER: 'https://gateway.example.com' }, 't.yaml');
    assert.equal(assertionKeyFile(set), '/run/secrets/assertion.pem');
    assert.equal(assertionIssuer(set), 'https://gateway.example.com');
    assert.throws(() => parseConfig(ROUTES, { GATEWAY_ASSERTION_ISSUER: 'gateway' }, 't.yaml'), /assertion\.issuer/);
  });

  test('IdentityAssertions: JWKS of public parts only; a reload that fails keeps the keys in use', () => {
    const dir = tempDir();
    const log = createMemoryLogger();
    const cfg = parseConfig(ROUTES, { DATA_DIR: dir, GATEWAY_DOMAIN: 'example.com' }, 't.yaml');
    const ia = IdentityAssertions.open(cfg, log);
    try {
      const doc = JSON.parse(ia.jwks()) as { keys: Record<string, string>[] };
      assert.deepEqual(Object.keys(doc.keys[0] ?? {}).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      const kid = ia.signingKid();
      writeFileSync(ia.file, 'garbage');
      ia.reload();
      assert.equal(ia.signingKid(), kid);
      assert.ok(log.appMessages.some((m) => m.level === 'warn' && String(m.message).includes('not reloaded')));
      assert.ok(!JSON.stringify(log.appMessages).includes('BEGIN'), 'no key material in logs');
    } finally {
      ia.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('header hygiene: a client copy is dropped (any spelling), the gateway sets one, a route header edit cannot replace it', () => {
    const cfg = parseConfig(ROUTES.replace('    auth: jwt\n', "    auth: jwt\n    requestHeaders: { set: { x-gateway-assertion: operator-value } }\n"), {}, 't.yaml');
    const route = cfg.routes[0] as (typeof cfg.routes)[number];
    const ctx = {
      id: 'req-1',
      secure: true,
      req: { headers: { host: 'api.example.com', 'x-gateway-assertion': 'client-forged', x_gateway_assertion: 'client-forged-2', 'X-GATEWAY-ASSERTION': 'x' } } as unknown as IncomingMessage,
      principal: { subject: 'ana', roles: ['staff'], method: 'jwt', tokenId: 'tok-1234567890' },
    } as unknown as RequestContext;
    const withOne = buildUpstreamHeaders(ctx, route, false, 'signed-by-gateway');
    assert.equal(withOne[ASSERTION_HEADER], 'signed-by-gateway');
    assert.equal(withOne.x_gateway_assertion, undefined);
    assert.equal(withOne['X-GATEWAY-ASSERTION'], undefined);
    const without = buildUpstreamHeaders({ ...ctx, route: undefined } as unknown as RequestContext, cfg.routes[1] as (typeof cfg.routes)[number], false);
    assert.equal(without[ASSERTION_HEADER], undefined, 'no principal, no assertion, and never the client\'s');
  });

  test('routeAssertion: none for routes without one; an explicit route without keys refuses', () => {
    const cfg = parseConfig(ROUTES, {}, 't.yaml');
    const [api, pub] = cfg.routes as [(typeof cfg.routes)[number], (typeof cfg.routes)[number]];
    assert.equal(routeAssertion(pub, { sign: () => 'x' }), undefined);
    assert.equal(routeAssertion(api, undefined), undefined, 'defaulted on, no keys: the gateway forwards without');
    const strict = routeAssertion({ ...api, identityAssertion: true }, undefined);
    assert.ok(strict);
    assert.throws(() => strict({ principal: { subject: 'a', roles: [], method: 'jwt' } } as unknown as RequestContext), (err: unknown) => isGatewayError(err) && err.code === 'ASSERTION_UNAVAILABLE');
    const signs = routeAssertion(api, { sign: (p, r) => `${p.subject}@${r}` });
    assert.equal(signs?.({ principal: { subject: 'a', roles: [], method: 'jwt' } } as unknown as RequestContext), 'a@crm-api');
    assert.equal(signs?.({} as RequestContext), undefined);
  });

  test('the key file keeps each key as a PKCS#8 PEM private key (its public half is derived, never stored)', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'k.json');
      ensureKeyFile(file);
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { version: number; keys: { privateKey: string }[] };
      assert.equal(doc.version, 1);
      assert.ok(doc.keys.every((k) => k.privateKey.startsWith('-----BEGIN PRIVATE KEY-----')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
