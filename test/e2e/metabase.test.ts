import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { launchBrowser, recordCspViolations, type TestBrowser, signInAtGateway } from '../helpers/browser.js';
import { addUser, startAuthGateway, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/wait.js';
import { METABASE_SESSION_COOKIE, METABASE_TIMEOUT_COOKIE, startMetabaseStandIn, type MetabaseStandIn } from '../helpers/apps/metabase-standin.js';
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/cookies.js';
import { freePort } from '../helpers/ports.js';

/**
 * One analyst flow through the gateway in Chromium against the Metabase stand-in (see
 * test/helpers/apps/metabase-standin.ts for the release and behaviours it copies): sign in at the
 * gateway; Metabase's page runs under its own hashed CSP with no violation (the gateway adds no
 * second policy); Metabase's own sign-in sets metabase.SESSION; a streamed question runs longer
 * than the gateway's access cookie lives, completes, and the session renews after it; logout
 * clears metabase.SESSION (issue 12 item 3); the next user sees none of the previous one's.
 * Steps are separate tests on one browser context, in order.
 */

const TEST_TIMEOUT_MS = 60_000;
const SESSION_TTL_MS = 3_000;
/** Metabase streams queries for up to 10 minutes; here twice the access cookie's life. */
const QUERY_MS = 6_000;
const KEEPALIVE_MS = 500;
const ANALYSTS = [
  { gateway: 'mb-analyst-eva', metabase: 'eva@crm.test', password: 'eva gateway password 1' },
  { gateway: 'mb-analyst-max', metabase: 'max@crm.test', password: 'max gateway password 2' },
] as const;

let browser: TestBrowser;
let gw: AuthTestGateway;
let metabase: MetabaseStandIn;
let origin: string;
let context: BrowserContext;
let page: Page;
const consoleMessages: ConsoleMessage[] = [];

before(async () => {
  metabase = await startMetabaseStandIn({ queryMs: QUERY_MS, keepaliveMs: KEEPALIVE_MS, users: Object.fromEntries(ANALYSTS.map((a) => [a.metabase, `${a.password} metabase`])) });
  gw = await startAuthGateway({
    // No MB_SITE_URL: Metabase takes its site URL from the first API request.
    routes: `
  - name: metabase
    host: metabase.localhost
    upstream: ${metabase.url}
    auth: session
    roles: [analyst]
    timeout: 600s
`,
    env: { GATEWAY_DOMAIN: 'localhost', HTTPS_PORT: String(await freePort()) },
    extraYaml: `auth: { sessionTtl: ${SESSION_TTL_MS}ms }`,
  });
  for (const a of ANALYSTS) await addUser(gw.auth, a.gateway, a.password, ['analyst']);
  origin = `https://metabase.localhost:${gw.port}`;
  browser = await launchBrowser();
  context = await browser.newContext();
  page = await context.newPage();
  page.on('console', (m) => consoleMessages.push(m));
  await recordCspViolations(page);
});

after(async () => {
  await context?.close();
  await browser?.close();
  await gw?.close();
  await metabase?.close();
});

async function gatewaySignIn(user: string, password: string): Promise<void> {
  assert.equal(new URL(page.url()).pathname, '/auth/login', `on the gateway's login page, not ${page.url()}`);
  await signInAtGateway(page, user, password);
}

async function metabaseSignIn(email: string, password: string): Promise<void> {
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#username', email);
  await page.fill('#password', password);
  await page.click('#login-button');
  await page.waitForSelector('#app:not([hidden])');
}

test('sign in at the gateway; Metabase’s page runs under its own hashed CSP with no violation; its sign-in sets metabase.SESSION', { timeout: TEST_TIMEOUT_MS }, async () => {
  const [eva] = ANALYSTS;
  await page.goto(`${origin}/`);
  assert.equal(metabase.requests.length, 0, 'nothing reached Metabase before the gateway sign-in');
  const landing = page.waitForResponse((r) => new URL(r.url()).pathname === '/' && r.request().resourceType() === 'document');
  await gatewaySignIn(eva.gateway, eva.password);
  const response = await landing;
  assert.equal(response.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/');

  const cspHeaders = (await response.headersArray()).filter((h) => h.name.toLowerCase() === 'content-security-policy');
  assert.equal(cspHeaders.length, 1, 'one CSP, Metabase’s own: the gateway adds none over it');
  const policy = cspHeaders[0]?.value ?? '';
  assert.match(policy, /^default-src 'none'; script-src 'self' 'nonce-[A-Za-z0-9_-]{10}'/);
  for (const hash of metabase.inlineScriptHashes) assert.ok(policy.includes(hash), `the inline script's ${hash} is in the policy`);
  assert.match(policy, /frame-ancestors 'none';$/);

  // The inline bootstrap ran (allowed by its hash), and the app bundle from 'self' too.
  assert.equal(await page.evaluate('typeof window.MetabaseBootstrap'), 'object');
  await metabaseSignIn(eva.metabase, `${eva.password} metabase`);
  assert.equal(await page.textContent('#user'), eva.metabase);
  assert.deepEqual(await page.evaluate('window.__cspViolations'), [], 'Metabase’s CSP blocks nothing of its own page');
  assert.deepEqual(consoleMessages.filter((m) => /Content Security Policy/i.test(m.text())).map((m) => m.text()), []);
  // And the policy is in force: an inline script without its hash does not run.
  await page.evaluate('(() => { const s = document.createElement("script"); s.textContent = "window.__injected = 1"; document.head.appendChild(s); })()');
  assert.equal(await page.evaluate('typeof window.__injected'), 'undefined', 'an unhashed inline script is blocked');
  assert.match(String(await page.evaluate('window.__cspViolations.join(",")')), /script-src/);
  await page.evaluate('window.__cspViolations = []');

  const cookies = await context.cookies(origin);
  const session = cookies.find((c) => c.name === METABASE_SESSION_COOKIE);
  assert.ok(session, `metabase.SESSION stored: ${cookies.map((c) => c.name).join(', ')}`);
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true, 'Secure: Metabase saw X-Forwarded-Proto https');
  assert.equal(session.sameSite, 'Lax');
  assert.equal(session.domain, 'metabase.localhost', 'host-only');
  assert.ok(cookies.some((c) => c.name === METABASE_TIMEOUT_COOKIE));

  // Metabase's site URL, set by its first API request from X-Forwarded-Host / Host: the public
  // host, never the upstream address. (Without a scheme in those headers Metabase prepends
  // http://, which is why docs/applications.md sets MB_SITE_URL.)
  const site = metabase.siteUrl();
  assert.ok(site, 'Metabase settled on a site URL');
  assert.equal(new URL(site).host, `metabase.localhost:${gw.port}`);
  assert.ok(metabase.requests.every((r) => r.headers['x-gateway-user'] === eva.gateway), 'everything came through the gateway as the signed-in user');
});

test('a streamed question outlives the gateway’s access cookie, completes, and the session renews after it', { timeout: TEST_TIMEOUT_MS }, async () => {
  const started = Date.now();
  await page.click('#run');
  await waitFor(async () => (await page.textContent('#query-status')) === 'completed', 'the streamed question completed', QUERY_MS + 10_000);
  assert.ok(Date.now() - started >= QUERY_MS - 100, 'the query ran for its whole length');
  const result = (await page.evaluate('({ status: mb.queryStatus, keepalives: mb.keepalives, rows: mb.result && mb.result.row_count, error: mb.error })')) as { status: number; keepalives: number; rows: number; error: unknown };
  assert.equal(result.error, null);
  assert.equal(result.status, 202, 'Metabase’s streaming status passes');
  assert.equal(result.rows, 50);
  assert.ok(result.keepalives >= Math.floor(QUERY_MS / KEEPALIVE_MS) - 2, `keep-alive newlines arrived as sent (${result.keepalives})`);
  const query = metabase.queries.at(-1);
  assert.equal(query?.outcome, 'completed');
  // The access cookie expired during the query; the next request renews the session.
  const reloaded = await page.reload();
  assert.equal(reloaded?.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/', `still signed in: ${page.url()}`);
  await page.waitForSelector('#app:not([hidden])');
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.session_renewed'), 'the session was renewed');
  assert.deepEqual(await page.evaluate('window.__cspViolations'), []);
});

test('logout clears metabase.SESSION (and the gateway’s cookies) (item 3)', { timeout: TEST_TIMEOUT_MS }, async () => {
  await page.goto(`${origin}/auth/logout`);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.equal(new URL(page.url()).pathname, '/auth/login');
  const names = (await context.cookies(origin)).map((c) => c.name);
  assert.ok(!names.includes(ACCESS_COOKIE) && !names.includes(REFRESH_COOKIE), `gateway cookies gone: ${names.join(', ')}`);
  assert.ok(!names.includes(METABASE_SESSION_COOKIE), `metabase.SESSION gone: ${names.join(', ')}`);
});

test('the next user signs in: Metabase asks for its own sign-in and gets none of the previous user’s session', { timeout: TEST_TIMEOUT_MS }, async () => {
  const [eva, max] = ANALYSTS;
  const evaSessions = [...metabase.sessions].filter(([, u]) => u === eva.metabase).map(([id]) => id);
  assert.ok(evaSessions.length > 0);
  const from = metabase.requests.length;
  await page.goto(`${origin}/`);
  if (new URL(page.url()).pathname === '/auth/login') await gatewaySignIn(max.gateway, max.password);
  assert.equal(new URL(page.url()).pathname, '/');
  await page.waitForSelector('#login:not([hidden])', { timeout: 5_000 });
  await metabaseSignIn(max.metabase, `${max.password} metabase`);
  assert.equal(await page.textContent('#user'), max.metabase);
  const after = metabase.requests.slice(from);
  assert.ok(after.length > 0);
  for (const r of after) {
    assert.equal(r.headers['x-gateway-user'], max.gateway, `${r.method} ${r.url} as the next user`);
    const cookie = String(r.headers.cookie ?? '');
    for (const id of evaSessions) assert.ok(!cookie.includes(id), `${r.method} ${r.url} carried the previous user's metabase.SESSION`);
  }
});
