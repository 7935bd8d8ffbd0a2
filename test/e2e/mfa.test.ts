import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchBrowser, openPage, signInAtGateway, type TestBrowser } from '../helpers/browser.js';
import { addUser, CookieJar, startAuthGateway, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { testCertificate } from '../helpers/harness.js';
import { loadWebauthnScript } from '../../src/auth/mfa/static.js';
import { freePort } from '../helpers/ports.js';
import { runCli } from '../helpers/cli.js';
import { totpCode } from '../../src/auth/mfa/totp.js';
import { hashRecoveryCode, newRecoveryCodes } from '../../src/auth/mfa/recovery.js';
import { newTotpSecret } from '../../src/auth/mfa/totp.js';

// Issue 14, item 2, in real Chromium: TOTP enrolled from the page (its key read off the page, codes
// computed here with otpauth), a code used twice, wrong codes counted toward the lockout, a
// recovery code once then refused, passkeys through Chromium's virtual authenticator (CDP
// WebAuthn domain), an assertion made on another origin, and the `mfa: required` step-up.

const TEST_TIMEOUT_MS = 90_000;
const PASSWORD = 'second factor test password';

let browser: TestBrowser;
let gw: AuthTestGateway;
let origin: string;

before(async () => {
  gw = await startAuthGateway({
    routes: `
  - name: nocodb-admin
    host: nocodb.localhost
    path: /admin
    upstream: UPSTREAM
    auth: session
    roles: [staff]
    mfa: required
  - name: nocodb
    host: nocodb.localhost
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: api
    host: api.localhost
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
`,
    extraYaml: 'auth:\n  passkeys:\n    signIn: true\n',
    env: { GATEWAY_DOMAIN: 'localhost', HTTPS_PORT: String(await freePort()) },
  });
  origin = `https://nocodb.localhost:${gw.port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.close();
});

interface Echo {
  path: string;
  headers: Record<string, string>;
}
async function shownEcho(page: Page): Promise<Echo> {
  return JSON.parse((await page.locator('body pre').first().textContent()) ?? '') as Echo;
}

async function submitCode(page: Page, code: string): Promise<void> {
  await page.fill('#code', code);
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/totp"] button[type=submit], form[action$="/totp/enrol"] button[type=submit]')]);
}

async function submitRecovery(page: Page, code: string): Promise<void> {
  await page.click('details summary');
  await page.fill('#recovery', code);
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/recovery"] button[type=submit]')]);
}

const alertCode = async (page: Page): Promise<string | null> => page.locator('#mfa-error').getAttribute('data-code');
const webauthnBundle = async (): Promise<string> => (await loadWebauthnScript()).body;
const events = (name: string, user: string): Record<string, unknown>[] => gw.log.securityEvents.filter((e) => e.event === name && e.user === user) as Record<string, unknown>[];

/** A user with TOTP and recovery codes already enrolled (sealed as the gateway does). */
async function enrolled(name: string, roles: string[]): Promise<{ secret: string; codes: string[] }> {
  await addUser(gw.auth, name, PASSWORD, roles);
  const secret = newTotpSecret();
  const codes = newRecoveryCodes();
  await gw.auth.factors.enrolTotp(name, gw.auth.sealer.seal(secret, name), codes.map((c) => hashRecoveryCode(name, c) as string));
  return { secret, codes };
}

test('forced TOTP enrolment for an admin: QR and key on the page, wrong code refused and counted, recovery codes once, then the session', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const user = 'mfa-admin';
  await addUser(gw.auth, user, PASSWORD, ['staff', 'admin']);
  const { page, context } = await openPage(browser, t);
  const seen = gw.upstream.seen.length;

  await page.goto(`${origin}/records?x=1`);
  assert.equal(new URL(page.url()).pathname, '/auth/login');
  await signInAtGateway(page, user, PASSWORD);
  // The admin role requires a second factor and there is none: enrolment before any session.
  assert.equal(new URL(page.url()).pathname, '/auth/mfa/totp/enrol');
  assert.ok((await context.cookies(origin)).every((c) => c.name !== '__Host-crmgw_at'), 'no session cookie yet');
  assert.equal(await page.locator('#totp-qr svg').count(), 1, 'a QR code, drawn server-side as SVG');
  const secret = (await page.locator('#totp-secret').getAttribute('data-secret')) ?? '';
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.deepEqual(await page.evaluate('window.__cspViolations'), [], 'the page CSP blocks nothing of its own');

  // A wrong code: the page again with MFA_INVALID, and a failed login counted.
  const wrong = totpCode(secret) === '000000' ? '000001' : '000000';
  await submitCode(page, wrong);
  assert.equal(await alertCode(page), 'MFA_INVALID');
  assert.equal(events('auth.mfa_failed', user).at(-1)?.reason, 'wrong totp code at enrolment');
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.login_failed' && e.user === `mfa:${user}`), 'counted as a failed login');
  assert.equal(await page.locator('#totp-secret').getAttribute('data-secret'), secret, 'the same key is offered again');

  // The right code: ten recovery codes, shown once, then on to the page first asked for.
  await submitCode(page, totpCode(secret));
  const codes = await page.locator('#recovery-codes code').allTextContents();
  assert.equal(codes.length, 10);
  assert.equal(gw.upstream.seen.length, seen, 'nothing reached the upstream during the sign-in');
  await Promise.all([page.waitForNavigation(), page.click('#continue')]);
  assert.equal(page.url(), `${origin}/records?x=1`);
  assert.equal((await shownEcho(page)).headers['x-gateway-user'], user);
  const ok = events('auth.login_succeeded', user).at(-1);
  assert.deepEqual(ok?.factors, ['password', 'totp']);
  assert.equal(events('auth.mfa_enrolled', user).length, 1);

  // At rest: the secret sealed, the codes hashed.
  const stored = readFileSync(join(gw.dataDir, 'factors.json'), 'utf8');
  assert.ok(!stored.includes(secret), 'the TOTP secret is not stored in clear');
  for (const c of codes) assert.ok(!stored.includes(c) && !stored.includes(c.replaceAll('-', '')), 'no recovery code in clear');

  // The mfa: required route lets this session through (it proved a second factor).
  await page.goto(`${origin}/admin/panel`);
  assert.equal((await shownEcho(page)).path, '/admin/panel');
});

test('a TOTP sign-in: next code accepted, the same code again refused (MFA_REPLAYED), nothing forwarded', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const user = 'mfa-totp';
  const { secret } = await enrolled(user, ['staff']);
  const code = totpCode(secret);
  const first = await openPage(browser, t);
  await first.page.goto(`${origin}/a`);
  await signInAtGateway(first.page, user, PASSWORD);
  assert.equal(new URL(first.page.url()).pathname, '/auth/mfa', 'an enrolled user is asked for the second factor');
  await submitCode(first.page, code);
  assert.equal(first.page.url(), `${origin}/a`);
  assert.deepEqual(events('auth.login_succeeded', user).at(-1)?.factors, ['password', 'totp']);

  // Someone who saw the code (and knows the password) uses it again within its 30 s.
  const second = await openPage(browser, t);
  const seen = gw.upstream.seen.length;
  await second.page.goto(`${origin}/b`);
  await signInAtGateway(second.page, user, PASSWORD);
  await submitCode(second.page, code);
  assert.equal(new URL(second.page.url()).pathname, '/auth/mfa/totp');
  assert.equal(await alertCode(second.page), 'MFA_REPLAYED');
  assert.equal(events('auth.mfa_failed', user).at(-1)?.reason, 'replayed totp code');
  assert.ok((await second.context.cookies(origin)).every((c) => c.name !== '__Host-crmgw_at'), 'no session');
  assert.equal(gw.upstream.seen.length, seen, 'nothing reached the upstream');
});

test('recovery code: works once, then refused; a tampered one refused; wrong codes lock the account (AUTH_LOCKED)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const user = 'mfa-recovery';
  const { codes } = await enrolled(user, ['staff']);
  const code = codes[0] as string;
  const { page, context } = await openPage(browser, t);
  await page.goto(`${origin}/r`);
  await signInAtGateway(page, user, PASSWORD);
  await submitRecovery(page, code.toLowerCase());
  assert.equal(page.url(), `${origin}/r`);
  assert.deepEqual(events('auth.login_succeeded', user).at(-1)?.factors, ['password', 'recovery']);
  assert.equal(events('auth.recovery_code_used', user).at(-1)?.remaining, 9);

  await context.clearCookies();
  const seen = gw.upstream.seen.length;
  await page.goto(`${origin}/r`);
  await signInAtGateway(page, user, PASSWORD);
  await submitRecovery(page, code);
  assert.equal(await alertCode(page), 'MFA_INVALID', 'a used code');
  const tampered = `${code.slice(0, -1)}${code.endsWith('A') ? 'B' : 'A'}`;
  await submitRecovery(page, tampered);
  assert.equal(await alertCode(page), 'MFA_INVALID', 'a tampered code');
  // Two failures so far; three more reach the per-user threshold (5), then the lock holds.
  for (let i = 0; i < 3; i++) await submitCode(page, '000000');
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.lockout' && e.user === `mfa:${user}`), 'locked after five wrong codes');
  await submitCode(page, '000000');
  assert.equal(await alertCode(page), 'AUTH_LOCKED');
  assert.ok((await context.cookies(origin)).every((c) => c.name !== '__Host-crmgw_at'), 'no session');
  assert.equal(gw.upstream.seen.length, seen, 'nothing reached the upstream');
});

test('passkeys: registered from a session, then the second factor, then a sign-in of their own; an assertion made on another origin is refused', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const user = 'mfa-passkey';
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const { page, context } = await openPage(browser, t);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });

  // Password only (no factor, no role that needs one): a session; then a passkey from it.
  await page.goto(`${origin}/p`);
  await signInAtGateway(page, user, PASSWORD);
  assert.equal(page.url(), `${origin}/p`);
  await page.goto(`${origin}/auth/mfa/totp/enrol`);
  await Promise.all([page.waitForNavigation(), page.click('#passkey-register')]);
  assert.equal((await page.locator('#recovery-codes code').count()), 10, 'recovery codes come with the first factor');
  assert.equal(events('auth.passkey_registered', user).length, 1);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0]?.isResidentCredential, true);
  assert.equal(credentials[0]?.rpId, 'nocodb.localhost', 'rpID: the sign-in host (its parent `localhost` is a top-level name)');

  // Second factor: password, then the passkey.
  await context.clearCookies();
  await page.goto(`${origin}/q`);
  await signInAtGateway(page, user, PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/auth/mfa');
  await Promise.all([page.waitForNavigation(), page.click('#passkey-auth')]);
  assert.equal(page.url(), `${origin}/q`);
  assert.deepEqual(events('auth.login_succeeded', user).at(-1)?.factors, ['password', 'webauthn']);

  // A sign-in of its own (auth.passkeys.signIn): no password.
  await context.clearCookies();
  await page.goto(`${origin}/s`);
  await Promise.all([page.waitForNavigation(), page.click('#passkey-sign-in')]);
  assert.equal(new URL(page.url()).pathname, '/auth/mfa/passkey', 'offered on the login page');
  await Promise.all([page.waitForNavigation(), page.click('#passkey-signin')]);
  assert.equal(page.url(), `${origin}/s`);
  const signIn = events('auth.login_succeeded', user).at(-1);
  assert.deepEqual(signIn?.factors, ['webauthn']);
  assert.equal(signIn?.method, 'passkey');
  assert.deepEqual(await page.evaluate('window.__cspViolations'), [], 'scripts load under the page CSP');

  // A page on another origin (same host name, another port: a phishing proxy, say) runs the
  // ceremony with a challenge the gateway issued; the browser signs it for that origin, and the
  // gateway refuses the assertion.
  const cert = await testCertificate();
  const foreign = createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (_req, res) => res.end('<!doctype html><title>elsewhere</title>'));
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => foreign.close(() => resolve())));
  const foreignOrigin = `https://nocodb.localhost:${(foreign.address() as AddressInfo).port}`;
  const jar = new CookieJar();
  const host = `nocodb.localhost:${gw.port}`;
  const signInPage = await gw.request({ path: '/auth/mfa/passkey?rd=/', host, servername: 'nocodb.localhost' });
  jar.take(signInPage);
  const csrf = /name="csrf" value="([^"]+)"/.exec(signInPage.body)?.[1] ?? '';
  const optionsRes = await gw.request({ path: '/auth/mfa/passkey/options?for=signin&rd=/', host, servername: 'nocodb.localhost', headers: { cookie: jar.header() } });
  jar.take(optionsRes);
  assert.equal(optionsRes.status, 200);
  await page.goto(foreignOrigin);
  await page.addScriptTag({ content: await webauthnBundle() });
  const credential = await page.evaluate(`SimpleWebAuthnBrowser.startAuthentication({ optionsJSON: ${optionsRes.body} })`);
  assert.equal(JSON.parse(Buffer.from((credential as { response: { clientDataJSON: string } }).response.clientDataJSON, 'base64url').toString('utf8')).origin, foreignOrigin, 'the browser signed for the other origin');
  const seen = gw.upstream.seen.length;
  const refused = await gw.request({
    method: 'POST',
    path: '/auth/mfa/passkey/verify',
    host,
    servername: 'nocodb.localhost',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', origin, accept: 'text/html' },
    body: new URLSearchParams({ csrf, credential: JSON.stringify(credential) }).toString(),
  });
  assert.equal(refused.status, 401);
  assert.match(refused.body, /data-code="PASSKEY_INVALID"/);
  const why = events('auth.mfa_failed', user).at(-1);
  assert.equal(why?.reason, 'passkey assertion refused');
  assert.match(String(why?.detail), /origin/i, 'refused for its origin');
  assert.ok(!(refused.headers['set-cookie'] ?? []).some((c) => c.startsWith('__Host-crmgw_at=')), 'no session');
  assert.equal(gw.upstream.seen.length, seen, 'nothing reached the upstream');
});

