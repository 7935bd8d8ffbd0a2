import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { parseConfig } from '../../../../src/config/load.js';
import type { RequestContext } from '../../../../src/context.js';
import type { Principal } from '../../../../src/context.js';
import { isGatewayError } from '../../../../src/errors.js';
import { createMfaCheck } from '../../../../src/auth/mfa/require.js';
import { provedSecondFactor, returnRouteRequiresMfa, rolesRequireMfa } from '../../../../src/auth/mfa/policy.js';
import { parentDomain } from '../../../../src/auth/mfa/webauthn.js';

const ENV = { GATEWAY_DOMAIN: 'example.com', TLS_CERT_FILE: '/nonexistent.crt', TLS_KEY_FILE: '/nonexistent.key' };
const ROUTES = `routes:
  - name: admin
    host: crm.example.com
    path: /admin
    upstream: http://127.0.0.1:9
    auth: session
    mfa: required
  - name: crm
    host: crm.example.com
    upstream: http://127.0.0.1:9
    auth: jwt-or-session
`;

function ctx(principal: Principal | undefined, accept = 'text/html', method = 'GET'): RequestContext {
  const req = { method, headers: { accept } } as unknown as IncomingMessage;
  return { id: 'r1', kind: 'http', req, path: '/admin/x', target: { query: 'a=1' }, principal, reply: { headers: {} } } as unknown as RequestContext;
}

test('defaults: admins need a second factor; requiredRoles [] turns that off; mfa: required parses', () => {
  const cfg = parseConfig(ROUTES, ENV);
  assert.deepEqual(cfg.auth.mfa.requiredRoles, ['admin']);
  assert.equal(cfg.auth.passkeys.signIn, false);
  assert.equal(cfg.routes[0]?.mfa, 'required');
  assert.equal(rolesRequireMfa(['staff', 'admin'], cfg.auth), true);
  assert.equal(rolesRequireMfa(['staff'], cfg.auth), false);
  assert.equal(rolesRequireMfa(['admin'], parseConfig(`auth: { mfa: { requiredRoles: [] } }\n${ROUTES}`, ENV).auth), false);
  assert.throws(() => parseConfig(ROUTES.replace('mfa: required', 'mfa: optional'), ENV), /mfa/);
});

test('second factors: totp, recovery, webauthn count; password and oidc alone do not', () => {
  assert.equal(provedSecondFactor(['password']), false);
  assert.equal(provedSecondFactor(['oidc']), false);
  assert.equal(provedSecondFactor(undefined), false);
  for (const f of ['totp', 'recovery', 'webauthn'] as const) assert.equal(provedSecondFactor(['password', f]), true, f);
});

test('the return route decides at sign-in: a path under an mfa: required route, on this host or an absolute URL', () => {
  const needs = returnRouteRequiresMfa(parseConfig(ROUTES, ENV));
  assert.equal(needs('/admin/panel', 'crm.example.com'), true);
  assert.equal(needs('https://crm.example.com/admin', 'other.example.com'), true);
  assert.equal(needs('/records', 'crm.example.com'), false);
  assert.equal(needs('/administrator', 'crm.example.com'), false, 'a prefix, not a string start');
});

test('the authorization check: step-up redirect for a browser, MFA_REQUIRED for fetches and bearer tokens, nothing for a proved factor', () => {
  const cfg = parseConfig(ROUTES, ENV);
  const check = createMfaCheck(cfg.routes[0] as (typeof cfg.routes)[number], cfg.auth);
  assert.ok(check);
  const session: Principal = { subject: 'ana', roles: ['staff'], method: 'session', factors: ['password'] };
  const nav = ctx(session);
  assert.deepEqual(check(nav), { answer: 302 });
  assert.equal((nav.reply.headers as Record<string, string>).location, '/auth/login?rd=%2Fadmin%2Fx%3Fa%3D1');
  const code = (c: RequestContext, step: NonNullable<typeof check> = check): string | undefined => {
    try {
      step(c);
      return undefined;
    } catch (err) {
      return isGatewayError(err) ? err.code : String(err);
    }
  };
  assert.equal(code(ctx(session, 'application/json')), 'MFA_REQUIRED');
  assert.equal(code(ctx(session, 'text/html', 'POST')), 'MFA_REQUIRED');
  assert.equal(code(ctx({ subject: 'client:ops', roles: ['api'], method: 'jwt' })), 'MFA_REQUIRED', 'bearer tokens never pass');
  assert.equal(code(ctx({ subject: 'client:ops', roles: ['api'], method: 'jwt', factors: ['password', 'totp'] })), 'MFA_REQUIRED', 'not even one claiming factors');
  assert.equal(check(ctx({ ...session, factors: ['password', 'totp'] })), undefined);

  // On a route without mfa: required only sessions of required roles are checked; API clients with admin are not.
  const plain = createMfaCheck(cfg.routes[1] as (typeof cfg.routes)[number], cfg.auth);
  assert.ok(plain);
  assert.equal(plain(ctx({ subject: 'client:ops', roles: ['admin'], method: 'jwt' })), undefined);
  assert.equal(plain(ctx({ subject: 'ana', roles: ['staff'], method: 'session', factors: ['password'] })), undefined);
  assert.equal(code(ctx({ subject: 'root', roles: ['admin'], method: 'session', factors: ['password'] }, 'application/json'), plain), 'MFA_REQUIRED', 'an admin session without a second factor');
  assert.deepEqual(plain(ctx({ subject: 'root', roles: ['admin'], method: 'session', factors: ['password'] })), { answer: 302 }, 'step-up in a browser');
  assert.equal(createMfaCheck(cfg.routes[1] as (typeof cfg.routes)[number], { ...cfg.auth, mfa: { requiredRoles: [] } }), undefined, 'no check built when nothing can need it');
});

test('rpID default: the parent domain, or the host itself when the parent is a top-level name', () => {
  assert.equal(parentDomain('crm.example.com'), 'example.com');
  assert.equal(parentDomain('a.b.example.co.uk'), 'b.example.co.uk');
  assert.equal(parentDomain('nocodb.localhost'), 'nocodb.localhost');
  assert.equal(parentDomain('example.com'), 'example.com');
});
