import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createAdminAuth } from '../../src/auth/admin-auth.js';
import { createAdminServer } from '../../src/admin/server.js';
import { CLIENT_SUBJECT_PREFIX } from '../../src/auth/store/types.js';
import { addClient, addUser, handToken, claimsFor, ringToken, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// The admin listener's /security overview with the admin check main.ts wires: bearer access
// tokens verified like on a `jwt` route (signature, type, revocation, disabled account, role).
const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
`;

let gw: AuthTestGateway;
let admin: Server;
let port: number;

before(async () => {
  gw = await startAuthGateway({ routes: ROUTES });
  const overview = { snapshot: () => ({ generatedAt: new Date().toISOString() }) } as never;
  admin = createAdminServer(gw.config, () => false, { log: gw.log, adminAuth: createAdminAuth(gw.auth), overview, metrics: gw.running.metrics });
  await new Promise<void>((resolve) => admin.listen(0, '127.0.0.1', resolve));
  port = (admin.address() as AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => admin?.close(() => resolve()));
  await gw?.close();
});

function get(path: string, authorization?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: authorization ? { authorization } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function tokenFor(subject: string, roles: string[], typ: 'access' | 'session' = 'access'): Promise<string> {
  return gw.auth.tokens.issue({ sub: subject, roles, ttlMs: 60_000, typ }).token;
}

test('an API client with the admin role reads the overview; its view is a security event', async () => {
  const name = uniq('ops');
  await addClient(gw.auth, name, ['admin']);
  const token = await tokenFor(`${CLIENT_SUBJECT_PREFIX}${name}`, ['admin']);
  assert.equal(await get('/security.json', `Bearer ${token}`), 200);
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'admin.overview_viewed' && e.user === `${CLIENT_SUBJECT_PREFIX}${name}`));
});

test('refused: no token, a forged or typ-session token, a revoked token, a disabled account, a non-admin', async () => {
  const name = uniq('ops');
  await addClient(gw.auth, name, ['admin']);
  const sub = `${CLIENT_SUBJECT_PREFIX}${name}`;
  assert.equal(await get('/security.json', `Bearer ${ringToken(gw.secret, claimsFor(sub, { roles: ['admin'] }))}`), 200, 'control: the same claims, signed with the ring key');
  assert.equal(await get('/security.json'), 401, 'no credentials');
  assert.equal(await get('/security.json', `Bearer ${handToken({ alg: 'HS256', typ: 'JWT' }, claimsFor(sub, { roles: ['admin'] }), 'not-the-key')}`), 401, 'forged');
  assert.equal(await get('/security.json', `Bearer ${handToken({ alg: 'none', typ: 'JWT' }, claimsFor(sub, { roles: ['admin'] }), undefined)}`), 401, 'alg none');
  assert.equal(await get('/security.json', `Bearer ${await tokenFor(sub, ['admin'], 'session')}`), 401, 'a session token is not a bearer token');

  const revoked = gw.auth.tokens.issue({ sub, roles: ['admin'], ttlMs: 60_000, typ: 'access' });
  await gw.auth.revocations.revoke(revoked.claims.jti, revoked.claims.exp);
  assert.equal(await get('/security.json', `Bearer ${revoked.token}`), 401, 'revoked');

  const user = uniq('viewer');
  await addUser(gw.auth, user, 'a long enough password here', ['staff']);
  assert.equal(await get('/security.json', `Bearer ${await tokenFor(user, ['staff'])}`), 403, 'valid, but not an admin');

  const off = uniq('off');
  await addUser(gw.auth, off, 'a long enough password here', ['admin'], true);
  assert.equal(await get('/security.json', `Bearer ${await tokenFor(off, ['admin'])}`), 401, 'disabled account');
});
