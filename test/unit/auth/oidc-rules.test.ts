import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/config/load.js';
import { GatewayError } from '../../../src/errors.js';
import { applyRules, isOidcSubject, oidcSubject } from '../../../src/auth/oidc/rules.js';
import { oidcSchema, type OidcConfig } from '../../../src/auth/oidc/config.js';
import { toGatewayError } from '../../../src/auth/oidc/client.js';

const ISSUER = 'https://idp.example.com/realms/crm';

function cfg(over: Record<string, unknown> = {}): OidcConfig {
  return oidcSchema.parse({ issuer: ISSUER, clientId: 'gw', clientSecret: 's', ...over });
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err;
  }
  assert.fail('expected a refusal');
}

describe('oidc subject', () => {
  test('issuer + sub, never the email; the issuer tagged; apart from local names', () => {
    const a = oidcSubject(ISSUER, '248289761001');
    assert.match(a, /^oidc:[0-9a-f]{8}:248289761001$/);
    assert.equal(oidcSubject(ISSUER, '248289761001'), a, 'stable');
    assert.notEqual(oidcSubject('https://idp.example.com/realms/other', '248289761001'), a, 'another realm or tenant: another person');
    assert.ok(isOidcSubject(a));
    assert.ok(!isOidcSubject('alice'));
  });

  test('a sub that is empty, too long or not printable ASCII is refused', () => {
    for (const sub of ['', 'x'.repeat(256), 'a b', 'ä', 'a\nb']) assert.equal(refusal(() => oidcSubject(ISSUER, sub)).code, 'OIDC_TOKEN_INVALID');
  });
});

