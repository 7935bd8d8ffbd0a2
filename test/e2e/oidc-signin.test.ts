import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { axeViolations } from '../helpers/axe.js';
import { ACCESS_COOKIE, OIDC_STATE_COOKIE } from '../../src/auth/cookies.js';
import { startAuthGateway, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { freePort } from '../helpers/ports.js';
import { startTestProvider, type TestProvider } from '../helpers/oidc-provider.js';
import { totpCode } from '../../src/auth/mfa/totp.js';

// Issue 14, item 3 in a real browser: the login page's provider button → the provider's own
// login and consent pages (oidc-provider's development interactions) → back at the gateway,
// signed in → the upstream sees the person. Refusals are test/integration/oidc-signin.test.ts.

const TEST_TIMEOUT_MS = 60_000;

let browser: TestBrowser;
let gw: AuthTestGateway;
let provider: TestProvider;
let origin: string;

before(async () => {
  const port = await freePort();
  origin = `https://nocodb.localhost:${port}`;
  provider = await startTestProvider({
    accounts: {
      'ana.garcia': { email: 'ana.garcia@example.com', email_verified: true, groups: ['crm-staff'], name: 'Ana García' },
      'root.admin': { email: 'root.admin@example.com', email_verified: true, groups: ['crm-staff', 'crm-root'], name: 'Root Admin' },
    },
    redirectUris: [`${origin}/auth/oidc/callback`],
  });
  gw = await startAuthGateway({
    routes: `
  - name: nocodb
    host: nocodb.localhost
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: metabase
    host: metabase.localhost
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`,
    env: { GATEWAY_DOMAIN: 'localhost', HTTPS_PORT: String(port), OIDC_CLIENT_SECRET: provider.clientSecret },
    extraYaml: `auth:
  oidc:
    issuer: ${provider.issuer}
    clientId: ${provider.clientId}
    caFile: ${provider.caFile}
    scopes: [openid, email, groups]
    allowedEmailDomains: [example.com]
    roleMapping: [{ claim: groups, value: crm-staff, roles: [staff] }, { claim: groups, value: crm-root, roles: [admin] }]
    buttonLabel: Example Workspace
`,
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await provider?.close();
});

test('a browser signs in through the provider: button, provider login and consent, back signed in, upstream sees the person', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const context = await browser.newContext({ locale: 'en-GB' });
  t.after(() => context.close());
  // The provider's development pages @import a web font; nothing leaves the machine.
  await context.route(/fonts\.googleapis\.com/, (route) => route.abort());
  const page = await context.newPage();
  const seenBefore = gw.upstream.seen.length;

  await page.goto(`${origin}/tables/customers?view=2`);
  assert.equal(new URL(page.url()).pathname, '/auth/login');
  const button = page.getByRole('link', { name: 'Sign in with Example Workspace' });
  assert.equal(await button.count(), 1, 'the login page shows the provider button');
  assert.equal(await page.locator('#password').count(), 1, 'and the local form (break-glass)');

  const t0 = performance.now();
  await Promise.all([page.waitForURL((u) => u.origin === provider.issuer), button.click()]);
  // The provider's login page (any login name; the password is not checked by dev interactions).
  await page.fill('input[name=login]', 'ana.garcia');
  await page.fill('input[name=password]', 'anything');
  await Promise.all([page.waitForURL((u) => u.origin === provider.issuer && u.pathname.startsWith('/interaction/')), page.click('button[type=submit]')]);
  // Consent, then the provider sends the browser back to the callback, and the gateway on.
  await Promise.all([page.waitForURL(`${origin}/tables/customers?view=2`), page.click('button[type=submit]')]);
  const ms = performance.now() - t0;

  const echo = JSON.parse((await page.locator('body pre').first().textContent()) ?? '') as { path: string; headers: Record<string, string> };
  assert.equal(echo.path, '/tables/customers?view=2');
  assert.match(echo.headers['x-gateway-user'] ?? '', /^oidc:[0-9a-f]{8}:ana\.garcia$/);
  assert.equal(gw.upstream.seen.length, seenBefore + 1, 'the upstream saw the one page, after sign-in');
  const cookies = await context.cookies(origin);
  assert.ok(cookies.some((c) => c.name === ACCESS_COOKIE && c.httpOnly && c.secure), 'the session cookie');
  assert.ok(!cookies.some((c) => c.name === OIDC_STATE_COOKIE), 'the state cookie is gone');
  const ok = gw.log.securityEvents.find((e) => e.event === 'auth.login_succeeded' && e.method === 'oidc');
  assert.deepEqual(ok?.factors, ['oidc']);
  console.log(`# OIDC sign-in round trip in Chromium (provider button → provider login and consent → signed-in page): ${ms.toFixed(0)} ms`);

  // Going back to the callback URL (history, a shared link) starts nothing: the state is used.
  const callback = gw.log.accessEntries.map((e) => String(e.path ?? '')).find((p) => p.startsWith('/auth/oidc/callback'));
  assert.ok(callback, 'the callback is in the access log');
  const replay = await page.goto(`${origin}${callback}${callback.includes('?') ? '' : `?${String(gw.log.accessEntries.find((e) => String(e.path).startsWith('/auth/oidc/callback'))?.query ?? '')}`}`);
  assert.equal(replay?.status(), 400);
  assert.match(await page.content(), /OIDC_STATE_INVALID/);
  assert.equal(gw.upstream.seen.length, seenBefore + 1, 'nothing more reached the upstream');
});

test('one login across hosts: a person starting on metabase signs in at the provider once and lands back on metabase, then nocodb needs no sign-in', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const context = await browser.newContext({ locale: 'en-GB' });
  t.after(() => context.close());
  await context.route(/fonts\.googleapis\.com/, (route) => route.abort());
  const page = await context.newPage();
  const metabase = origin.replace('nocodb.', 'metabase.');
  await page.goto(`${metabase}/dashboard/7`);
  // The login page is the sign-in host's (nocodb), reached through the SSO hand-off.
  assert.equal(new URL(page.url()).pathname, '/auth/login');
  const t0 = performance.now();
  await Promise.all([page.waitForURL((u) => u.origin === provider.issuer), page.getByRole('link', { name: 'Sign in with Example Workspace' }).click()]);
  if (await page.locator('input[name=login]').count()) {
    await page.fill('input[name=login]', 'ana.garcia');
    await page.fill('input[name=password]', 'anything');
    await Promise.all([page.waitForURL((u) => u.origin === provider.issuer && u.pathname.startsWith('/interaction/')), page.click('button[type=submit]')]);
  }
  await Promise.all([page.waitForURL(`${metabase}/dashboard/7`), page.click('button[type=submit]')]);
  const ms = performance.now() - t0;
  const echo = JSON.parse((await page.locator('body pre').first().textContent()) ?? '') as { headers: Record<string, string> };
  assert.match(echo.headers['x-gateway-user'] ?? '', /^oidc:[0-9a-f]{8}:ana\.garcia$/);
  await page.goto(`${origin}/tables`);
  assert.equal(new URL(page.url()).pathname, '/tables', 'nocodb: already signed in');
  console.log(`# OIDC sign-in round trip in Chromium across hosts (metabase → sign-in host → provider → metabase): ${ms.toFixed(0)} ms`);
});

// Regression (review of issue 14): an admin (the role needs a second factor) coming back from the
// provider must reach the gateway's enrolment with its pending cookie, which is set on the callback,
// an answer to a cross-site navigation, and sent on the redirect that follows; then land signed in.
test('an admin-mapped person enrols TOTP right after the provider, in Chromium, and lands signed in', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const context = await browser.newContext({ locale: 'en-GB' });
  t.after(() => context.close());
  await context.route(/fonts\.googleapis\.com/, (route) => route.abort());
  const page = await context.newPage();
  const seenBefore = gw.upstream.seen.length;
  await page.goto(`${origin}/tables/admin?x=1`);
  await Promise.all([page.waitForURL((u) => u.origin === provider.issuer), page.getByRole('link', { name: 'Sign in with Example Workspace' }).click()]);
  await page.fill('input[name=login]', 'root.admin');
  await page.fill('input[name=password]', 'anything');
  await Promise.all([page.waitForURL((u) => u.origin === provider.issuer && u.pathname.startsWith('/interaction/')), page.click('button[type=submit]')]);
  await Promise.all([page.waitForURL((u) => u.origin === origin && !u.pathname.startsWith('/auth/oidc/')), page.click('button[type=submit]')]);
  assert.equal(new URL(page.url()).pathname, '/auth/mfa/totp/enrol', `the enrolment page, with the pending sign-in: ${page.url()}`);
  assert.ok(!(await context.cookies(origin)).some((c) => c.name === ACCESS_COOKIE), 'no session before the second factor');
  const secret = (await page.locator('#totp-secret').getAttribute('data-secret')) ?? '';
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await page.fill('#code', totpCode(secret));
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/totp/enrol"] button[type=submit]')]);
  assert.equal(await page.locator('#recovery-codes code').count(), 10, 'the recovery codes, once');
  await Promise.all([page.waitForURL(`${origin}/tables/admin?x=1`), page.click('#continue')]);
  const echo = JSON.parse((await page.locator('body pre').first().textContent()) ?? '') as { headers: Record<string, string> };
  assert.match(echo.headers['x-gateway-user'] ?? '', /^oidc:[0-9a-f]{8}:root\.admin$/);
  assert.equal(gw.upstream.seen.length, seenBefore + 1, 'the upstream saw only the page after sign-in');
  const ok = gw.log.securityEvents.filter((e) => e.event === 'auth.login_succeeded' && String(e.user).endsWith(':root.admin')).at(-1);
  assert.deepEqual(ok?.factors, ['oidc', 'totp']);
  assert.deepEqual([...(ok?.roles as string[])].sort(), ['admin', 'staff']);
});

test('the login page with the provider button: its style passes the CSP, axe-core finds nothing, in Spanish and English', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  for (const locale of ['es-ES', 'en-US']) {
    const strict = await browser.newContext({ locale });
    t.after(() => strict.close());
    const page = await strict.newPage();
    const violations: string[] = [];
    page.on('console', (m) => (/Content Security Policy/i.test(m.text()) ? violations.push(m.text()) : undefined));
    await page.goto(`${origin}/auth/login`);
    const button = page.locator('a.sso');
    assert.equal(await button.textContent(), locale === 'es-ES' ? 'Iniciar sesión con Example Workspace' : 'Sign in with Example Workspace');
    assert.equal(await button.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { display: string } }).getComputedStyle(el).display), 'block', 'the style applies under the CSP');
    assert.deepEqual(violations, []);
    // bypassCSP lets axe in (as test/e2e/pages-i18n.test.ts does).
    const open = await browser.newContext({ locale, bypassCSP: true });
    t.after(() => open.close());
    const axePage = await open.newPage();
    await axePage.goto(`${origin}/auth/login`);
    assert.deepEqual(await axeViolations(axePage), [], `${locale}: axe-core`);
  }
});
