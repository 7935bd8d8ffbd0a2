import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { addClient, addUser, CookieJar, createTestDatabase, expectRefused, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { totpCode, newTotpSecret } from '../../src/auth/mfa/totp.js';
import { hashRecoveryCode, newRecoveryCodes } from '../../src/auth/mfa/recovery.js';
import { MFA_COOKIE } from '../../src/auth/cookies.js';
import { randomClientIp } from '../helpers/session-client.js';

// The second factor over plain HTTP (the browser flows are in test/e2e/mfa.test.ts): hostile
// requests to /auth/mfa/*, bearer tokens on `mfa: required` routes, and the factors in PostgreSQL
// (single use under concurrency, migration 102).

const PASSWORD = 'integration mfa password';
const HOST = 'app.test.local';
const IP = randomClientIp();
let gw: AuthTestGateway;
let db: { url: string; drop(): Promise<void> };

before(async () => {
  db = await createTestDatabase('crmgw_mfa');
  gw = await startAuthGateway({
    routes: `
  - name: app
    host: ${HOST}
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    mfa: required
`,
    databaseUrl: db.url,
    redis: true,
    // Each run signs in from an address of its own: Redis keeps the per-address sign-in limits of earlier runs.
    env: { TRUSTED_PROXIES: '127.0.0.1' },
  });
});

after(async () => {
  await gw?.close();
  await db?.drop();
});

/** Host with the port, as browsers send it (the CSRF check compares Origin with it). */
const host = (): string => `${HOST}:${gw.port}`;
const form = (jar: CookieJar, path: string, fields: Record<string, string>, extra: Record<string, string> = {}) =>
  gw.request({ method: 'POST', path, host: host(), servername: HOST, headers: { 'x-forwarded-for': IP, cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', origin: `https://${HOST}:${gw.port}`, accept: 'application/json', ...extra }, body: new URLSearchParams(fields).toString() });

/** Password step of a user with a factor: returns the jar (pending cookie, CSRF cookie) and the CSRF token. */
async function passwordStep(user: string): Promise<{ jar: CookieJar; csrf: string }> {
  const jar = new CookieJar();
  const page = await gw.request({ path: '/auth/login', host: host(), servername: HOST, headers: { 'x-forwarded-for': IP } });
  jar.take(page);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
  const res = await form(jar, '/auth/login', { csrf, username: user, password: PASSWORD, rd: '/' });
  jar.take(res);
  assert.equal(res.status, 303, res.body.slice(0, 200));
  assert.equal(res.headers.location, '/auth/mfa');
  assert.ok(jar.get(MFA_COOKIE), 'pending second-factor cookie');
  const mfaPage = await gw.request({ path: '/auth/mfa', host: host(), servername: HOST, headers: { 'x-forwarded-for': IP, cookie: jar.header() } });
  jar.take(mfaPage);
  return { jar, csrf: /name="csrf" value="([^"]+)"/.exec(mfaPage.body)?.[1] ?? '' };
}

async function enrolled(name: string): Promise<{ secret: string; codes: string[] }> {
  await addUser(gw.auth, name, PASSWORD, ['staff']);
  const secret = newTotpSecret();
  const codes = newRecoveryCodes();
  await gw.auth.factors.enrolTotp(name, gw.auth.sealer.seal(secret, name), codes.map((c) => hashRecoveryCode(name, c) as string));
  return { secret, codes };
}

test('an API client bearer token on an mfa: required route: 403 MFA_REQUIRED, nothing forwarded', async () => {
  const robot = uniq('mfa-robot');
  await addClient(gw.auth, robot, ['api']);
  const token = gw.auth.tokens.issue({ sub: `client:${robot}`, roles: ['api'], ttlMs: 60_000, typ: 'access' }).token;
  await expectRefused(gw, { path: '/v1/things', host: 'api.test.local', headers: { authorization: `Bearer ${token}` } }, 403, 'MFA_REQUIRED');
  // A user's access token claiming factors in `amr` does not pass either: bearer tokens never do.
  const user = gw.auth.tokens.issue({ sub: `client:${robot}`, roles: ['api'], ttlMs: 60_000, typ: 'access', amr: ['password', 'totp'] }).token;
  await expectRefused(gw, { path: '/v1/things', host: 'api.test.local', headers: { authorization: `Bearer ${user}` } }, 403, 'MFA_REQUIRED');
});

test('hostile second-factor requests: no pending sign-in, no CSRF token, another host, a forged pending cookie', async (t) => {
  // A name of its own per run: Redis keeps the sign-in limits of earlier runs for 15 minutes.
  const name = uniq('mfa-hostile');
  const { secret } = await enrolled(name);
  const { jar, csrf } = await passwordStep(name);
  const seen = gw.upstream.seen.length;
  // No pending cookie at all.
  const bare = new CookieJar();
  bare.cookies.set('__Host-crmgw_csrf', jar.get('__Host-crmgw_csrf') ?? '');
  const none = await form(bare, '/auth/mfa/totp', { csrf, code: totpCode(secret) });
  assert.equal(none.status, 401);
  assert.equal(none.json<{ error: { code: string } }>().error.code, 'MFA_EXPIRED');
  // A forged pending id.
  const forged = new CookieJar();
  forged.cookies.set('__Host-crmgw_csrf', jar.get('__Host-crmgw_csrf') ?? '');
  forged.cookies.set(MFA_COOKIE, 'A'.repeat(43));
  assert.equal((await form(forged, '/auth/mfa/totp', { csrf, code: totpCode(secret) })).json<{ error: { code: string } }>().error.code, 'MFA_EXPIRED');
  // Without the CSRF token (a cross-site form): refused before the code is looked at.
  const noCsrf = await form(jar, '/auth/mfa/totp', { code: totpCode(secret) });
  assert.equal(noCsrf.status, 403);
  assert.equal(noCsrf.json<{ error: { code: string } }>().error.code, 'CSRF_REJECTED');
  // The pending state on another host of the gateway is not this one's.
  const other = await gw.request({ method: 'POST', path: '/auth/mfa/totp', host: `api.test.local:${gw.port}`, servername: 'api.test.local', headers: { 'x-forwarded-for': IP, cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', origin: `https://api.test.local:${gw.port}`, accept: 'application/json' }, body: new URLSearchParams({ csrf, code: totpCode(secret) }).toString() });
  assert.equal(other.json<{ error: { code: string } }>().error.code, 'MFA_EXPIRED');
  // A code that is not six digits.
  const junk = await form(jar, '/auth/mfa/totp', { csrf, code: '12345678901234567890' });
  assert.equal(junk.status, 401);
  assert.equal(gw.upstream.seen.length, seen, 'nothing reached the upstream');
  // The real code still works once, then the pending sign-in is gone.
  const t0 = performance.now();
  const ok = await form(jar, '/auth/mfa/totp', { csrf, code: totpCode(secret) });
  t.diagnostic(`TOTP step to session (PostgreSQL + Redis): ${(performance.now() - t0).toFixed(1)} ms`);
  assert.equal(ok.status, 303, ok.body.slice(0, 200));
  jar.take(ok);
  assert.ok(jar.get('__Host-crmgw_at'), 'session cookie set by CompleteSignIn');
  // Posting again (the session's sign-in replaced the CSRF cookie, so that refuses first): no second session.
  const again = await form(jar, '/auth/mfa/totp', { csrf, code: totpCode(secret, Date.now() + 30_000) });
  assert.ok(['MFA_EXPIRED', 'CSRF_REJECTED'].includes(again.json<{ error: { code: string } }>().error.code));
  assert.ok(!(again.headers['set-cookie'] ?? []).some((c) => c.startsWith('__Host-crmgw_at=')));
  assert.equal(jar.get(MFA_COOKIE), undefined, 'the pending cookie was cleared with the success');
});

test('PostgreSQL: one TOTP step and one recovery code each accepted once under 20 concurrent tries; sealed, hashed at rest', async () => {
  const pgUser = uniq('mfa-pg');
  const { secret, codes } = await enrolled(pgUser);
  const f = gw.auth.factors;
  const step = Math.floor(Date.now() / 30_000);
  const steps = await Promise.all(Array.from({ length: 20 }, () => f.acceptTotpStep(pgUser, step)));
  assert.equal(steps.filter(Boolean).length, 1);
  assert.equal(await f.acceptTotpStep(pgUser, step - 1), false, 'an earlier step after a later one');
  const hash = hashRecoveryCode(pgUser, codes[0] as string) as string;
  const uses = await Promise.all(Array.from({ length: 20 }, () => f.useRecoveryCode(pgUser, hash)));
  assert.equal(uses.filter(Boolean).length, 1);
  const { rows } = await (gw.postgres as NonNullable<typeof gw.postgres>).query<{ totp_sealed: string; recovery_hashes: string[] }>('SELECT totp_sealed, recovery_hashes FROM gateway_user_factors WHERE user_name = $1', [pgUser]);
  const sealed = rows[0]?.totp_sealed ?? '';
  assert.ok(sealed !== '' && !sealed.includes(secret), 'the TOTP secret is not stored in clear');
  // The one sealer's form (src/stores/sealed.ts), base64url: version 1, IV, tag, then the ciphertext.
  const raw = Buffer.from(sealed, 'base64url');
  assert.equal(raw[0], 1);
  assert.ok(!raw.includes(Buffer.from(secret)), 'nor in the decoded bytes');
  assert.equal(gw.auth.sealer.open(sealed, pgUser)?.plain, secret);
  assert.equal(rows[0]?.recovery_hashes.length, 9);
  assert.ok(!rows[0]?.recovery_hashes.some((h) => codes.some((c) => h.includes(c.replaceAll('-', '')))));
  // Passkey counters move forward once.
  await f.addPasskey({ id: `cred-${pgUser}`, user: pgUser, publicKey: 'AA', counter: 5, transports: ['internal'], createdAt: new Date() });
  const moves = await Promise.all(Array.from({ length: 10 }, () => f.usePasskey(`cred-${pgUser}`, 5, 6)));
  assert.equal(moves.filter(Boolean).length, 1);
  assert.deepEqual(await f.reset(pgUser), { totp: true, recoveryCodes: 9, passkeys: 1 });
});