describe('applyRules', () => {
  const claims = { sub: 'u1', email: 'Ana@Example.com', email_verified: true, groups: ['crm-staff', 'crm-admins'], hd: 'example.com' };

  test('verified email, domain and group allowed: roles from defaultRoles and roleMapping', () => {
    const c = cfg({ allowedEmailDomains: 'example.com', allowedGroups: ['crm-staff'], defaultRoles: 'viewer', roleMapping: [{ value: 'crm-admins', roles: ['admin'] }, { claim: 'hd', value: 'example.com', roles: ['staff'] }] });
    const who = applyRules(c, ISSUER, claims);
    assert.equal(who.email, 'ana@example.com');
    assert.deepEqual(who.roles.sort(), ['admin', 'staff', 'viewer']);
  });

  test('email_verified must be exactly true; an email must be there', () => {
    for (const v of [false, 'true', 1, undefined]) {
      const e = refusal(() => applyRules(cfg(), ISSUER, { ...claims, email_verified: v }));
      assert.equal(e.code, 'OIDC_EMAIL_UNVERIFIED');
    }
    assert.equal(refusal(() => applyRules(cfg(), ISSUER, { sub: 'u1', email_verified: true })).code, 'OIDC_EMAIL_UNVERIFIED');
  });

  test("Entra ID: no email_verified, but xms_edov when asked for (emailVerifiedClaim)", () => {
    const entra = { sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ', email: 'ana@example.com', xms_edov: true, groups: ['5f1c2e9a-0000-4000-8000-000000000001'] };
    assert.equal(refusal(() => applyRules(cfg(), ISSUER, entra)).code, 'OIDC_EMAIL_UNVERIFIED');
    assert.equal(applyRules(cfg({ emailVerifiedClaim: 'xms_edov' }), ISSUER, entra).email, 'ana@example.com');
  });

  test('domains match exactly after the last @ (no suffix, no subdomain, no second @)', () => {
    const c = cfg({ allowedEmailDomains: ['example.com'] });
    for (const email of ['a@example.com.evil.org', 'a@evil-example.com', 'a@sub.example.com', 'a@example.com@evil.org']) {
      assert.equal(refusal(() => applyRules(c, ISSUER, { ...claims, email })).code, 'OIDC_NOT_ALLOWED', email);
    }
  });

  test('groups: one of allowedGroups, read from groupsClaim; a missing claim is no group', () => {
    const c = cfg({ allowedGroups: ['crm-staff'], groupsClaim: 'roles' });
    assert.equal(refusal(() => applyRules(c, ISSUER, claims)).code, 'OIDC_NOT_ALLOWED');
    assert.deepEqual(applyRules(c, ISSUER, { ...claims, roles: 'crm-staff' }).groups, ['crm-staff']);
  });
});

describe('auth.oidc config', () => {
  const ROUTES = 'routes:\n  - { name: n, host: nocodb.test.local, upstream: "http://127.0.0.1:1", auth: session }\n';

  test('absent: off; the environment sets issuer, client and secret', () => {
    assert.equal(parseConfig(ROUTES, {}).auth.oidc, undefined);
    const c = parseConfig(ROUTES, { OIDC_ISSUER: ISSUER, OIDC_CLIENT_ID: 'gw', OIDC_CLIENT_SECRET: 's3cret', OIDC_ALLOWED_EMAIL_DOMAINS: 'Example.com, example.org', OIDC_DEFAULT_ROLES: 'staff' });
    assert.equal(c.auth.oidc?.clientSecret, 's3cret');
    assert.deepEqual(c.auth.oidc?.allowedEmailDomains, ['example.com', 'example.org']);
    assert.deepEqual(c.auth.oidc?.defaultRoles, ['staff']);
    assert.deepEqual(c.auth.oidc?.scopes, ['openid', 'email', 'profile']);
  });

  test('every problem reported: http issuer, no secret, no openid scope, a foreign callback path, bad roles', () => {
    try {
      parseConfig(`${ROUTES}auth:\n  oidc:\n    issuer: http://idp.example.com\n    clientId: gw\n    scopes: [email]\n    redirectUri: https://nocodb.test.local/callback\n    defaultRoles: [Admin]\n`, {});
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const paths = err.problems.map((p) => p.path).join(' ');
      for (const p of ['auth.oidc.issuer', 'auth.oidc.scopes', 'auth.oidc.redirectUri', 'auth.oidc.defaultRoles']) assert.ok(paths.includes(p), `${p} in ${paths}`);
      assert.ok(err.problems.some((p) => p.path === 'auth.oidc.issuer' && p.message.includes('OIDC_CLIENT_SECRET')), 'the missing secret is told on a setting that was given');
    }
  });
});

describe('auth.oidc needs a session host', () => {
  const OIDC = 'auth:\n  oidc: { issuer: https://idp.example.com, clientId: gw, clientSecret: s, redirectUri: "https://api.test.local/auth/oidc/callback" }\n';
  test('no session route: refused; a redirectUri on a host that is not a session route: refused', () => {
    const jwtOnly = 'routes:\n  - { name: a, host: api.test.local, upstream: "http://127.0.0.1:1", auth: jwt }\n';
    assert.throws(() => parseConfig(`${jwtOnly}${OIDC}`, {}), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.path === 'auth.oidc.issuer' && /auth: session/.test(p.message)));
    try {
      parseConfig(`routes:\n  - { name: a, host: api.test.local, upstream: "http://127.0.0.1:1", auth: jwt }\n  - { name: n, host: nocodb.test.local, upstream: "http://127.0.0.1:1", auth: session }\n${OIDC}`, {});
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.path), ['auth.oidc.redirectUri']);
    }
  });
});

describe("openid-client's failures → codes", () => {
  test('a network failure is the provider unavailable; anything unknown never passes', () => {
    assert.equal(toGatewayError(new TypeError('fetch failed')).code, 'OIDC_UNAVAILABLE');
    assert.equal(toGatewayError(new GatewayError('OIDC_NOT_ALLOWED')).code, 'OIDC_NOT_ALLOWED');
  });
});

describe('commands take an identity provider person by subject', () => {
  test('block user oidc:<tag>:<sub> is accepted; a look-alike is not', async () => {
    const { canonicalTarget } = await import('../../../src/containment/model.js');
    const subject = oidcSubject(ISSUER, '248289761001');
    assert.equal(canonicalTarget('user', subject), subject);
    for (const bad of ['oidc:xyz:1', 'oidc:0123abcd:', 'oidc:0123abcd:a b']) assert.throws(() => canonicalTarget('user', bad), /not a user name/);
    assert.throws(() => canonicalTarget('client', subject), /not a client name/);
  });
});