test('mfa: required refuses a password-only session (step-up in a browser, MFA_REQUIRED otherwise), nothing forwarded; CLI reset then the next sign-in enrols', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const user = 'mfa-stepup';
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const { page } = await openPage(browser, t);
  await page.goto(`${origin}/plain`);
  await signInAtGateway(page, user, PASSWORD);
  assert.equal(page.url(), `${origin}/plain`, 'no factor needed for the plain route');
  // Only what went to the mfa: required route counts (the browser may fetch /favicon.ico on the plain one).
  const adminHits = (): number => gw.upstream.seen.filter((r) => r.url.startsWith('/admin')).length;
  const seen = adminHits();

  // A fetch (not a navigation): 403 MFA_REQUIRED.
  const api = (await page.evaluate(`fetch('/admin/data', { headers: { accept: 'application/json' } }).then(async (r) => ({ status: r.status, body: await r.json() }))`)) as { status: number; body: { error: { code: string } } };
  assert.equal(api.status, 403);
  assert.equal(api.body.error.code, 'MFA_REQUIRED');
  // A navigation: sent to sign in again, and the sign-in now asks for a second factor (enrolment).
  await page.goto(`${origin}/admin/data`);
  assert.equal(new URL(page.url()).pathname, '/auth/login');
  assert.equal(new URL(page.url()).searchParams.get('rd'), '/admin/data');
  assert.equal(adminHits(), seen, 'nothing reached the upstream');
  await signInAtGateway(page, user, PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/auth/mfa/totp/enrol');
  const secret = (await page.locator('#totp-secret').getAttribute('data-secret')) ?? '';
  await submitCode(page, totpCode(secret));
  await Promise.all([page.waitForNavigation(), page.click('#continue')]);
  assert.equal((await shownEcho(page)).path, '/admin/data');

  // The access review sees the factor.
  const review = await runCli(['access', 'report', '--json'], { API_SECRET_KEY: gw.secret, DATA_DIR: gw.dataDir });
  assert.equal(review.code, 0, review.stderr);
  const listed = (JSON.parse(review.stdout) as { users: { name: string; factors: string[] }[] }).users.find((u) => u.name === user);
  assert.deepEqual(listed?.factors, ['password', 'totp']);

  // The CLI resets the factors (audited): the next sign-in must enrol again.
  const cli = await runCli(['users', 'reset-factors', user], { API_SECRET_KEY: gw.secret, DATA_DIR: gw.dataDir });
  assert.equal(cli.code, 0, cli.stderr);
  const reset = cli.events.find((e) => e.event === 'auth.factors_reset');
  assert.equal(reset?.user, user);
  assert.equal(reset?.totp, true);
  assert.equal(typeof reset?.actor, 'string', 'the event names who ran the command');
  const show = await runCli(['users', 'show', user, '--json'], { API_SECRET_KEY: gw.secret, DATA_DIR: gw.dataDir });
  assert.deepEqual(JSON.parse(show.stdout).factors, { totp: null, recoveryCodesLeft: 0, passkeys: [] });
  assert.ok(!show.stdout.includes(secret));
  gw.auth.forget(user);
  await page.goto(`${origin}/admin/again`);
  assert.equal(new URL(page.url()).pathname, '/auth/login', 'the reset ended the session');
  await signInAtGateway(page, user, PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/auth/mfa/totp/enrol');
});
